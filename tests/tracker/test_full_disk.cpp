// A tracker whose SQLite store fills the disk, on a real full filesystem: a 2 MB tmpfs the test
// mounts (so it needs root, as .ci/run has; without it the test fails and says so). ENOSPC comes
// from the kernel, not from a fake: the writer must retry, the worker must never wait, the
// drops must be counted, and everything accepted must land once space comes back.

#include <sys/mount.h>
#include <unistd.h>

#include <sqlite3.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "jobtrail/store.h"
#include "jobtrail/tracker.h"
#include "temp_dir.h"

using namespace jobtrail;
using namespace std::chrono_literals;

namespace {

/// A small tmpfs mounted at `path` for the test's lifetime (detached at the end). Not thread-safe.
class SmallDisk {
 public:
  SmallDisk(const std::filesystem::path& path, const std::string& size) : path_(path) {
    std::filesystem::create_directories(path_);
    const std::string options = "size=" + size + ",mode=0700";
    if (mount("jobtrail-test", path_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
      const std::string why = std::strerror(errno);
      FAIL("cannot mount a " << size << " tmpfs at " << path_.string() << " (" << why
                             << "): the full-disk test needs root (CAP_SYS_ADMIN) for a real ENOSPC; "
                                "run it as root, as .ci/run does, or leave it out with ctest -LE slow");
    }
  }
  ~SmallDisk() { umount2(path_.c_str(), MNT_DETACH); }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;

 private:
  std::filesystem::path path_;
};

/// Writes `path` until the filesystem is full; the bytes written.
std::size_t fill(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  REQUIRE(file);
  std::setvbuf(file, nullptr, _IONBF, 0);
  const std::vector<char> chunk(16 * 1024, 'x');
  std::size_t written = 0;
  int error = 0;
  for (;;) {
    const std::size_t wrote = std::fwrite(chunk.data(), 1, chunk.size(), file);
    written += wrote;
    if (wrote < chunk.size()) {
      error = errno;
      break;
    }
  }
  std::fclose(file);
  INFO("filling the disk stopped with: " << std::strerror(error));
  REQUIRE(error == ENOSPC);
  return written;
}

Event started(const std::string& job_id) {
  Event event;
  event.job_id = job_id;
  event.state = State::started;
  event.job = "FullDiskJob";
  event.queue = "default";
  return event;
}

std::string integrity_of(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &statement, nullptr) == SQLITE_OK);
  std::string result;
  while (sqlite3_step(statement) == SQLITE_ROW) result += reinterpret_cast<const char*>(sqlite3_column_text(statement, 0));
  sqlite3_finalize(statement);
  sqlite3_close_v2(db);
  return result;
}

}  // namespace

TEST_CASE("on a full disk the writer retries, counts its drops, never blocks the worker and recovers",
          "[tracker][slow][full-disk]") {
  testing::TempDir dir;
  const std::filesystem::path mount_point = dir.path() / "disk";
  SmallDisk disk(mount_point, "2m");
  const std::string db = (mount_point / "store.db").string();
  const std::string filler = (mount_point / "filler").string();

  std::mutex messages_mutex;
  std::vector<std::string> messages;
  TrackerOptions options;
  options.queue_capacity = 2000;
  options.error_handler = [&](std::string_view message) {
    std::lock_guard lock(messages_mutex);
    messages.emplace_back(message);
  };
  std::vector<std::string> accepted;  // job IDs record() queued
  {
    Tracker tracker(db, options);
    for (int i = 0; i < 100; ++i) {
      const std::string job_id = "before-" + std::to_string(i);
      REQUIRE(tracker.record(started(job_id)) == RecordStatus::queued);
      accepted.push_back(job_id);
    }
    REQUIRE(tracker.flush(30s));
    INFO("filled the disk with " << fill(filler) << " bytes");

    // The disk is full: a worker keeps recording, 20,000 events, far more than the queue holds.
    constexpr int while_full = 20000;
    std::int64_t queue_full = 0;
    auto slowest = std::chrono::steady_clock::duration::zero();
    const auto full_started = std::chrono::steady_clock::now();
    for (int i = 0; i < while_full; ++i) {
      const std::string job_id = "full-" + std::to_string(i);
      const auto before = std::chrono::steady_clock::now();
      const RecordStatus status = tracker.record(started(job_id));
      slowest = std::max(slowest, std::chrono::steady_clock::now() - before);
      if (status == RecordStatus::queued) {
        accepted.push_back(job_id);
      } else {
        REQUIRE(status == RecordStatus::queue_full);
        ++queue_full;
      }
    }
    const auto full_took = std::chrono::steady_clock::now() - full_started;
    // The writer hits ENOSPC and keeps trying (with backoff); give it the time to.
    const auto give_up = std::chrono::steady_clock::now() + 30s;
    while (tracker.counters().store_errors < 2 && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(10ms);
    }
    const auto slowest_ms = std::chrono::duration_cast<std::chrono::milliseconds>(slowest).count();
    const auto full_ms = std::chrono::duration_cast<std::chrono::milliseconds>(full_took).count();
    INFO("slowest record() " << slowest_ms << " ms; 20,000 records took " << full_ms << " ms");
    {
      const TrackerCounters counters = tracker.counters();
      CHECK(counters.store_errors >= 2);  // failed, retried, failed again
      CHECK(counters.dropped_queue_full == static_cast<std::uint64_t>(queue_full));
      CHECK(queue_full > 0);
      CHECK(counters.dropped_store_error == 0);  // retried, not thrown away
    }
    // Never blocked: a record() that waited on the writer would take its backoff (50 ms and up,
    // to 5 s). The bound is loose for a busy machine.
    CHECK(slowest_ms < 500);
    CHECK(full_ms < 5000);
    CHECK_FALSE(tracker.flush(1s));  // nothing can be committed while the disk is full
    // The owner is told why, once the queue-full messages leave the rate-limited handler a slot.
    auto said_disk_full = [&] {
      std::lock_guard lock(messages_mutex);
      return std::any_of(messages.begin(), messages.end(), [](const std::string& message) {
        return message.find("disk is full") != std::string::npos && message.find("retrying") != std::string::npos;
      });
    };
    const auto told_by = std::chrono::steady_clock::now() + 15s;
    while (!said_disk_full() && std::chrono::steady_clock::now() < told_by) std::this_thread::sleep_for(10ms);
    {
      std::lock_guard lock(messages_mutex);
      for (const auto& message : messages) UNSCOPED_INFO("error handler: " << message);
    }
    CHECK(said_disk_full());

    // Space comes back: everything queued is committed, and new events too.
    std::filesystem::remove(filler);
    CHECK(tracker.flush(60s));
    for (int i = 0; i < 100; ++i) {
      const std::string job_id = "after-" + std::to_string(i);
      REQUIRE(tracker.record(started(job_id)) == RecordStatus::queued);
      accepted.push_back(job_id);
    }
    CHECK(tracker.flush(30s));
    const TrackerCounters counters = tracker.counters();
    CHECK(counters.stored == accepted.size());
    CHECK(counters.dropped_store_error == 0);
  }
  CHECK(integrity_of(db) == "ok");
  auto store = open_store(db, OpenOptions{.read_only = true});
  std::size_t missing = 0;
  for (const auto& job_id : accepted) {
    if (!store->find_job(job_id)) ++missing;
  }
  CHECK(missing == 0);
}
