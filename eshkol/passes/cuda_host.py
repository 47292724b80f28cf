"""Embed the GPU kernels in the lowered program: PTX, manifest and fused-chain table.

Runs on the LLVM dialect after eshkol-to-llvm: the program's entry first hands the kernels
made by eshkol-cuda-kernels to runtime_c/cuda_shim.c (``esk_cuda_register``), which loads
them with the CUDA driver when a GPU tensor first needs one.
"""

from __future__ import annotations

from mlir import ir

from eshkol.lower.cuda import host_pass


def run(module: ir.Operation) -> None:
    """Register the GPU module at the program's entry."""
    host_pass(module)
