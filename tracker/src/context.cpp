#include "jobtrail/context.h"

#include <cstdint>
#include <random>
#include <utility>

namespace jobtrail {

namespace {

// Plain thread_locals: the context belongs to the thread doing the work, and a job that
// hops threads must carry its IDs explicitly (JobInfo, Event) anyway.
thread_local std::string current_correlation;
thread_local std::string current_job;

constexpr char hex_digits[] = "0123456789abcdef";

bool is_lower_hex(char c) noexcept { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

bool is_lower_hex(std::string_view text) noexcept {
  for (char c : text) {
    if (!is_lower_hex(c)) return false;
  }
  return true;
}

bool is_all_zero(std::string_view text) noexcept { return text.find_first_not_of('0') == std::string_view::npos; }

std::string_view trim(std::string_view text) noexcept {
  constexpr std::string_view whitespace = " \t\r\n";
  const auto first = text.find_first_not_of(whitespace);
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(whitespace);
  return text.substr(first, last - first + 1);
}

std::mt19937_64& thread_random_engine() {
  // Seeded once per thread from the OS so that threads and processes started at the same
  // moment do not produce the same IDs.
  thread_local std::mt19937_64 engine = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(), device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  return engine;
}

}  // namespace

const std::string& current_correlation_id() noexcept { return current_correlation; }

const std::string& current_job_id() noexcept { return current_job; }

std::string new_correlation_id() {
  auto& engine = thread_random_engine();
  std::uint64_t high = 0;
  std::uint64_t low = 0;
  // An all-zero trace ID is invalid in W3C Trace Context; vanishingly unlikely, but cheap to rule out.
  while (high == 0 && low == 0) {
    high = engine();
    low = engine();
  }
  std::string id(32, '0');
  for (int i = 0; i < 16; ++i) {
    id[static_cast<std::size_t>(15 - i)] = hex_digits[(high >> (4 * i)) & 0xF];
    id[static_cast<std::size_t>(31 - i)] = hex_digits[(low >> (4 * i)) & 0xF];
  }
  return id;
}

std::optional<std::string> correlation_from_traceparent(std::string_view header) noexcept {
  // "vv-<32 hex trace-id>-<16 hex parent-id>-ff", see https://www.w3.org/TR/trace-context/
  constexpr std::size_t version_00_length = 55;
  const std::string_view text = trim(header);
  if (text.size() < version_00_length) return std::nullopt;

  const std::string_view version = text.substr(0, 2);
  const std::string_view trace_id = text.substr(3, 32);
  const std::string_view parent_id = text.substr(36, 16);
  const std::string_view flags = text.substr(53, 2);
  if (text[2] != '-' || text[35] != '-' || text[52] != '-') return std::nullopt;
  if (!is_lower_hex(version) || version == "ff") return std::nullopt;
  // Version 00 has exactly these fields; a later version may append "-..." fields, which a
  // parser that knows only 00 must skip.
  if (version == "00" && text.size() != version_00_length) return std::nullopt;
  if (text.size() > version_00_length && text[version_00_length] != '-') return std::nullopt;
  if (!is_lower_hex(trace_id) || is_all_zero(trace_id)) return std::nullopt;
  if (!is_lower_hex(parent_id) || is_all_zero(parent_id)) return std::nullopt;
  if (!is_lower_hex(flags)) return std::nullopt;
  try {
    return std::string(trace_id);
  } catch (...) {
    return std::nullopt;
  }
}

// A request scope starts a new trace: jobs enqueued under it are not children of whatever
// job the thread was running, so the current job is cleared until the scope ends.
CorrelationScope::CorrelationScope(std::string correlation_id)
    : previous_correlation_(std::move(current_correlation)), previous_job_(std::move(current_job)) {
  current_correlation = std::move(correlation_id);
  current_job.clear();
}

CorrelationScope::~CorrelationScope() {
  current_correlation = std::move(previous_correlation_);
  current_job = std::move(previous_job_);
}

namespace detail {

ContextSwap::ContextSwap(const std::string& correlation_id, const std::string& job_id)
    : previous_correlation_(current_correlation), previous_job_(current_job) {
  // Copy first, then move in: if a copy throws (out of memory) the thread's context is intact.
  std::string correlation_copy = correlation_id;
  std::string job_copy = job_id;
  current_correlation = std::move(correlation_copy);
  current_job = std::move(job_copy);
}

ContextSwap::~ContextSwap() {
  current_correlation = std::move(previous_correlation_);
  current_job = std::move(previous_job_);
}

}  // namespace detail

}  // namespace jobtrail
