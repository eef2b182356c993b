// test_atomic_file.cpp: run-folder files are the old version or the whole new one: a write
// that fails (here: its temporary cannot be created, or the disk is full) leaves the previous
// file intact and says why, naming the file and the system's reason.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "autograd/atomic_file.h"
#include "data/image_io.h"
#include "tests/test_util.h"
#include "tests/train_test_util.h"

namespace fpa::test {
namespace {

TEST(AtomicFile, AFailedWriteKeepsThePreviousFile) {
  const std::string dir = temp_dir("atomic"), path = dir + "/samples.png";
  write_file_atomically(path, std::string("old picture"));
  mkdir((path + ".tmp." + std::to_string(getpid())).c_str(), 0755);  // the temporary cannot be created
  EXPECT_ERROR(write_file_atomically(path, std::string("new")), "cannot write " + path + ": cannot create");
  EXPECT_EQ(slurp(path), "old picture");
  rmdir((path + ".tmp." + std::to_string(getpid())).c_str());
  write_file_atomically(path, std::string("new picture"));
  EXPECT_EQ(slurp(path), "new picture");
}

TEST(AtomicFile, AFullDiskIsNamed) {
  EXPECT_ERROR(append_record("/dev/full", "1,2,3\n"), "cannot append to /dev/full: No space left on device");
  EXPECT_ERROR(write_file_atomically("/dev/null/x.png", std::string("x")), "Not a directory");
}

TEST(AtomicFile, PicturesAreWrittenAtomicallyAndDevicesInPlace) {
  const std::string dir = temp_dir("atomic_png"), path = dir + "/samples.png";
  write_png(path, Image(4, 4, 1, 10));
  const std::string before = slurp(path);
  mkdir((path + ".tmp." + std::to_string(getpid())).c_str(), 0755);
  EXPECT_ERROR(write_png(path, Image(4, 4, 1, 200)), "cannot write " + path);
  EXPECT_EQ(slurp(path), before) << "a failed picture write left a truncated file";
  write_png("/dev/null", Image(4, 4, 1, 10));  // written through, never renamed over
  struct stat st;
  ASSERT_EQ(stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
}

TEST(AtomicFile, RecordsAreAppendedWhole) {
  const std::string path = temp_dir("append") + "/metrics.csv";
  append_record(path, "step,loss\n");
  append_record(path, "1,0.5\n");
  EXPECT_EQ(slurp(path), "step,loss\n1,0.5\n");
}

}  // namespace
}  // namespace fpa::test
