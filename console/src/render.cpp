#include "render.h"

#include <stdexcept>

#include "embedded_files.h"
#include "jobtrail/console.h"

namespace jobtrail::console {

std::string_view embedded(std::string_view name) {
  for (const EmbeddedFile& file : embedded_files()) {
    if (file.name == name) return file.bytes;
  }
  return {};
}

std::string render(std::string_view name, const Data& data) {
  const std::string file = std::string(name) + ".mustache";
  const std::string_view text = embedded(file);
  if (text.empty()) throw std::logic_error("no embedded template " + file);
  // Parsed for each page: kainjow's render() is not const (it records errors in the
  // template), so a shared parsed template would need a lock; parsing a page's template costs
  // microseconds beside the store's reads.
  kainjow::mustache::mustache page{std::string(text)};
  page.set_custom_escape([](const std::string& value) { return escape_html(value); });
  std::string html = page.is_valid() ? page.render(data) : std::string();
  if (!page.is_valid()) throw std::logic_error("template " + file + ": " + page.error_message());
  return html;
}

}  // namespace jobtrail::console
