// atomic_file.cpp: write to PATH.tmp.PID, fsync, rename over PATH, fsync the folder; and
// whole-record appends.
#include "autograd/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "autograd/error.h"

namespace fpa {
namespace {

std::string parent_dir(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

AtomicFile::AtomicFile(const std::string& path) : path_(path), tmp_(path + ".tmp." + std::to_string(getpid())) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    // A device or a pipe (/dev/null, /dev/stdout): written in place, never renamed over.
    tmp_ = path;
    file_ = std::fopen(path.c_str(), "wb");
    FPA_CHECK(file_, "cannot write ", path_, ": ", std::strerror(errno));
    return;
  }
  file_ = std::fopen(tmp_.c_str(), "wb");
  FPA_CHECK(file_, "cannot write ", path_, ": cannot create ", tmp_, ": ", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (file_) std::fclose(file_);
  if (!committed_ && tmp_ != path_) std::remove(tmp_.c_str());
}

void AtomicFile::write(const void* data, size_t bytes) {
  if (bytes == 0) return;
  FPA_CHECK(std::fwrite(data, 1, bytes, file_) == bytes, "cannot write ", path_, ": writing ", tmp_, " failed: ",
            std::strerror(errno));
}

void AtomicFile::commit() {
  // fsync is meaningless on a device or a pipe (and fails there with EINVAL).
  bool ok = std::fflush(file_) == 0 && (tmp_ == path_ || fsync(fileno(file_)) == 0);
  int err = ok ? 0 : errno;
  if (std::fclose(file_) != 0 && ok) ok = false, err = errno;
  file_ = nullptr;
  FPA_CHECK(ok, "cannot write ", path_, ": flushing ", tmp_, " failed: ", std::strerror(err));
  if (tmp_ == path_) {
    committed_ = true;
    return;
  }
  FPA_CHECK(std::rename(tmp_.c_str(), path_.c_str()) == 0, "cannot write ", path_, ": renaming ", tmp_,
            " over it failed: ", std::strerror(errno));
  committed_ = true;
  // Make the rename itself durable (best effort: some file systems refuse a folder's fsync).
  int fd = open(parent_dir(path_).c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) fsync(fd), close(fd);
}

void write_file_atomically(const std::string& path, const void* data, size_t bytes) {
  AtomicFile f(path);
  f.write(data, bytes);
  f.commit();
}

void append_record(const std::string& path, const std::string& record) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  FPA_CHECK(fd >= 0, "cannot append to ", path, ": ", std::strerror(errno));
  struct stat st;
  const off_t before = fstat(fd, &st) == 0 ? st.st_size : -1;
  size_t done = 0;
  int err = 0;
  while (done < record.size()) {
    ssize_t n = ::write(fd, record.data() + done, record.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : ENOSPC;
      break;
    }
    done += size_t(n);
  }
  if (err != 0 && before >= 0 && ftruncate(fd, before) != 0) {
    // The record stays cut short; the error below still says why.
  }
  close(fd);
  FPA_CHECK(err == 0, "cannot append to ", path, ": ", std::strerror(err));
}

}  // namespace fpa
