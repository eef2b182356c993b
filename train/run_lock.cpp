// run_lock.cpp: the output folder's lock (flock on DIR/.lock, holder described inside).
#include "train/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "autograd/error.h"

namespace fpa {
namespace {

std::string read_all(int fd) {
  std::string text;
  char buf[256];
  ssize_t n;
  lseek(fd, 0, SEEK_SET);
  while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, size_t(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string holder_text() {
  char host[256] = "?";
  gethostname(host, sizeof host - 1);
  char when[64] = "?";
  std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  return "pid " + std::to_string(getpid()) + " on " + host + ", started " + when + "\n";
}

}  // namespace

RunLock::RunLock(const std::string& dir) {
  const std::string path = dir + "/.lock";
  fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  FPA_CHECK(fd_ >= 0, "cannot create the run lock ", path, ": ", std::strerror(errno));
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string holder = err == EWOULDBLOCK ? read_all(fd_) : "";
    close(fd_);
    fd_ = -1;
    FPA_CHECK(err != EWOULDBLOCK, dir, " is in use by another training run (", holder.empty() ? "holder unknown" : holder,
              "; lock file ", path, "): one run per output folder; wait for it, stop it, or choose another --out");
    FPA_CHECK(false, "cannot lock ", path, ": ", std::strerror(err));
  }
  const std::string me = holder_text();
  if (ftruncate(fd_, 0) != 0 || write(fd_, me.data(), me.size()) != ssize_t(me.size())) {
    // The lock itself holds; only the holder's description could not be written.
  }
}

RunLock::~RunLock() {
  if (fd_ >= 0) close(fd_);  // releases the flock
}

}  // namespace fpa
