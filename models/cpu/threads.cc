#include "models/cpu/threads.h"

#include <dlfcn.h>

#include <algorithm>
#include <thread>
#include <vector>

#include <ATen/Parallel.h>

namespace clca {
namespace {

// Looked up at run time: the library also links against a LibTorch whose
// BLAS is MKL, where these symbols do not exist.
template <typename F>
F* Find(const char* name) {
  return reinterpret_cast<F*>(dlsym(RTLD_DEFAULT, name));
}

}  // namespace

bool SetBlasThreads(int threads) {
  auto* set = Find<void(int)>("openblas_set_num_threads");
  if (set == nullptr || threads < 1) return false;
  set(threads);
  return true;
}

int BlasThreads() {
  auto* get = Find<int()>("openblas_get_num_threads");
  return get == nullptr ? 0 : get();
}

int HardwareThreads() { return std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }

void SetIntraOpThreads(int threads) {
  at::get_num_threads();
  at::set_num_threads(threads);
}

int ParallelForWidth() {
  const int64_t n = at::get_num_threads();
  std::vector<std::thread::id> ids(static_cast<size_t>(n));
  at::parallel_for(0, n, 1, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) ids[static_cast<size_t>(i)] = std::this_thread::get_id();
  });
  std::sort(ids.begin(), ids.end());
  return static_cast<int>(std::unique(ids.begin(), ids.end()) - ids.begin());
}

void SetComputeThreads(int threads) {
  if (threads < 1) return;
  SetIntraOpThreads(threads);
  SetBlasThreads(threads);
}

}  // namespace clca
