# Sourced by the GPU scripts (gpu-bench.sh, gpu-check.sh).

# machine_info FILE: the GPU, driver, PyTorch, CPU and tools, printed and
# written to FILE.
machine_info() {
  {
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
    python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)' 2>&1
    echo "CPU: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    "${CXX:-c++}" --version | head -1
    cmake --version | head -1
  } | tee "$1"
}
