// run_lock.h: one training run per output folder. The run holds an exclusive flock(2) on
// DIR/.lock for its lifetime and writes its pid, host and start time into it; a second run
// on the same folder is refused with that text. The kernel drops the lock when its process
// dies, however it dies, so a stale lock of a dead process is simply taken over.
#pragma once
#include <string>

namespace fpa {

class RunLock {
 public:
  // Takes DIR/.lock (DIR must exist); throws naming the holder when another run has it.
  explicit RunLock(const std::string& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace fpa
