#include "common/serial_worker.h"

#include <pthread.h>

#include <utility>

namespace cellar {

void SerialWorker::Post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      tasks_.push_back(std::move(task));
      if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
      cv_.notify_one();
      return;
    }
  }
  task = nullptr;  // dropped, outside the lock (its captures may post or log)
}

void SerialWorker::Stop() {
  std::deque<std::function<void()>> dropped;
  std::thread thread;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    dropped.swap(tasks_);
    thread = std::move(thread_);
    cv_.notify_all();
  }
  if (thread.joinable()) thread.join();
}

size_t SerialWorker::queued() const {
  std::lock_guard lock(mu_);
  return tasks_.size();
}

void SerialWorker::Run() {
  pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (stopping_) return;
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace cellar
