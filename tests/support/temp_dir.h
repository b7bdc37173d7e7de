#pragma once

// A gtest fixture with a fresh directory path per test (dir_, under the
// system's temporary directory, named by `prefix` and the pid): absent at
// the start (made by the test or the code under test), removed after it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace zshard::testing {

class TempDirTest : public ::testing::Test {
 protected:
  explicit TempDirTest(const std::string& prefix)
      : dir_(std::filesystem::temp_directory_path() / (prefix + std::to_string(getpid()))) {}
  void SetUp() override { std::filesystem::remove_all(dir_); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  std::filesystem::path dir_;
};

}  // namespace zshard::testing
