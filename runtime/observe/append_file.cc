#include "runtime/observe/append_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "runtime/core/error.h"

namespace zshard::observe {

namespace {

constexpr size_t kBufferBytes = 64 << 10;

}  // namespace

void makeDirectories(const std::string& dir) {
  std::error_code e;
  std::filesystem::create_directories(dir, e);
  if (e) throw IoError(dir + ": cannot make the directory: " + e.message());
}

AppendFile::AppendFile(std::string path) : path_(std::move(path)) {
  const std::string parent = std::filesystem::path(path_).parent_path().string();
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
