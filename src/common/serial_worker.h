// One thread that runs posted tasks one at a time, in the order posted: for work that may
// block (a metadata commit waits on etcd for up to its deadline), which an event loop must
// never wait on. The thread starts with the first task.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace cellar {

class SerialWorker {
 public:
  explicit SerialWorker(std::string name) : name_(std::move(name)) {}
  ~SerialWorker() { Stop(); }
  SerialWorker(const SerialWorker&) = delete;
  SerialWorker& operator=(const SerialWorker&) = delete;

  // Queues `task`. After Stop, the task is dropped (destroyed, not run) at once.
  void Post(std::function<void()> task);
  // Waits for the task running (if any) to end; tasks still queued are dropped, destroyed on
  // the calling thread. Idempotent.
  void Stop();
  // Tasks queued and not yet started (for metrics and logs).
  size_t queued() const;

 private:
  void Run();

  const std::string name_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cellar
