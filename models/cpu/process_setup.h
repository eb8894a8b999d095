// The process settings the model library computes fastest with on the CPU,
// made by the programs themselves at the start of main, so that a binary
// started plainly runs at the speed docs/BENCHMARKS.md reports.
#pragma once

#include <string>

namespace clca {

struct ProcessSetupOptions {
  // glibc's malloc keeps freed memory instead of returning it: the forward
  // pass's large buffers are not mapped, faulted in and unmapped again on
  // every call (M_MMAP_THRESHOLD and M_TRIM_THRESHOLD 2 GiB, M_TOP_PAD
  // 512 MiB). MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ and
  // MALLOC_TOP_PAD_ in the environment take precedence, one by one.
  bool keep_freed_memory = true;
  // libgomp's threads spin briefly at a barrier before they sleep
  // (GOMP_SPINCOUNT=2000). libgomp reads its settings when it is loaded,
  // before main runs, so the program executes itself once more with the
  // variable set. GOMP_SPINCOUNT (or OMP_WAIT_POLICY) in the environment
  // takes precedence.
  bool brief_openmp_spin = true;
};

// Applies `options`; call first thing in main with main's arguments. Does
// nothing when CLCA_PROCESS_SETUP=0 is in the environment. May not return:
// the program restarts with the same arguments (and pid).
void SetUpProcess(char** argv, const ProcessSetupOptions& options = {});

// What the process runs with, for reports: libgomp's spin count as the
// environment gives it ("" when unset) and whether SetUpProcess set glibc's
// malloc to keep freed memory.
struct ProcessSettings {
  std::string gomp_spincount;
  bool malloc_keeps_freed_memory = false;
};
ProcessSettings CurrentProcessSettings();

}  // namespace clca
