#include "runtime/observe/append_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "runtime/core/error.h"

namespace zshard::observe {

namespace {

constexpr size_t kBufferBytes = 64 << 10;

std::string parentOf(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

}  // namespace

void makeDirectories(const std::string& dir) {
  for (size_t at = 1; at <= dir.size(); ++at) {
    if (at != dir.size() && dir[at] != '/') continue;
    const std::string part = dir.substr(0, at);
    if (mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
      throw IoError(part + ": cannot make the directory: " + std::strerror(errno));
    }
  }
}

AppendFile::AppendFile(std::string path) : path_(std::move(path)) {
  const std::string parent = parentOf(path_);
  if (!parent.empty()) makeDirectories(parent);
  file_ = std::fopen(path_.c_str(), "ab");
  if (file_ == nullptr) fail("cannot open for appending");
  std::setvbuf(file_, nullptr, _IOFBF, kBufferBytes);
  was_empty_ = std::ftell(file_) == 0;
}

AppendFile::~AppendFile() {
  if (file_ != nullptr) std::fclose(file_);
}

void AppendFile::append(std::string_view bytes) {
  if (std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) fail("cannot write");
}

void AppendFile::flush() {
  if (std::fflush(file_) != 0) fail("cannot write");
}

void AppendFile::fail(const char* what) const {
  throw IoError(path_ + ": " + what + ": " + std::strerror(errno));
}

}  // namespace zshard::observe
