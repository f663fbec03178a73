#pragma once
// The console's templates, stylesheet and script, compiled into the binary at build time
// (cmake/embed_files.cmake writes the definition).

#include <string_view>
#include <vector>

namespace jobtrail::console {

struct EmbeddedFile {
  std::string_view name;  ///< file name, e.g. "console.css" or "job.mustache"
  std::string_view bytes;
};

/// Every embedded file, in the order CMakeLists.txt lists them.
const std::vector<EmbeddedFile>& embedded_files();

}  // namespace jobtrail::console
