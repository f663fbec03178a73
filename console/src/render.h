#pragma once
// Templates in, HTML out. The one place that names the template library.

#include <string>
#include <string_view>

#include <kainjow/mustache.hpp>

namespace jobtrail::console {

using Data = kainjow::mustache::data;

/// An empty mustache list, to push_back items into.
inline Data list() { return Data(Data::type::list); }

/// Sets `key` only when `text` is not empty: in kainjow's mustache an empty string is "true"
/// in a {{#section}}, so optional texts must be absent instead.
inline void set_text(Data& data, const std::string& key, const std::string& text) {
  if (!text.empty()) data.set(key, text);
}

/// Renders the embedded template `name` ("job" for job.mustache) with `data`; every {{value}}
/// goes through escape_html(). Throws std::logic_error for a template that does not parse (a
/// build with a broken template fails its first test, not a user's page).
std::string render(std::string_view name, const Data& data);

/// The bytes of the embedded file `name`; empty when there is none.
std::string_view embedded(std::string_view name);

}  // namespace jobtrail::console
