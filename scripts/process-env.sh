# Sourced by the tools' scripts: the process settings measured in
# docs/BENCHMARKS.md (OpenMP workers that spin only briefly before they
# sleep, glibc keeping freed memory). A variable already set, even to empty,
# is left as it is.
export GOMP_SPINCOUNT=${GOMP_SPINCOUNT-2000}
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_-4294967296}
export MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_-68719476736}
export MALLOC_TOP_PAD_=${MALLOC_TOP_PAD_-536870912}
