// decode_events() alone, in a loop: the part of serve's CPU per event that is serve's own code
// (the JSON, the field rules, check_event()), apart from the store's writer that it shares with
// the in-process tracker. The body is an NDJSON batch as the contrib clients send it, the same
// as serve_cpu_bench's: a started and a succeeded event per job with job_id, job, queue,
// correlation_id, worker, attempt and integer-microsecond at.
// Prints the thread's CPU time per event, the median of --rounds rounds of --bodies bodies.
// Usage: decode_bench [--batch N] [--bodies N] [--rounds N]

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "jobtrail/ingest.h"

using namespace jobtrail;

namespace {

double thread_cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

std::string make_body(std::size_t batch, Micros now) {
  const char* classes[] = {"HardJob", "MailerJob", "ReportJob", "Billing::ChargeJob"};
  const char* queues[] = {"default", "mailers", "critical"};
  std::string body;
  std::size_t job = 0;
  for (std::size_t i = 0; i < batch; i += 2, ++job) {
    char id[32];
    std::snprintf(id, sizeof id, "%024zx", job * 2654435761u);
    const Micros started = now - 600'000'000 + static_cast<Micros>(job) * 50;
    for (int succeeded = 0; succeeded < 2 && i + static_cast<std::size_t>(succeeded) < batch; ++succeeded) {
      body += R"({"job_id":")" + std::string(id) + R"(","state":")" + (succeeded ? "succeeded" : "started") +
              R"(","at":)" + std::to_string(started + succeeded * 1234) + R"(,"worker":"worker-host-3:41872")" +
              R"(,"attempt":1,"job":")" + classes[job % 4] + R"(","queue":")" + queues[job % 3] +
              R"(","correlation_id":"req-)" + std::to_string(job / 3) + "\"}\n";
    }
  }
  return body;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t batch = 100;
  std::size_t bodies = 2'000;
  std::size_t rounds = 7;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const auto value = static_cast<std::size_t>(std::max(1ULL, std::strtoull(argv[i + 1], nullptr, 10)));
    if (flag == "--batch") batch = value;
    else if (flag == "--bodies") bodies = value;
    else if (flag == "--rounds") rounds = value;
    else {
      std::fprintf(stderr, "usage: decode_bench [--batch N] [--bodies N] [--rounds N]\n");
      return 2;
    }
  }
  DecodeOptions options;
  options.ndjson = true;
  options.now = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  const std::string body = make_body(batch, options.now);
  std::vector<double> nanos;
  for (std::size_t round = 0; round < rounds; ++round) {
    const double start = thread_cpu_seconds();
    std::size_t events = 0;
    for (std::size_t b = 0; b < bodies; ++b) {
      const DecodedEvents decoded = decode_events(body, options);
      if (!decoded.rejected.empty()) {
        std::fprintf(stderr, "decode_bench: refused: %s\n", decoded.rejected.front().reason.c_str());
        return 1;
      }
      events += decoded.events.size();
    }
    nanos.push_back((thread_cpu_seconds() - start) * 1e9 / static_cast<double>(events));
  }
  std::sort(nanos.begin(), nanos.end());
  std::printf("decode_bench: NDJSON batches of %zu events, %zu bodies a round: %.0f ns of CPU an event "
              "(median of %zu rounds; fastest %.0f)\n",
              batch, bodies, nanos[nanos.size() / 2], rounds, nanos.front());
  return 0;
}
