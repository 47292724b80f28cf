"""Named pipelines: each is a list of registered passes, read top to bottom.

    eshkol-optimize   eshkol dialect → eshkol dialect (folding, dead code)
    eshkol-to-llvm    eshkol dialect → LLVM dialect + runtime calls
    eshkol-cpu        the whole CPU path: optimize, then lower
"""

from __future__ import annotations

from eshkol.lower import cpu

# Tensors on the CPU (lower/cpu.py): chains fused in the dialect, kernels as linalg on tensors,
# then the kernel stages, each runnable alone.
TENSOR_TO_LINALG = ["eshkol-fuse-tensors", "eshkol-tensor-kernels"]

PIPELINES: dict[str, list[str]] = {
    "eshkol-optimize": ["eshkol-fold-constants", "eshkol-dce", "eshkol-autodiff", "eshkol-specialize"],
    "eshkol-tensor-to-linalg": TENSOR_TO_LINALG,
    "eshkol-cpu-fuse": cpu.FUSE,
    "eshkol-cpu-bufferize": cpu.BUFFERIZE,
    "eshkol-cpu-vectorize": cpu.VECTORIZE,
    "eshkol-cpu-to-llvm": cpu.TO_LLVM,
    "eshkol-lower-cpu": cpu.LOWER_CPU,
    "eshkol-cpu": ["eshkol-fold-constants", "eshkol-dce", "eshkol-autodiff", *TENSOR_TO_LINALG, *cpu.LOWER_CPU,
                   "eshkol-specialize", "eshkol-to-llvm"],
    # CUDA (lower/cuda.py): the CPU path, plus the GPU kernels (after fusion, so each fused chain
    # gets one) compiled to PTX and registered by the lowered program's entry.
    "eshkol-lower-cuda": ["eshkol-cuda-place", "eshkol-cuda-kernels"],
}
# The CUDA path is the CPU path with those two after the tensor kernels, and the registration
# of the kernels last.
_after = PIPELINES["eshkol-cpu"].index(TENSOR_TO_LINALG[-1]) + 1
PIPELINES["eshkol-cuda"] = [*PIPELINES["eshkol-cpu"][:_after], *PIPELINES["eshkol-lower-cuda"],
                            *PIPELINES["eshkol-cpu"][_after:], "eshkol-cuda-host"]

DESCRIPTIONS = {
    "eshkol-optimize": "optimize the eshkol dialect (fold constants, remove dead code, autodiff, specialize)",
    "eshkol-tensor-to-linalg": "fuse tensor chains; their kernels as linalg on tensors",
    "eshkol-cpu-fuse": "kernels: fuse elementwise linalg.generic ops",
    "eshkol-cpu-bufferize": "kernels: bufferize in place into the output buffer",
    "eshkol-cpu-vectorize": "kernels: tile and vectorize for the host's SIMD width",
    "eshkol-cpu-to-llvm": "kernels: lower to the LLVM dialect with C entries",
    "eshkol-lower-cpu": "kernels: fuse, bufferize, vectorize, lower (the four stages)",
    "eshkol-cpu": "the CPU path: optimize, fuse tensors, kernels, lower to the LLVM dialect",
    "eshkol-lower-cuda": "GPU kernels (runtime set + fused chains) through gpu/NVVM to PTX",
    "eshkol-cuda": "the CUDA path: the CPU path plus PTX kernels registered at the entry",
}
