"""The pass registry: every Eshkol pass by its command-line name.

A pass is a function ``run(module_op: ir.Operation) -> None`` that rewrites the module in
place and raises ``EshkolError`` (a user error) or ``RuntimeError`` (a compiler bug) on
failure. ``eshkol-opt --help`` lists this table; pipelines (lower/pipelines.py) are lists of
these names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mlir import ir

from eshkol.passes import (
    autodiff,
    cpu_drop_schedule,
    cpu_kernel_abi,
    cpu_schedule,
    cuda_host,
    cuda_kernels,
    cuda_place,
    dce,
    expand_math,
    fold_constants,
    fuse_tensors,
    lower_stablehlo,
    lower_to_llvm,
    specialize,
    tensor_to_linalg,
)


@dataclass(frozen=True)
class PassInfo:
    """A registered pass."""

    name: str
    description: str
    run: Callable[[ir.Operation], None]


PASSES: dict[str, PassInfo] = {
    p.name: p
    for p in [
        PassInfo("eshkol-fold-constants", fold_constants.__doc__.splitlines()[0], fold_constants.run),
        PassInfo("eshkol-dce", dce.__doc__.splitlines()[0], dce.run),
        PassInfo("eshkol-to-llvm", lower_to_llvm.__doc__.splitlines()[0], lower_to_llvm.run),
        # calculus by transformation (forward/reverse mode), before specialization
        PassInfo("eshkol-autodiff", autodiff.run.__doc__.splitlines()[0], autodiff.run),
        PassInfo("eshkol-autodiff-report", autodiff.run_report.__doc__.splitlines()[0], autodiff.run_report),
        PassInfo("eshkol-specialize", specialize.__doc__.splitlines()[0], specialize.run),
        # tensors on the CPU (issue #6): fusion in the dialect, kernels through linalg
        PassInfo("eshkol-fuse-tensors", fuse_tensors.__doc__.splitlines()[0], fuse_tensors.run),
        PassInfo("eshkol-tensor-kernels", tensor_to_linalg.__doc__.splitlines()[0], tensor_to_linalg.run),
        PassInfo("eshkol-expand-math", expand_math.__doc__.splitlines()[0], expand_math.run),
        PassInfo("eshkol-cpu-schedule", cpu_schedule.__doc__.splitlines()[0], cpu_schedule.run),
        PassInfo("eshkol-cpu-drop-schedule", cpu_drop_schedule.__doc__.splitlines()[0],
                 cpu_drop_schedule.run),
        PassInfo("eshkol-cpu-kernel-abi", cpu_kernel_abi.__doc__.splitlines()[0], cpu_kernel_abi.run),
        # CUDA (lower/cuda.py): kernels to PTX, then their registration in the lowered program
        PassInfo("eshkol-cuda-kernels", cuda_kernels.__doc__.splitlines()[0], cuda_kernels.run),
        PassInfo("eshkol-cuda-host", cuda_host.__doc__.splitlines()[0], cuda_host.run),
        PassInfo("eshkol-cuda-place", cuda_place.__doc__.splitlines()[0], cuda_place.run),
        # XLA (passes/lower_stablehlo.py): tensor chains to StableHLO functions called through %xla-call
        PassInfo("eshkol-lower-stablehlo", lower_stablehlo.__doc__.splitlines()[0], lower_stablehlo.run),
    ]
}
