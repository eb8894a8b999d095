# Sourced by the tools' scripts: the process settings measured in
# docs/BENCHMARKS.md (sleeping OpenMP workers, glibc keeping freed memory).
# A variable already set, even to empty, is left as it is.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY-PASSIVE}
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_-4294967296}
export MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_-68719476736}
export MALLOC_TOP_PAD_=${MALLOC_TOP_PAD_-536870912}
