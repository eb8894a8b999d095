// Scratch directories for the dataset tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace clca::testing {

// A fresh empty directory named after the running test and `name`, removed
// on destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& name = "dir") {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::path(::testing::TempDir()) /
            (std::string("clca_") + info->test_suite_name() + "_" + info->name() + "_" + name);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// Writes `text` to `path`, creating parent directories.
inline void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

inline std::string ReadBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Whether two files hold the same non-empty bytes (no dump of binary files
// on failure).
inline bool SameBytes(const std::filesystem::path& a, const std::filesystem::path& b) {
  const std::string x = ReadBytes(a);
  return !x.empty() && x == ReadBytes(b);
}

}  // namespace clca::testing
