// Running the `clca` tool from tests: a scratch directory per test suite and
// runs that capture stdout and stderr apart.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

namespace clca::testing {

namespace fs = std::filesystem;

inline const std::string kClca = std::string(CLCA_BINARY_DIR) + "/tools/clca";

inline std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct Output {
  int code = -1;
  std::string out, err;
};

class ClcaCli {
 public:
  // Creates <temp>/<name>_<pid>, removed again by the destructor.
  explicit ClcaCli(const std::string& name)
      : root_(fs::path(::testing::TempDir()) / (name + "_" + std::to_string(getpid()))) {
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  ~ClcaCli() {
    std::error_code error;
    fs::remove_all(root_, error);
  }
  ClcaCli(const ClcaCli&) = delete;
  ClcaCli& operator=(const ClcaCli&) = delete;

  std::string Path(const std::string& name) const { return (root_ / name).string(); }

  // Runs `clca ARGS` (safe to call from several threads at once).
  Output Run(const std::string& args) {
    const std::string n = std::to_string(calls_++);
    const std::string out = Path("stdout" + n + ".txt"), err = Path("stderr" + n + ".txt");
    const int status = std::system((kClca + " " + args + " > " + out + " 2> " + err).c_str());
    Output o;
    o.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    o.out = ReadFile(out);
    o.err = ReadFile(err);
    return o;
  }

 private:
  fs::path root_;
  std::atomic<int> calls_{0};
};

}  // namespace clca::testing
