// The metrics of a check run, for node_exporter's textfile collector or a Pushgateway.
// Labels are bounded: the config file's name, the check name (from the config) and its
// configured severity.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <utility>
#include <sstream>
#include <stdexcept>

#include <prometheus/gateway.h>
#include <prometheus/gauge.h>
#include <prometheus/labels.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "jobtrail/checker.h"

namespace jobtrail::check {

namespace {

double seconds(Micros micros) { return static_cast<double>(micros) / 1e6; }

/// The config file's name without its folder and extension ("checks" when there is none): the
/// `config` label, and the Pushgateway's `instance`. Two configs must not share a series.
std::string config_name(const RunReport& report) {
  std::string name = std::filesystem::path(report.config_path).stem().string();
  return name.empty() ? "checks" : name;
}

/// jobtrail_check_<config name>.prom, the name cut down to [A-Za-z0-9_] so it is a plain file
/// name whatever the config is called.
std::string textfile_name(const RunReport& report) {
  std::string name = config_name(report);
  for (char& c : name) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!plain) c = '_';
  }
  return "jobtrail_check_" + name + ".prom";
}

std::shared_ptr<prometheus::Registry> registry_of(const RunReport& report) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& violations = prometheus::BuildGauge()
                         .Name("jobtrail_check_violations")
                         .Help("Rows the check returned in its last run (rows that must not exist)")
                         .Register(*registry);
  auto& new_violations = prometheus::BuildGauge()
                             .Name("jobtrail_check_new_violations")
                             .Help("Failing rows of the last run that did not fail in the run before")
                             .Register(*registry);
  auto& status = prometheus::BuildGauge()
                     .Name("jobtrail_check_status")
                     .Help("Outcome of the check's last run: 0 pass, 1 warn, 2 fail, 3 error (could not run)")
                     .Register(*registry);
  auto& duration = prometheus::BuildGauge()
                       .Name("jobtrail_check_duration_seconds")
                       .Help("How long the check's last run took")
                       .Register(*registry);
  auto& last_run = prometheus::BuildGauge()
                       .Name("jobtrail_check_last_run_timestamp_seconds")
                       .Help("When the check last ran, whatever its outcome")
                       .Register(*registry);
  auto& last_success = prometheus::BuildGauge()
                           .Name("jobtrail_check_last_success_timestamp_seconds")
                           .Help("When the check last passed (from the check history); absent if it never did")
                           .Register(*registry);
  auto& run_exit = prometheus::BuildGauge()
                       .Name("jobtrail_check_run_exit_code")
                       .Help("Exit code of the last jobtrail check run: 0 pass, 1 warnings, 2 failures, 3 incomplete")
                       .Register(*registry);
  // Every series carries `config`: node_exporter refuses a scrape in which two textfiles
  // (two configs) hold the same series, and `instance` is the scrape target's own label.
  const std::string config = config_name(report);
  for (const auto& result : report.results) {
    const prometheus::Labels labels = {{"config", config}, {"check", result.check.name}};
    // A check that could not run counted nothing: no row counts rather than a reassuring 0.
    if (result.status != CheckStatus::error) {
      auto with_severity = labels;
      with_severity.emplace("severity", result.check.severity);
      violations.Add(with_severity).Set(static_cast<double>(result.violations));
      new_violations.Add(labels).Set(static_cast<double>(result.new_violations));
    }
    status.Add(labels).Set(static_cast<double>(result.status));
    duration.Add(labels).Set(seconds(result.duration));
    last_run.Add(labels).Set(seconds(result.started_at));
    if (result.last_success) last_success.Add(labels).Set(seconds(*result.last_success));
  }
  run_exit.Add({{"config", config}}).Set(report.exit_code());
  return registry;
}

[[noreturn]] void fail_io(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

}  // namespace

std::string metrics_text(const RunReport& report) {
  auto registry = registry_of(report);
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry->Collect());
  return out.str();
}

void write_textfile(const RunReport& report, const std::string& directory) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::is_directory(directory, error)) {
    throw std::runtime_error("the textfile directory " + directory + " does not exist");
  }
  const auto text = metrics_text(report);
  const std::string name = textfile_name(report);
  const fs::path target = fs::path(directory) / name;
  // node_exporter reads only *.prom, so the temporary name is never half-read; the rename
  // within one directory is atomic.
  const fs::path temporary = fs::path(directory) / ("." + name + "." + std::to_string(::getpid()) + ".tmp");
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_io("cannot write " + temporary.string());
  std::size_t written = 0;
  while (written < text.size()) {
    auto n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      ::unlink(temporary.c_str());
      fail_io("cannot write " + temporary.string());
    }
    written += static_cast<std::size_t>(n);
  }
  // Flushed before the rename: after a crash the file is the old one or the new one, whole.
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(temporary.c_str());
    fail_io("cannot flush " + temporary.string());
  }
  if (::rename(temporary.c_str(), target.c_str()) != 0) {
    ::unlink(temporary.c_str());
    fail_io("cannot rename " + temporary.string() + " to " + target.string());
  }
}

namespace {
/// Host (with the scheme) and port of http://HOST:PORT[/]; nothing for any other form.
std::optional<std::pair<std::string, std::string>> split_gateway_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) return std::nullopt;
  std::string rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size() || rest.find('/') != std::string::npos ||
      rest.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
    return std::nullopt;
  }
  return std::pair(scheme + rest.substr(0, colon), rest.substr(colon + 1));
}
}  // namespace

bool is_push_gateway_url(const std::string& url) { return split_gateway_url(url).has_value(); }

int push_metrics(const RunReport& report, const std::string& url) {
  const auto address = split_gateway_url(url);
  if (!address) throw std::invalid_argument("--push-gateway must be http://HOST:PORT (got \"" + url + "\")");
  prometheus::Gateway gateway(address->first, address->second, "jobtrail_check",
                              {{"instance", config_name(report)}});
  auto registry = registry_of(report);
  gateway.RegisterCollectable(registry);
  // PUT: the group is replaced as a whole, so a check removed from the config disappears.
  return gateway.Push();
}

}  // namespace jobtrail::check
