#include "workload.h"

#include <array>
#include <random>

namespace jobtrail::bench {

namespace {
std::string hex(std::mt19937_64& random, std::size_t digits) {
  static constexpr char alphabet[] = "0123456789abcdef";
  std::string text(digits, '0');
  for (auto& c : text) c = alphabet[random() & 15];
  return text;
}
}  // namespace

Workload make_workload(std::size_t event_count, Micros start, Micros span, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  static const std::array<std::pair<const char*, const char*>, 3> fan_out = {{
      {"SignupJob", "default"}, {"WelcomeEmailJob", "mailers"}, {"StatsJob", "low"}}};
  Workload workload;
  workload.events.reserve(event_count + 16);
  // About 3.4 events per job and 3 jobs per request.
  const std::size_t requests = std::max<std::size_t>(1, event_count / 10);
  const Micros step = std::max<Micros>(1, span / static_cast<Micros>(requests));
  Micros at = start;
  // Users are numbered apart per seed, so that workloads made in chunks tag distinct users.
  std::uint64_t user = seed * 100'000'000;
  while (workload.events.size() < event_count) {
    auto correlation = hex(random, 32);
    workload.correlation_ids.push_back(correlation);
    auto entity = "user:" + std::to_string(++user);
    workload.entities.push_back(entity);
    std::string parent;
    for (const auto& [job_class, queue] : fan_out) {
      Event event;
      event.job_id = hex(random, 24);
      event.job = job_class;
      event.queue = queue;
      event.correlation_id = correlation;
      event.parent_job_id = parent;
      event.worker = "worker-" + std::to_string(random() % 8) + ":" + std::to_string(1000 + random() % 4);
      workload.job_ids.push_back(event.job_id);
      if (parent.empty()) parent = event.job_id;

      auto push = [&](State state, std::int32_t attempt, Micros when) {
        Event e = event;
        e.state = state;
        e.attempt = attempt;
        e.at = when;
        if (state == State::enqueued) e.entities = {entity};
        if (state == State::failed) e.error = {"Net::ReadTimeout", "execution expired", ""};
        workload.events.push_back(std::move(e));
      };
      Micros t = at;
      std::int32_t attempt = 1;
      push(State::enqueued, attempt, t);
      push(State::started, attempt, t += 2000 + static_cast<Micros>(random() % 5000));
      if (random() % 10 == 0) {
        push(State::failed, attempt, t += 30000);
        push(State::started, ++attempt, t += 1000000);
      }
      push(State::succeeded, attempt, t += 20000 + static_cast<Micros>(random() % 200000));
    }
    at += step;
  }
  return workload;
}

}  // namespace jobtrail::bench
