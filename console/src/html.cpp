// Escaping and links: every byte that came from an event (job IDs, error texts, entity names)
// passes through escape_html() before it reaches a page, and through percent_encode() before it
// becomes part of a URL.

#include "jobtrail/console.h"

namespace jobtrail::console {

std::string escape_html(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size() + text.size() / 8);
  for (const char c : text) {
    switch (c) {
      case '&': escaped += "&amp;"; break;
      case '<': escaped += "&lt;"; break;
      case '>': escaped += "&gt;"; break;
      case '"': escaped += "&quot;"; break;
      case '\'': escaped += "&#39;"; break;
      // NUL is a parse error in HTML and some parsers drop it, joining what was around it.
      case '\0': escaped += "&#xFFFD;"; break;
      default: escaped += c;
    }
  }
  return escaped;
}

std::string percent_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string encoded;
  encoded.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    const bool unreserved = (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z') ||
                            (byte >= '0' && byte <= '9') || byte == '-' || byte == '.' || byte == '_' || byte == '~';
    if (unreserved) {
      encoded += c;
    } else {
      encoded += '%';
      encoded += hex[byte >> 4];
      encoded += hex[byte & 0x0F];
    }
  }
  return encoded;
}

namespace {
/// A browser resolves "." and ".." path segments (even as %2E) before sending the request, so
/// such an ID cannot be a path segment: it goes in the query of the page's alias instead.
bool is_dot_segment(std::string_view id) { return id.empty() || id == "." || id == ".."; }
}  // namespace

std::string job_url(std::string_view job_id) {
  return is_dot_segment(job_id) ? "/ui/job?id=" + percent_encode(job_id) : "/ui/jobs/" + percent_encode(job_id);
}
std::string trace_url(std::string_view correlation_id) {
  return is_dot_segment(correlation_id) ? "/ui/trace?id=" + percent_encode(correlation_id)
                                        : "/ui/traces/" + percent_encode(correlation_id);
}
std::string entity_url(std::string_view entity) { return "/ui/entities/" + percent_encode(entity); }
std::string check_url(std::string_view check) { return "/ui/checks/" + percent_encode(check); }

}  // namespace jobtrail::console
