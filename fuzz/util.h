// Helpers shared by the fuzz targets.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace clca::fuzz {

// A file that lives in memory, for entry points that take a path: each input
// is written into one memfd and read back as /proc/self/fd/N.
class MemoryFile {
 public:
  MemoryFile() {
    fd_ = memfd_create("clca-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemoryFile() { close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  // Replaces the file's contents with `size` bytes at `data`.
  void Write(const uint8_t* data, size_t size) {
    if (ftruncate(fd_, 0) != 0) Fail("ftruncate");
    size_t done = 0;
    while (done < size) {
      const ssize_t n = pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) Fail("pwrite");
      done += static_cast<size_t>(n);
    }
  }

  const std::string& path() const { return path_; }

 private:
  [[noreturn]] static void Fail(const char* what) {
    std::perror(what);
    std::abort();
  }

  int fd_ = -1;
  std::string path_;
};

// Reads every byte of a tensor's elements in instrumented code, so that
// AddressSanitizer sees a tensor that claims more memory than it owns.
inline uint8_t TouchBytes(const void* data, size_t nbytes) {
  const volatile uint8_t* bytes = static_cast<const volatile uint8_t*>(data);
  uint8_t sum = 0;
  for (size_t i = 0; i < nbytes; ++i) sum ^= bytes[i];
  return sum;
}

}  // namespace clca::fuzz
