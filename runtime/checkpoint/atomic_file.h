#pragma once

#include <string>
#include <string_view>

namespace zshard::checkpoint {

// Builds a file under a temporary name ("<path>.tmp.<pid>") and puts it in
// place with commit(): fsync, rename over `path`, fsync of the directory.
// A crash at any moment leaves either the old file or the new one, never a
// torn one; a writer destroyed before commit() removes its temporary.
// Every failure throws IoError naming the path and the failing call.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(std::string path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void append(std::string_view bytes);
  void commit();
  const std::string& temporaryPath() const { return tmp_; }

 private:
  std::string path_, tmp_;
  int fd_ = -1;
};

// Replaces `path` with `bytes` through an AtomicFileWriter.
void writeFileAtomically(const std::string& path, std::string_view bytes);

// The whole file. Throws IoError naming the path when it cannot be read.
std::string readFile(const std::string& path);

}  // namespace zshard::checkpoint
