#include "models/cpu/process_setup.h"

#include <malloc.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>

namespace clca {
namespace {

constexpr const char* kSpinCount = "2000";

bool malloc_tuned = false;

bool Unset(const char* name) { return std::getenv(name) == nullptr; }

}  // namespace

void SetUpProcess(char** argv, const ProcessSetupOptions& options) {
  if (const char* setup = std::getenv("CLCA_PROCESS_SETUP"); setup && std::strcmp(setup, "0") == 0) {
    return;
  }
  if (options.brief_openmp_spin && Unset("GOMP_SPINCOUNT") && Unset("OMP_WAIT_POLICY")) {
    // After the exec GOMP_SPINCOUNT is set, so this runs once. If the exec
    // fails the program goes on with libgomp's defaults.
    setenv("GOMP_SPINCOUNT", kSpinCount, 1);
    execv("/proc/self/exe", argv);
  }
  if (options.keep_freed_memory) {
    if (Unset("MALLOC_MMAP_THRESHOLD_")) mallopt(M_MMAP_THRESHOLD, INT_MAX);
    if (Unset("MALLOC_TRIM_THRESHOLD_")) mallopt(M_TRIM_THRESHOLD, INT_MAX);
    if (Unset("MALLOC_TOP_PAD_")) mallopt(M_TOP_PAD, 512 << 20);
    malloc_tuned = true;
  }
}

ProcessSettings CurrentProcessSettings() {
  ProcessSettings settings;
  if (const char* spin = std::getenv("GOMP_SPINCOUNT")) settings.gomp_spincount = spin;
  settings.malloc_keeps_freed_memory = malloc_tuned;
  return settings;
}

}  // namespace clca
