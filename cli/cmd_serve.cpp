// `jobtrail serve`: HTTP ingest for workers in any language, a read API, /metrics, /healthz.

#include <pthread.h>
#include <signal.h>

#include <charconv>
#include <iostream>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli_error.h"
#include "commands.h"
#include "generate_docs.h"
#include "global_options.h"
#include "jobtrail/server.h"
#include "jobtrail/store.h"
#include "token_file.h"

namespace jobtrail::cli {
namespace {

/// serve's own exit code: the address could not be bound (in use, not permitted).
constexpr auto exit_cannot_listen = static_cast<ExitCode>(4);

void parse_listen(const std::string& listen, ServerOptions& options) {
  // "host:port", ":port" (loopback) or "[::1]:port".
  const auto colon = listen.rfind(':');
  if (colon == std::string::npos) {
    throw CliError(exit_bad_input, fmt::format("bad --listen '{}': expected HOST:PORT, e.g. 127.0.0.1:8089", listen));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = listen.substr(colon + 1);
  int port = -1;
  const auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (error != std::errc() || end != port_text.data() + port_text.size() || port < 0 || port > 65535) {
    throw CliError(exit_bad_input, fmt::format("bad port in --listen '{}': expected 0 to 65535", listen));
  }
  if (!host.empty()) options.host = host;
  options.port = port;
}

}  // namespace

CLI::App* setup_serve(CLI::App& app, ServeOptions& options) {
  CLI::App* serve = app.add_subcommand(
      "serve", "HTTP ingest of job events (POST /v1/events), a read API, the web console (/ui/),\n"
               "/metrics and /healthz.");
  serve->add_option("--listen", options.listen, "Address to listen on (default 127.0.0.1:8089; port 0 picks one).")
      ->option_text("HOST:PORT");
  serve->add_option("--token-file", options.token_file,
                    "A file holding the bearer token that POST and PUT must send\n"
                    "(Authorization: Bearer TOKEN). Without it, writes are open. With it, the web\n"
                    "console's pages need it too (a login form, or the bearer header).")
      ->option_text("PATH")
      ->check(completes(ValueKind::file));
  serve->add_flag("--protect-reads", options.protect_reads,
                  "Require the token for the read API (/v1/jobs, /v1/traces) too: error messages and\n"
                  "entity IDs may be sensitive. /metrics and /healthz stay open for scrapers.");
  serve->add_option("--max-body", options.max_body_bytes, "Largest request body in bytes (default 16 MiB); larger get 413.")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 31))
      ->option_text("BYTES");
  serve->add_option("--max-events", options.max_events, "Most events in one request (default 10000); more get 413.")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}))
      ->option_text("N");
  serve->add_option("--max-connections", options.max_connections,
                    "Most connections open at once, idle keep-alive ones included (default 10000;\n"
                    "lowered to what the open-files limit allows); one more gets 503.")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24))
      ->option_text("N");
  serve->add_option("--request-timeout", options.request_timeout,
                    "Time a client has to send a whole request once it starts, and to take the\n"
                    "answer (default 30s); slower ones get 408 and are closed.")
      ->option_text("DURATION");
  serve->add_option("--idle-timeout", options.idle_timeout,
                    "How long a keep-alive connection may wait for its next request (default 120s).")
      ->option_text("DURATION");
  serve->footer(
      "Endpoints: POST /v1/events (one JSON event, a JSON array or NDJSON; ?wait=commit\n"
      "answers once durable), PUT /v1/schedules/CLASS, GET /v1/jobs/ID, GET /v1/traces/ID,\n"
      "GET /v1/jobs?state=&job=&queue=&entity=&since=&until=&anomalies=true&limit=, GET /metrics,\n"
      "GET /healthz. Chunked (411) and compressed (415) bodies are refused.\n"
      "The event format is in docs/events.md. SIGTERM or SIGINT: stop accepting, commit every\n"
      "accepted event, exit 0.\n\n"
      "Global options (--db URL): see 'jobtrail --help'.\n\n"
      "Exit codes: 0 stopped cleanly, 2 bad usage, 3 the store could not be opened or some\n"
      "accepted events could not be committed, 4 cannot listen (address in use).\n");
  return serve;
}

int run_serve(const GlobalOptions& global, const ServeOptions& options, std::ostream& out) {
  refuse_csv(global, "serve");
  ServerOptions server_options;
  server_options.store_url = store_url(global);
  parse_listen(options.listen, server_options);
  if (!options.token_file.empty()) server_options.token = read_token_file(options.token_file);
  if (options.protect_reads && server_options.token.empty()) {
    throw CliError(exit_bad_input, "--protect-reads needs --token-file");
  }
  server_options.protect_reads = options.protect_reads;
  server_options.max_body_bytes = options.max_body_bytes;
  server_options.max_events_per_request = options.max_events;
  server_options.max_connections = options.max_connections;
  const auto milliseconds = [](std::string_view option_name, const std::string& text) {
    const Micros length = parse_duration_argument(option_name, text);
    if (length < 1000) throw CliError(exit_bad_input, fmt::format("{} must be at least 1ms", option_name));
    return std::chrono::milliseconds(length / 1000);
  };
  server_options.request_timeout = milliseconds("--request-timeout", options.request_timeout);
  server_options.idle_timeout = milliseconds("--idle-timeout", options.idle_timeout);

  // Block the stop signals before any thread starts, so every thread inherits the mask and
  // only the waiter below sees them: a handler could not safely stop the server.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const bool announce = !store_exists(server_options.store_url);
  Server server(server_options);
  if (announce) std::cerr << new_store_note(server_options.store_url) << std::endl;
  int port = 0;
  try {
    port = server.bind();
  } catch (const ListenError& error) {
    throw CliError(exit_cannot_listen, error.what());
  }
  const std::string host = server_options.host.find(':') != std::string::npos ? "[" + server_options.host + "]"
                                                                             : server_options.host;
  // stdout, one line, flushed: a script that started us with --listen :0 reads the port here.
  out << fmt::format("jobtrail serve: listening on http://{}:{}{}", host, port,
                     server_options.token.empty() ? "" : " (writes need the bearer token)")
      << std::endl;
  // A line of its own: scripts read the address from the one above.
  out << fmt::format("jobtrail serve: the web console is at http://{}:{}/ui/", host, port) << std::endl;

  std::thread waiter([&server, stop_signals] {
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    server.stop();
  });
  bool committed = false;
  try {
    committed = server.run();
  } catch (...) {
    pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
    throw;
  }
  waiter.join();
  if (!committed) {
    throw CliError(exit_store_unavailable, "stopped, but some accepted events could not be committed to the store");
  }
  std::cerr << "jobtrail serve: stopped; every accepted event is committed\n";
  return exit_ok;
}

}  // namespace jobtrail::cli
