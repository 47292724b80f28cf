"""Compile the program's GPU kernels (the runtime's set and its fused chains) to PTX.

Runs on the eshkol dialect after eshkol-fuse-tensors: each ``eshkol.tensor_fused`` chain gets
GPU kernels next to the runtime's standard ones, all through scf.parallel → gpu → NVVM → PTX
(lower/cuda.py); the result (in the compile cache) is named by the module attribute
``eshkol.gpu_module`` for eshkol-cuda-host. The chip comes from ``eshkol.gpu_target``.
"""

from __future__ import annotations

from mlir import ir

from eshkol.lower.cuda import kernels_pass


def run(module: ir.Operation) -> None:
    """Build (or find in the cache) the PTX of every kernel the program may launch."""
    kernels_pass(module)
