// StreamReaper: frees streams whose producer went silent (StreamOptions.idle_timeout_ms).
// One thread for the process, started by the first stream that has a timeout; it wakes a few
// times per shortest timeout (at most every 250 ms) and asks each registered stream to free
// itself if idle (Stream::expire_if_idle). A stream registers when created with a timeout and
// leaves in its destructor; the registry's lock is held while a stream is asked, so a stream
// is never asked after it left.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace pyflame_rt {

class Stream;

class StreamReaper {
 public:
  // Never destroyed (streams may outlive static destruction at exit); its thread is detached.
  static StreamReaper& global();
  void add(Stream* stream, std::chrono::milliseconds idle_timeout);
  void remove(Stream* stream);

 private:
  StreamReaper() = default;
  void loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<Stream*, std::chrono::milliseconds> streams_;
  bool started_ = false;
};

}  // namespace pyflame_rt
