#include "jobtrail/ingest_client.h"

#include <cctype>
#include <stdexcept>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "jobtrail/ingest.h"

namespace jobtrail {
namespace {

/// Percent-encodes a path segment: job classes like "Billing::Invoice" or "a/b" stay one segment.
std::string encode_segment(const std::string& text) {
  std::string encoded;
  for (const char byte : text) {
    const auto code = static_cast<unsigned char>(byte);
    if (std::isalnum(code) || byte == '-' || byte == '_' || byte == '.' || byte == '~') {
      encoded += byte;
    } else {
      encoded += fmt::format("%{:02X}", code);
    }
  }
  return encoded;
}

}  // namespace

struct IngestClient::Impl {
  httplib::Client http;
  std::string token;
  std::string base_url;
  Impl(const std::string& base, std::string bearer) : http(base), token(std::move(bearer)), base_url(base) {}

  httplib::Headers headers() const {
    httplib::Headers result;
    if (!token.empty()) result.emplace("Authorization", "Bearer " + token);
    return result;
  }

  /// "" for a 2xx answer; otherwise the server's "error" field or the transport's reason.
  std::string outcome(const httplib::Result& result) const {
    if (!result) {
      return fmt::format("cannot reach the server at {} ({})", base_url, httplib::to_string(result.error()));
    }
    if (result->status >= 200 && result->status < 300) return {};
    const auto body = nlohmann::json::parse(result->body, nullptr, false);
    std::string reason = result->body;
    if (body.is_object() && body.contains("error") && body["error"].is_string()) {
      reason = body["error"].get<std::string>();
    } else if (body.is_object() && body.contains("rejected") && !body["rejected"].empty()) {
      reason = body["rejected"][0].value("error", result->body);
    }
    return fmt::format("the server answered {}: {}", result->status, reason);
  }
};

IngestClient::IngestClient(const std::string& base_url, std::string token, std::chrono::milliseconds timeout) {
  if (base_url.rfind("http://", 0) != 0 && base_url.rfind("https://", 0) != 0) {
    throw std::invalid_argument(fmt::format("server URL '{}' must start with http:// or https://", base_url));
  }
  std::string base = base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  impl_ = std::make_unique<Impl>(base, std::move(token));
  if (!impl_->http.is_valid()) throw std::invalid_argument(fmt::format("bad server URL '{}'", base_url));
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(timeout - seconds);
  impl_->http.set_connection_timeout(seconds.count(), micros.count());
  impl_->http.set_read_timeout(seconds.count(), micros.count());
  impl_->http.set_write_timeout(seconds.count(), micros.count());
}

IngestClient::~IngestClient() = default;

std::string IngestClient::post(const std::vector<Event>& events) {
  std::string body;
  for (const Event& event : events) body += event_to_json(event) + "\n";
  return impl_->outcome(impl_->http.Post("/v1/events?wait=commit", impl_->headers(), body, "application/x-ndjson"));
}

std::string IngestClient::put_schedule(const std::string& job, const std::string& every, const std::string& grace) {
  nlohmann::json body = {{"every", every}};
  if (!grace.empty()) body["grace"] = grace;
  return impl_->outcome(impl_->http.Put(("/v1/schedules/" + encode_segment(job)).c_str(),
                                       impl_->headers(), body.dump(), "application/json"));
}

}  // namespace jobtrail
