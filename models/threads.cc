#include "models/threads.h"

#include <dlfcn.h>

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

void SetComputeThreads(int threads) {
  if (threads < 1) return;
  // Initialise this thread's pool first, or LibTorch's lazy initialisation
  // would later reset it to the process-wide default.
  at::get_num_threads();
  at::set_num_threads(threads);
  SetBlasThreads(threads);
}

}  // namespace clca
