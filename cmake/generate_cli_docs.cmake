# Writes the man page and the shell completions of jobtrail from the binary itself
# (`jobtrail __generate man|bash|zsh`), so they always describe the options it parses.
# cmake -DJOBTRAIL=PATH -DDATE=YYYY-MM-DD -DOUT_DIR=DIR -P generate_cli_docs.cmake
foreach(kind IN ITEMS man bash zsh)
  if(kind STREQUAL "man")
    set(output "${OUT_DIR}/jobtrail.1")
    set(arguments --date "${DATE}")
  elseif(kind STREQUAL "bash")
    set(output "${OUT_DIR}/completion/jobtrail.bash")
    set(arguments)
  else()
    set(output "${OUT_DIR}/completion/_jobtrail")
    set(arguments)
  endif()
  get_filename_component(directory "${output}" DIRECTORY)
  file(MAKE_DIRECTORY "${directory}")
  # Written aside, then renamed: a failed run leaves no half file that looks up to date.
  execute_process(COMMAND "${JOBTRAIL}" __generate ${kind} ${arguments}
                  OUTPUT_FILE "${output}.tmp" RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    file(REMOVE "${output}.tmp")
    message(FATAL_ERROR "jobtrail __generate ${kind} failed: ${status}")
  endif()
  file(RENAME "${output}.tmp" "${output}")
endforeach()
