"""CPU code generation for tensor kernels: linalg on tensors → fused → bufferized into the
caller's buffer → tiled and vectorized for this host → LLVM dialect with a C entry point.

Kernels live in a nested module ``module @esk_kernels`` (made by lower/to_linalg.py), so the
upstream passes of each stage run on kernels only, never on the Eshkol procedures beside them.
The stages, each a named pipeline (lower/pipelines.py) with lit tests (tests/lit/linalg/):

    eshkol-cpu-fuse        linalg-fuse-elementwise-ops: one linalg.generic per kernel
    eshkol-cpu-bufferize   eliminate-empty-tensors + one-shot-bufferize: results written in
                           place into the output memref the caller passes
    eshkol-cpu-vectorize   exp expanded to vectorizable arith (passes/expand_math.py), then a
                           transform-dialect schedule: tile to the host's vector length, peel
                           the remainder, vectorize the full tiles
    eshkol-cpu-to-llvm     vector/scf/memref/arith → LLVM dialect; a C entry per kernel
                           (lower/kernel_abi.py); kernels hoisted into the outer module

Host features (AVX-512 / AVX2, FMA) are read once per process and are part of every kernel
cache key; the kernels carry them as LLVM target features, so JIT and AOT builds agree.
"""

from __future__ import annotations

import hashlib
import os
import platform
from dataclasses import dataclass
from functools import cache

KERNELS_MODULE = "esk_kernels"


@dataclass(frozen=True)
class HostFeatures:
    """What the kernels are compiled for."""

    isa: str                 # 'avx512', 'avx2' or 'generic'
    fma: bool
    llvm_features: tuple[str, ...]

    @property
    def vector_bytes(self) -> int:
        """Bytes in one SIMD register."""
        return {"avx512": 64, "avx2": 32}.get(self.isa, 16)

    def key(self) -> str:
        """A short text naming the features (part of cache keys)."""
        return f"{platform.machine()}-{self.isa}{'-fma' if self.fma else ''}"


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@cache
def host_features() -> HostFeatures:
    """The host's SIMD features, detected once (ESHKOL_CPU_ISA=avx2|avx512|generic overrides,
    e.g. to build for an older machine)."""
    flags = _cpu_flags()
    forced = os.environ.get("ESHKOL_CPU_ISA")
    if platform.machine() not in ("x86_64", "AMD64"):
        return HostFeatures("generic", False, ())
    if forced in ("avx512", "avx2", "generic"):
        isa = forced
    elif {"avx512f", "avx512dq", "avx512vl", "avx512bw"} <= flags:
        isa = "avx512"
    elif "avx2" in flags:
        isa = "avx2"
    else:
        isa = "generic"
    fma = "fma" in flags and isa != "generic"
    feats = {"avx512": ["+avx", "+avx2", "+avx512f", "+avx512dq", "+avx512vl", "+avx512bw"],
             "avx2": ["+avx", "+avx2"], "generic": []}[isa]
    if fma:
        feats.append("+fma")
    return HostFeatures(isa, fma, tuple(feats))


def elementwise_tile(elem_bytes: int) -> int:
    """Elements per vectorized tile of an elementwise kernel: four registers' worth, enough
    independent work to hide FMA latency."""
    return max(4, 4 * host_features().vector_bytes // elem_bytes)


# ---- the transform-dialect schedule ------------------------------------------------------------

def vectorize_schedule() -> str:
    """The schedule of eshkol-cpu-vectorize for the host (a transform.named_sequence).

    Every kernel is one 1-D linalg.generic after fusion (elementwise, or a reduction into a
    0-d accumulator): tile it by a multiple of the vector length, peel the partial last
    tile, vectorize the full tiles (a reduction tile becomes a vector.multi_reduction folded
    into the accumulator); the remainder stays a scalar loop. The tile depends on the element
    type: lower/to_linalg.py tags each kernel function with ``eshkol.tile`` (attributes on
    the linalg ops themselves do not survive fusion).
    """
    parts = []
    for tile in sorted({elementwise_tile(8), elementwise_tile(4)}):
        parts.append(f"""
    %f{tile} = transform.structured.match ops{{["func.func"]}}
        attributes {{eshkol.tile = {tile} : i64}} in %root : (!transform.any_op) -> !transform.any_op
    transform.foreach %f{tile} : !transform.any_op {{
    ^bb0(%fn: !transform.any_op):
      %op = transform.structured.match ops{{["linalg.generic"]}} in %fn
          : (!transform.any_op) -> !transform.any_op
      %tiled, %loop = transform.structured.tile_using_for %op tile_sizes [{tile}]
          : (!transform.any_op) -> (!transform.any_op, !transform.any_op)
      %for = transform.cast %loop : !transform.any_op to !transform.op<"scf.for">
      %main, %rest = transform.loop.peel %for : (!transform.op<"scf.for">) -> (!transform.any_op, !transform.any_op)
      transform.apply_patterns to %main {{
        transform.apply_patterns.canonicalization
      }} : !transform.any_op
      %body = transform.structured.match ops{{["linalg.generic"]}} in %main
          : (!transform.any_op) -> !transform.any_op
      transform.structured.vectorize %body : !transform.any_op
    }}""")
    return (
        "transform.named_sequence @__transform_main(%root: !transform.any_op {transform.readonly}) {"
        + "".join(parts)
        + """
    %fns = transform.structured.match ops{["func.func"]} in %root : (!transform.any_op) -> !transform.any_op
    transform.apply_patterns to %fns {
      transform.apply_patterns.vector.lower_multi_reduction lowering_strategy = "innerreduction"
      transform.apply_patterns.canonicalization
    } : !transform.any_op
    transform.yield
  }""")


# ---- the pipelines (names registered in lower/pipelines.py) ------------------------------------

def _nested(passes: str) -> str:
    return f"builtin.module({passes})"


FUSE = [_nested("linalg-fuse-elementwise-ops,canonicalize,cse")]
BUFFERIZE = [_nested("eliminate-empty-tensors,"
                     "one-shot-bufferize{bufferize-function-boundaries=0},canonicalize,cse")]
VECTORIZE = ["eshkol-expand-math", "eshkol-cpu-schedule", _nested("transform-interpreter"),
             "eshkol-cpu-drop-schedule", _nested("canonicalize,cse")]
TO_LLVM = [_nested("convert-linalg-to-loops,lower-affine,"
                   "convert-vector-to-scf{full-unroll=true target-rank=1},"
                   "expand-strided-metadata,finalize-memref-to-llvm,convert-scf-to-cf,"
                   "convert-math-to-llvm,convert-vector-to-llvm,convert-arith-to-llvm,"
                   "convert-index-to-llvm,convert-func-to-llvm,convert-cf-to-llvm,"
                   "reconcile-unrealized-casts"),
           "eshkol-cpu-kernel-abi"]
LOWER_CPU = FUSE + BUFFERIZE + VECTORIZE + TO_LLVM


def kernel_cache_key(text: str) -> str:
    """Cache key of a kernel module's text for this host and toolchain."""
    from eshkol.runtime.toolchain import version_stamp

    h = hashlib.sha256()
    for part in (version_stamp(), host_features().key(), text):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:24]
