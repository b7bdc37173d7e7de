#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace zshard::observe {

// A file opened for appending through a 64 KiB buffer: appends cost a
// memcpy until the buffer fills or flush(). Every failure throws IoError
// naming the path and the system's reason (a full disk is found at the
// latest by flush()). Makes the parent directories. Not thread-safe.
class AppendFile {
 public:
  explicit AppendFile(std::string path);
  ~AppendFile();
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;

  void append(std::string_view bytes);
  void flush();
  // Whether the file held nothing when opened.
  bool wasEmpty() const { return was_empty_; }
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail(const char* what) const;

  std::string path_;
  std::FILE* file_ = nullptr;
  bool was_empty_ = true;
};

// Makes `dir` and its parents (mkdir -p). Throws IoError naming the part
// that could not be made.
void makeDirectories(const std::string& dir);

}  // namespace zshard::observe
