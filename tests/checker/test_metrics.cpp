// The metrics of a run, read by real Prometheus tools: promtool checks the textfile, and a
// real Pushgateway (Debian's prometheus-pushgateway) started on loopback receives a push.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "checker_fixture.h"

extern char** environ;

using namespace jobtrail;
using namespace jobtrail::testing;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The full path of `program` on PATH (or in /usr/bin, /usr/sbin), or "" when absent.
std::string find_program(const std::string& program) {
  std::string path = std::getenv("PATH") ? std::getenv("PATH") : "";
  path += ":/usr/bin:/usr/sbin:/bin";
  std::stringstream folders(path);
  std::string folder;
  while (std::getline(folders, folder, ':')) {
    const auto candidate = folder + "/" + program;
    if (!folder.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

/// Runs a program to completion with output to `output_path`; returns its exit status.
int run_program(const std::vector<std::string>& args, const std::string& output_path) {
  std::vector<std::string> storage = args;
  std::vector<char*> argv;
  for (auto& arg : storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t child = 0;
  const int error = posix_spawn(&child, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(error == 0);
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// A loopback port nobody listens on right now.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  socklen_t size = sizeof address;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0);
  ::close(fd);
  return ntohs(address.sin_port);
}

/// GET `path` from 127.0.0.1:`port` with a 2-second bound; the body, or nothing.
std::optional<std::string> http_get(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::nullopt;
  timeval timeout{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return std::nullopt;
  }
  std::string response;
  char buffer[4096];
  for (;;) {
    auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    response.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (response.rfind("HTTP/1.", 0) != 0 || response.find(" 200 ") == std::string::npos) return std::nullopt;
  auto body = response.find("\r\n\r\n");
  return body == std::string::npos ? std::string() : response.substr(body + 4);
}

/// A Pushgateway on a free loopback port, without persistence, stopped when the test ends.
class Pushgateway {
 public:
  Pushgateway() {
    const auto binary = find_program("prometheus-pushgateway");
    if (binary.empty()) {
      FAIL("prometheus-pushgateway is not installed: install the Debian package prometheus-pushgateway "
           "(scripts/install-deps.sh --test)");
    }
    port_ = free_port();
    std::vector<std::string> storage = {binary, "--web.listen-address=127.0.0.1:" + std::to_string(port_)};
    std::vector<char*> argv;
    for (auto& arg : storage) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    const int error = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE(error == 0);
    // Bounded wait until it answers.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!http_get(port_, "/-/ready")) {
      if (std::chrono::steady_clock::now() > give_up) FAIL("the Pushgateway did not answer within 15 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~Pushgateway() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    // Bounded: SIGKILL after 5 seconds.
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  Pushgateway(const Pushgateway&) = delete;
  Pushgateway& operator=(const Pushgateway&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

const std::string two_checks = app_only + R"(
checks:
  - name: unvalidated_users
    database: app
    query: SELECT id FROM users WHERE validated = 0
  - name: slow_pages
    database: app
    severity: warn
    query: SELECT id FROM users WHERE id > 100
)";

}  // namespace

// [store]: the last success it exports is read back from the store's check history.
TEST_CASE("metrics go to a textfile by atomic rename, and promtool accepts them", "[checker][metrics][store]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE users (id INTEGER PRIMARY KEY, validated INTEGER); INSERT INTO users VALUES (1, 1);");
  auto config = f.config(two_checks);
  const auto metrics_dir = f.dir.file("textfile");
  std::filesystem::create_directories(metrics_dir);

  // First run passes at T, second fails at T+1h: the last success stays T.
  check::write_textfile(f.run(config, test_now), metrics_dir);
  exec_sql(f.app_path, "INSERT INTO users VALUES (2, 0), (3, 0)");
  check::write_textfile(f.run(config, test_now + hour), metrics_dir);

  // Named after the config file (checks.yaml), as every series is labelled.
  const auto file = metrics_dir + "/jobtrail_check_checks.prom";
  const auto text = read_text(file);
  INFO(text);
  CHECK(text.find("jobtrail_check_violations{check=\"unvalidated_users\",config=\"checks\",severity=\"error\"} 2\n") != std::string::npos);
  CHECK(text.find("jobtrail_check_status{check=\"unvalidated_users\",config=\"checks\"} 2\n") != std::string::npos);
  CHECK(text.find("jobtrail_check_status{check=\"slow_pages\",config=\"checks\"} 0\n") != std::string::npos);
  CHECK(text.find("jobtrail_check_last_run_timestamp_seconds{check=\"unvalidated_users\",config=\"checks\"} 1795352400\n") != std::string::npos);
  CHECK(text.find("jobtrail_check_last_success_timestamp_seconds{check=\"unvalidated_users\",config=\"checks\"} 1795348800\n") != std::string::npos);
  CHECK(text.find("jobtrail_check_last_success_timestamp_seconds{check=\"slow_pages\",config=\"checks\"} 1795352400\n") != std::string::npos);
  CHECK(text.find("jobtrail_check_run_exit_code{config=\"checks\"} 2\n") != std::string::npos);
  CHECK(text.find("# TYPE jobtrail_check_duration_seconds gauge") != std::string::npos);
  // Only the final file is left: the temporary one was renamed over it.
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(metrics_dir)) {
    (void)entry;
    ++files;
  }
  CHECK(files == 1);

  const auto promtool = find_program("promtool");
  if (promtool.empty()) FAIL("promtool is not installed: install the Debian package prometheus (scripts/install-deps.sh --test)");
  const auto output = f.dir.file("promtool.out");
  // promtool reads the metrics on stdin: a shell redirects the file to it.
  const int checked = run_program({"/bin/sh", "-c", "exec \"$0\" check metrics < \"$1\"", promtool, file}, output);
  INFO(read_text(output));
  CHECK(checked == 0);
}

TEST_CASE("two configs keep a textfile each, and their series differ by the config label", "[checker][metrics]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE users (id INTEGER PRIMARY KEY, validated INTEGER); INSERT INTO users VALUES (1, 0);");
  const auto metrics_dir = f.dir.file("textfile");
  std::filesystem::create_directories(metrics_dir);
  auto nightly = f.config(two_checks);
  nightly.path = f.dir.file("nightly-shop.v2.yaml");
  auto hourly = f.config(two_checks);
  hourly.path = f.dir.file("hourly.yaml");
  check::write_textfile(f.run(nightly), metrics_dir);
  check::write_textfile(f.run(hourly), metrics_dir);

  // The file name is cut down to [A-Za-z0-9_]; the label keeps the name as it is.
  const auto nightly_text = read_text(metrics_dir + "/jobtrail_check_nightly_shop_v2.prom");
  const auto hourly_text = read_text(metrics_dir + "/jobtrail_check_hourly.prom");
  INFO(nightly_text << hourly_text);
  CHECK(nightly_text.find("jobtrail_check_status{check=\"unvalidated_users\",config=\"nightly-shop.v2\"} 2\n") !=
        std::string::npos);
  CHECK(nightly_text.find("jobtrail_check_run_exit_code{config=\"nightly-shop.v2\"} 2\n") != std::string::npos);
  CHECK(hourly_text.find("jobtrail_check_status{check=\"unvalidated_users\",config=\"hourly\"} 2\n") != std::string::npos);
  CHECK(hourly_text.find("jobtrail_check_run_exit_code{config=\"hourly\"} 2\n") != std::string::npos);
  CHECK(nightly_text.find("config=\"hourly\"") == std::string::npos);
}

TEST_CASE("a check that could not run exports its status, not a count of zero rows", "[checker][metrics]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE users (id INTEGER PRIMARY KEY, validated INTEGER); INSERT INTO users VALUES (1, 0);");
  auto config = f.config(app_only + R"(
checks:
  - name: broken
    database: app
    query: SELECT id FROM nowhere
  - name: unvalidated_users
    database: app
    query: SELECT id FROM users WHERE validated = 0
)");
  const auto text = check::metrics_text(f.run(config));
  INFO(text);
  CHECK(text.find("jobtrail_check_status{check=\"broken\",config=\"checks\"} 3\n") != std::string::npos);
  CHECK(text.find("jobtrail_check_duration_seconds{check=\"broken\",config=\"checks\"}") != std::string::npos);
  CHECK(text.find("jobtrail_check_last_run_timestamp_seconds{check=\"broken\",config=\"checks\"} 1795348800\n") !=
        std::string::npos);
  CHECK(text.find("jobtrail_check_violations{check=\"broken\"") == std::string::npos);
  CHECK(text.find("jobtrail_check_new_violations{check=\"broken\"") == std::string::npos);
  // The check that ran still counts its rows.
  CHECK(text.find("jobtrail_check_violations{check=\"unvalidated_users\",config=\"checks\",severity=\"error\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("jobtrail_check_new_violations{check=\"unvalidated_users\",config=\"checks\"} 1\n") !=
        std::string::npos);
}

TEST_CASE("a textfile directory that does not exist is a clear error", "[checker][metrics]") {
  check::RunReport report;
  CHECK_THROWS_WITH(check::write_textfile(report, "/nonexistent/metrics"),
                    "the textfile directory /nonexistent/metrics does not exist");
}

TEST_CASE("metrics are pushed to a real Pushgateway", "[checker][metrics][pushgateway]") {
  CheckerFixture f;
  exec_sql(f.app_path, "CREATE TABLE users (id INTEGER PRIMARY KEY, validated INTEGER); INSERT INTO users VALUES (1, 0);");
  Pushgateway gateway;
  auto report = f.run(f.config(two_checks));
  CHECK(check::push_metrics(report, gateway.url()) == 200);
  auto metrics = http_get(gateway.port(), "/metrics");
  REQUIRE(metrics);
  INFO(*metrics);
  CHECK(metrics->find("jobtrail_check_violations{check=\"unvalidated_users\",config=\"checks\",instance=\"checks\","
                      "job=\"jobtrail_check\",severity=\"error\"} 1") != std::string::npos);
  CHECK(metrics->find("jobtrail_check_status{check=\"unvalidated_users\",config=\"checks\",instance=\"checks\","
                      "job=\"jobtrail_check\"} 2") !=
        std::string::npos);

  CHECK_THROWS_AS(check::push_metrics(report, "127.0.0.1:9091"), std::invalid_argument);
  CHECK_FALSE(check::is_push_gateway_url("http://127.0.0.1"));
  CHECK(check::is_push_gateway_url("http://127.0.0.1:9091/"));
  // Nobody listens on a fresh free port: an error status, not a hang or a throw.
  CHECK(check::push_metrics(report, "http://127.0.0.1:" + std::to_string(free_port())) != 200);
}
