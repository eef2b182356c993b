// atomic_file.h: files that are always either their old version or the whole new one, never a
// truncated mix, whatever happens mid-write (a full disk, a crash, SIGKILL): written to
// PATH.tmp.PID, flushed and fsync'd, then renamed over PATH, and the rename made durable. Every
// checkpoint, picture, metrics file and cache goes through here. A PATH that is a device or a
// pipe (/dev/null) is written in place. Errors name the file and the system's reason ("No space
// left on device", "Read-only file system").
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace fpa {

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);
  ~AtomicFile();  // removes the temporary unless commit() renamed it
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

void write_file_atomically(const std::string& path, const void* data, size_t bytes);
inline void write_file_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, text.data(), text.size());
}
inline void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  write_file_atomically(path, bytes.data(), bytes.size());
}

// Appends `record` (one CSV line) to PATH whole: when the write fails, the file is cut back to
// its previous length, so it never ends in half a record, and the error says why.
void append_record(const std::string& path, const std::string& record);

}  // namespace fpa
