#!/usr/bin/env bash
# The CUDA target on a GPU machine, from prebuilt programs (the GPU machine has no MLIR).
#
#   benchmarks/gpu_device_run.sh --build   # here, with MLIR: compile into build/gpu
#   benchmarks/gpu_device_run.sh [--quick] # there: GPU tests, then the benchmark against CuPy
#
# The programs are ordinary executables built with `eshkol build --target=cuda`: their kernels
# are embedded PTX, and runtime_c/cuda_shim.c dlopens libcuda and libcublas at run time.
# ESHKOL_GPU_ARTIFACTS overrides the folder (default build/gpu); PYTHON the interpreter.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ART=${ESHKOL_GPU_ARTIFACTS:-$ROOT/build/gpu}
PY=${PYTHON:-python3}
cd "$ROOT"

if [ "${1:-}" = "--build" ]; then
  set -e
  "$PY" tests/py/test_cuda.py --build "$ART"
  "$PY" benchmarks/tensors_gpu.py --build "$ART"
  exit 0
fi

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
# cuBLAS: CUDA's own folder, else the pip wheel's (CuPy's).
if [ -z "${ESHKOL_CUBLAS:-}" ]; then
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
           "$("$PY" -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null)"; do
    for v in 13 12; do
      if [ -n "$d" ] && [ -e "$d/libcublas.so.$v" ]; then export ESHKOL_CUBLAS="$d/libcublas.so.$v"; break 2; fi
    done
  done
fi
echo "cuBLAS: ${ESHKOL_CUBLAS:-(default search)}"
export ESHKOL_GPU_ARTIFACTS="$ART"

status=0
echo "== GPU tests (tests/py/test_cuda.py)"
ESHKOL_CUDA_SYNC=1 "$PY" -m pytest -q -p no:cacheprovider -m "gpu or not slow" tests/py/test_cuda.py -rs || status=1
echo "== benchmark (benchmarks/tensors_gpu.py)"
"$PY" benchmarks/tensors_gpu.py --bin "$ART" "$@" || status=1
exit $status
