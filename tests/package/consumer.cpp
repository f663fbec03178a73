// Instruments one job through the installed headers: only jobtrail's own, no SQLite, no libpq.
#include <jobtrail/job_scope.h>
#include <jobtrail/store.h>
#include <jobtrail/tracker.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  {
    jobtrail::Tracker tracker(argv[1]);
    jobtrail::JobScope job(tracker, {.job_id = "consumer-1", .job = "ConsumerJob"});
    job.succeed();
  }
  auto recorded = jobtrail::open_store(argv[1])->find_job("consumer-1");
  std::printf("%s\n", recorded ? std::string(jobtrail::to_string(recorded->state)).c_str() : "missing");
  return recorded && recorded->state == jobtrail::State::succeeded ? 0 : 1;
}
