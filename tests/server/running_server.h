#pragma once
// A jobtrail server in-process on a free loopback port, serving on its own thread until the
// fixture ends: the one fixture of the server's tests.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <httplib.h>

#include "jobtrail/server.h"
#include "jobtrail/store.h"
#include "temp_dir.h"

namespace jobtrail::testing {

struct RunningServer {
  TempDir dir;
  std::string store_url = dir.file("jobs.db");
  std::unique_ptr<Server> server;
  std::thread thread;
  int port = 0;

  /// `prepare` runs on the store's URL before the server opens it (a store filled beforehand).
  explicit RunningServer(ServerOptions options = {},
                         const std::function<void(const std::string& store_url)>& prepare = {}) {
    if (prepare) prepare(store_url);
    options.store_url = store_url;
    options.port = 0;
    server = std::make_unique<Server>(options);
    port = server->bind();  // also raises this process's open-files limit
    thread = std::thread([this] { server->run(); });
    REQUIRE(server->wait_until_ready(std::chrono::seconds(5)));
  }
  ~RunningServer() {
    server->stop();
    thread.join();
  }
  RunningServer(const RunningServer&) = delete;
  RunningServer& operator=(const RunningServer&) = delete;

  /// A client of this server (10 s to read an answer; a connection per request unless kept alive).
  httplib::Client client(bool keep_alive = false) const {
    httplib::Client result("127.0.0.1", port);
    result.set_keep_alive(keep_alive);
    result.set_read_timeout(10, 0);
    return result;
  }
  std::unique_ptr<Store> store() const {
    OpenOptions read_only;
    read_only.read_only = true;
    return open_store(store_url, read_only);
  }
};

}  // namespace jobtrail::testing
