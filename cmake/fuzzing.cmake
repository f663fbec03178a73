# JOBTRAIL_FUZZ=ON: every library is built with libFuzzer's coverage and ASan+UBSan, so the
# harnesses in tests/fuzz see (and stop at) what happens inside the code they call.
# Included from the top CMakeLists.txt before any target is defined.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "JOBTRAIL_FUZZ=ON needs Clang with libFuzzer (Debian: clang-14 libfuzzer-14-dev); "
                      "this build uses ${CMAKE_CXX_COMPILER_ID}. Configure a separate build directory with "
                      "-DCMAKE_CXX_COMPILER=clang++-14, as tests/fuzz/smoke.sh does.")
endif()
# fuzzer-no-link: coverage for libFuzzer in the libraries; the harnesses link the fuzzer itself.
# UBSan aborts on the first finding instead of printing and going on, so it counts as a crash.
set(JOBTRAIL_FUZZ_FLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                        -fno-omit-frame-pointer -g)
add_compile_options(${JOBTRAIL_FUZZ_FLAGS})
add_link_options(-fsanitize=address,undefined)
