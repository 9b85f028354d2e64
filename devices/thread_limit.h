// A cap on the intra-op threads of runs made on the calling thread (thread-local), for code
// that runs several models side by side on the same cores: a batcher with two device actors
// on two cores runs each batch on one thread instead of two teams fighting for both cores.
//
//   IntraOpThreadLimit one(1);   // runs on this thread use 1 thread until `one` goes away
#pragma once

namespace pyflame_rt {

class IntraOpThreadLimit {
 public:
  explicit IntraOpThreadLimit(int max_threads);  // <= 0: no limit
  ~IntraOpThreadLimit();
  IntraOpThreadLimit(const IntraOpThreadLimit&) = delete;
  IntraOpThreadLimit& operator=(const IntraOpThreadLimit&) = delete;

  static int current();  // the calling thread's limit, 0 = none

 private:
  int previous_;
};

}  // namespace pyflame_rt
