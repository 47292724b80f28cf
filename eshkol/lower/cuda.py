"""The CUDA target: kernels through scf.parallel → gpu → NVVM → PTX, and the host side.

Kernels (``eshkol.lower.cuda_kernels``) are host functions on memrefs with one parallel loop;
the upstream pipeline tiles the loop by 256, maps it to blocks and threads, outlines each
kernel and lowers it to PTX for the chosen chip (the ``gpu.binary``'s object). Only the PTX
and, per kernel, where each parameter comes from are kept: the host code of a program is the
ordinary CPU lowering, whose tensor operations call ``runtime_c/cuda_shim.c`` when an operand
lives on the GPU; the shim loads the PTX with ``cuModuleLoadData`` and fills the parameters
from the manifest (no CUDA at build or link time).

A program compiled for the cuda target embeds a *GPU module*: the manifest text and the PTX
blob, handed to ``esk_cuda_register`` before the program's top level runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from eshkol.lower.cuda_kernels import Kernel, fused_kernels, standard_kernels
from eshkol.syntax.diagnostics import EshkolError

# Oldest PTX ISA version (x10) each chip accepts, and the default paired with it. LLVM aborts
# on a PTX version too old for the chip, so options are checked here first.
CHIPS: dict[str, int] = {"sm_70": 60, "sm_75": 63, "sm_80": 70, "sm_86": 71, "sm_87": 74,
                         "sm_89": 78, "sm_90": 80, "sm_90a": 80}
DEFAULT_CHIP = "sm_90"
DEFAULT_PTX = 80
MAX_PTX = 87            # the newest PTX ISA the pinned LLVM's NVPTX back end writes
BLOCK = 256             # threads per block: the tile size of the parallel loops

PIPELINE = ("builtin.module(func.func(scf-parallel-loop-tiling{{parallel-loop-tile-sizes={block} "
            "no-min-max-bounds}}),func.func(gpu-map-parallel-loops),"
            "func.func(convert-parallel-loops-to-gpu),gpu-launch-sink-index-computations,"
            "gpu-kernel-outlining,gpu-lower-to-nvvm-pipeline{{cubin-format=isa cubin-chip={chip} "
            "cubin-features={features}}})")


@dataclass(frozen=True)
class GpuTarget:
    """Checked GPU code generation options."""

    chip: str = DEFAULT_CHIP
    features: str = f"+ptx{DEFAULT_PTX}"

    def pipeline(self) -> str:
        """The upstream pass pipeline taking kernel host functions to PTX."""
        return PIPELINE.format(block=BLOCK, chip=self.chip, features=self.features)


def gpu_target(chip: str | None = None, features: str | None = None) -> GpuTarget:
    """Validate ``--gpu-chip`` / ``--gpu-features`` (an error, never an LLVM abort)."""
    chip = (chip or DEFAULT_CHIP).strip()
    if chip not in CHIPS:
        raise EshkolError(None, f"unsupported GPU chip '{chip}' (supported: {', '.join(CHIPS)})")
    if features is None:
        features = f"+ptx{max(DEFAULT_PTX, CHIPS[chip])}"
    m = re.fullmatch(r"\+ptx(\d+)", features.strip())
    if not m:
        raise EshkolError(None, f"bad GPU features '{features}': expected +ptxNN, e.g. +ptx80")
    ptx = int(m.group(1))
    if ptx < CHIPS[chip]:
        need = CHIPS[chip]
        raise EshkolError(None, f"PTX ISA {ptx // 10}.{ptx % 10} is too old for {chip}: "
                                f"use +ptx{need} or newer")
    if ptx > MAX_PTX:
        raise EshkolError(None, f"PTX ISA {ptx // 10}.{ptx % 10} is newer than this compiler "
                                f"writes (at most +ptx{MAX_PTX})")
    return GpuTarget(chip, f"+ptx{ptx}")


# ---- the manifest ------------------------------------------------------------------------------

@dataclass(frozen=True)
class KernelEntry:
    """A compiled kernel: its PTX, entry name, block size, and its parameters, each either a
    host argument slot (``aN``) or a constant (``cV``), with its size in bytes."""

    name: str
    entry: str
    block: int
    params: tuple[tuple[str, int], ...]   # ("a3", 8), ("c256", 8), ("a5", 4) ...
    ptx: str

    def line(self, offset: int) -> str:
        """The manifest line the shim parses: name entry block offset length n params..."""
        ps = " ".join(f"{p}:{size}" for p, size in self.params)
        return f"{self.name} {self.entry} {self.block} {offset} {len(self.ptx)} {len(self.params)} {ps}"


@dataclass(frozen=True)
class GpuModule:
    """The kernels of a program: what the executable embeds and translate prints."""

    target: GpuTarget
    kernels: tuple[KernelEntry, ...]
    path: str = ""      # the cache file holding it

    def blob(self) -> tuple[str, str]:
        """(manifest text, PTX blob): the PTX texts back to back, found by offset."""
        lines, parts, off = [], [], 0
        for k in self.kernels:
            lines.append(k.line(off))
            parts.append(k.ptx)
            off += len(k.ptx)
        return "\n".join(lines) + "\n", "".join(parts)


def _size_of(ty) -> int:
    t = str(ty)
    return 4 if t in ("f32", "i32") else 8


def _analyse(module) -> dict[str, tuple[str, int, tuple[tuple[str, int], ...]]]:
    """For each host function: (kernel entry, block size, parameter sources) from its
    gpu.launch_func after the pipeline (parameters are host arguments or constants)."""
    from mlir import ir

    out = {}
    for op in module.body.operations:
        if op.operation.name != "llvm.func":
            continue
        fname = ir.StringAttr(op.attributes["sym_name"]).value
        for block in op.regions[0].blocks:
            for inner in block.operations:
                if inner.operation.name != "gpu.launch_func":
                    continue
                launch = inner.opview
                entry = str(ir.SymbolRefAttr(launch.attributes["kernel"])).split("::@")[-1].rstrip(">")
                params = []
                for v in launch.kernelOperands:
                    params.append((_source(v, fname), _size_of(v.type)))
                block_x = _source(launch.blockSizeX, fname)
                if not block_x.startswith("c"):
                    raise RuntimeError(f"internal error: kernel {fname}: block size not constant")
                out[fname] = (entry, int(block_x[1:]), tuple(params))
    return out


def _source(v, fname: str) -> str:
    from mlir import ir

    if isinstance(v, ir.BlockArgument):
        return f"a{v.arg_number}"
    owner = v.owner
    if owner.name == "llvm.mlir.constant":
        return f"c{ir.IntegerAttr(owner.attributes['value']).value}"
    raise RuntimeError(f"internal error: kernel {fname}: parameter computed on the host ({owner.name})")


def _compile(kernels: list[Kernel], target: GpuTarget) -> list[KernelEntry]:
    from mlir import ir, passmanager
    from mlir.dialects import gpu

    text = "module attributes {gpu.container_module} {\n" + "\n".join(k.func for k in kernels) + "}\n"
    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(text)
        passmanager.PassManager.parse(target.pipeline()).run(module.operation)
        launches = _analyse(module)
        ptx = {}
        for op in module.body.operations:
            if op.operation.name == "gpu.binary":
                obj = gpu.ObjectAttr(op.attributes["objects"][0]).object
                ptx[ir.StringAttr(op.attributes["sym_name"]).value] = (
                    obj.decode() if isinstance(obj, bytes) else obj)
    out = []
    for k in kernels:
        entry, block, params = launches[k.name]
        code = ptx[entry]
        if ".extern .func __nv_" in code:
            raise EshkolError(None, "CUDA's libdevice was not found (math functions in kernels "
                                    "need it): set CUDA_HOME to the CUDA toolkit")
        out.append(KernelEntry(k.name, entry, block, params, code))
    return out


def _mlir_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("xtc-mlir-python-bindings")
    except metadata.PackageNotFoundError:
        return "unknown"


# Bump when the manifest format or the way kernels are compiled changes.
_FORMAT = 1


def compile_kernels(kernels: list[Kernel], target: GpuTarget) -> GpuModule:
    """PTX and manifest of ``kernels``, from the compile cache when it has them (the key is
    the kernels' text, the pipeline and the MLIR version: PTX depends on nothing else)."""
    from eshkol.runtime.cache import cache_dir

    h = hashlib.sha256(f"{_FORMAT}|{_mlir_version()}|{target.pipeline()}".encode())
    for k in kernels:
        h.update(k.func.encode())
    path = cache_dir() / f"cuda-{h.hexdigest()[:32]}.json"
    if path.exists():
        return load_gpu_module(path)
    entries = _compile(kernels, target)
    tmp = Path(f"{path}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"chip": target.chip, "features": target.features, "kernels": [
        {"name": e.name, "entry": e.entry, "block": e.block, "params": list(e.params), "ptx": e.ptx}
        for e in entries]}))
    os.replace(tmp, path)
    return GpuModule(target, tuple(entries), str(path))


def load_gpu_module(path: Path | str) -> GpuModule:
    """A GPU module that compile_kernels wrote (paths joined by '+': their kernels in order)."""
    parts = str(path).split("+")
    if len(parts) > 1:
        mods = [load_gpu_module(p) for p in parts]
        return GpuModule(mods[0].target, tuple(k for m in mods for k in m.kernels), str(path))
    data = json.loads(Path(path).read_text())
    entries = tuple(KernelEntry(d["name"], d["entry"], d["block"],
                                tuple((p, sz) for p, sz in d["params"]), d["ptx"])
                    for d in data["kernels"])
    return GpuModule(GpuTarget(data["chip"], data["features"]), entries, str(path))


def program_kernels(fused: list[tuple[str, str]] = ()) -> list[Kernel]:
    """The kernels a program embeds: the runtime's standard set and, for each fused chain
    (expr, kinds) in order, its ``fused<i>`` kernels."""
    out = standard_kernels()
    for i, (expr, kinds) in enumerate(fused):
        out.extend(fused_kernels(i, expr, kinds))
    return out


# ---- the host side -----------------------------------------------------------------------------

REGISTER = "esk_cuda_register"


def _string_global(sym: str, data: bytes) -> str:
    from eshkol.lower import abi

    return (f'llvm.mlir.global private constant @{sym}("{abi.mlir_string(data)}") '
            f"{{addr_space = 0 : i32}} : !llvm.array<{len(data)} x i8>")


def attach(module_op, gpu: GpuModule, fused_entries: list[str] = ()) -> None:
    """Embed the GPU module in an LLVM-dialect program module: its entry first registers the
    manifest, the PTX and the CPU entries of its fused chains (chain i's GPU kernels are
    ``fused<i>``) with the shim, then runs the program as before."""
    from mlir import ir

    from eshkol.lower.to_llvm import ENTRY_SYMBOL

    manifest, blob = gpu.blob()
    module_op = getattr(module_op, "operation", module_op)
    body = module_op.regions[0].blocks[0]
    entry = None
    for op in body.operations:
        if op.operation.name == "llvm.func" and ir.StringAttr(op.attributes["sym_name"]).value == ENTRY_SYMBOL:
            entry = op
    if entry is None:
        raise RuntimeError("internal error: no program entry to attach the GPU module to")
    inner = f"{ENTRY_SYMBOL}.program"
    ir.SymbolTable.set_symbol_name(entry, inner)
    ir.SymbolTable.replace_all_symbol_uses(ENTRY_SYMBOL, inner, module_op)
    m, b = (manifest + "\0").encode(), (blob + "\0").encode()
    n = max(1, len(fused_entries))
    arr = f"!llvm.array<{n} x ptr>"
    table = [f"  %u = llvm.mlir.zero : {arr}"]
    prev = "%u"
    for i, sym in enumerate(fused_entries):
        table.append(f"  %a{i} = llvm.mlir.addressof @{sym} : !llvm.ptr")
        table.append(f"  %t{i} = llvm.insertvalue %a{i}, {prev}[{i}] : {arr}")
        prev = f"%t{i}"
    table.append(f"  llvm.return {prev} : {arr}")
    # Declarations of what the snippet refers to, so that it parses alone (they stay behind).
    decls = [f"llvm.func @{sym}(i64, i64, !llvm.ptr, !llvm.ptr, !llvm.ptr)" for sym in fused_entries]
    decls.append(f"llvm.func @{inner}()")
    text = "\n".join(decls) + f"""
{_string_global("esk_cuda_manifest", m)}
{_string_global("esk_cuda_ptx", b)}
llvm.mlir.global private constant @esk_cuda_fused() {{addr_space = 0 : i32}} : {arr} {{
{chr(10).join(table)}
}}
llvm.func @{REGISTER}(!llvm.ptr, !llvm.ptr, i64, !llvm.ptr)
llvm.func @{ENTRY_SYMBOL}() {{
  %m = llvm.mlir.addressof @esk_cuda_manifest : !llvm.ptr
  %p = llvm.mlir.addressof @esk_cuda_ptx : !llvm.ptr
  %f = llvm.mlir.addressof @esk_cuda_fused : !llvm.ptr
  %n = llvm.mlir.constant({len(fused_entries)} : i64) : i64
  llvm.call @{REGISTER}(%m, %p, %n, %f) : (!llvm.ptr, !llvm.ptr, i64, !llvm.ptr) -> ()
  llvm.call @{inner}() : () -> ()
  llvm.return
}}
"""
    extra = ir.Module.parse(text, context=module_op.context)
    for op in list(extra.body.operations)[len(decls):]:
        body.append(op)


# ---- the passes ---------------------------------------------------------------------------------

ATTR_TARGET = "eshkol.gpu_target"   # "sm_90 +ptx80", set by the driver (else the default)
ATTR_MODULE = "eshkol.gpu_module"   # what eshkol-cuda-kernels made, for eshkol-cuda-host


def kernels_pass(module) -> None:
    """Compile the GPU kernels of the program (standard set and fused chains) to PTX."""
    from mlir import ir

    from eshkol.dialect import ops

    attrs = module.attributes
    target = gpu_target(*ir.StringAttr(attrs[ATTR_TARGET]).value.split()) if ATTR_TARGET in attrs \
        else gpu_target()
    fused: dict[str, tuple[str, str]] = {}

    def visit(op):
        if op.name == ops.TENSOR_FUSED:
            name = ir.StringAttr(op.attributes["kernel"]).value
            fused.setdefault(name, (ir.StringAttr(op.attributes["expr"]).value,
                                    ir.StringAttr(op.attributes["kinds"]).value))
        return ir.WalkResult.ADVANCE

    module.walk(visit)
    # The runtime's set and the program's chains are cached apart: the set is compiled once.
    std = compile_kernels(standard_kernels(), target)
    own = compile_kernels(program_kernels(list(fused.values()))[len(std.kernels):], target)
    gpu = GpuModule(target, std.kernels + own.kernels, f"{std.path}+{own.path}")
    attrs[ATTR_MODULE] = ir.StringAttr.get(json.dumps({
        "cache": gpu.path, "fused": list(fused)}))


def host_pass(module) -> None:
    """Embed the compiled GPU module in the (LLVM-dialect) program: registration at entry."""
    from mlir import ir

    from eshkol.lower.kernel_abi import entry_name

    attrs = module.attributes
    if ATTR_MODULE not in attrs:
        raise EshkolError(None, "eshkol-cuda-host needs eshkol-cuda-kernels first")
    info = json.loads(ir.StringAttr(attrs[ATTR_MODULE]).value)
    gpu = load_gpu_module(info["cache"])
    del attrs[ATTR_MODULE]
    if ATTR_TARGET in attrs:
        del attrs[ATTR_TARGET]
    attach(module, gpu, [entry_name(f"{k}_f64") for k in info["fused"]])


def set_target(module, chip: str | None, features: str | None) -> None:
    """Check the GPU options and record them on the module for eshkol-cuda-kernels."""
    from mlir import ir

    t = gpu_target(chip, features)
    module.operation.attributes[ATTR_TARGET] = ir.StringAttr.get(f"{t.chip} {t.features}")


def module_gpu(module) -> GpuModule:
    """The GPU module eshkol-cuda-kernels compiled for ``module``."""
    from mlir import ir

    attrs = module.operation.attributes
    return load_gpu_module(json.loads(ir.StringAttr(attrs[ATTR_MODULE]).value)["cache"])


# ---- which kernels a program's operations launch (the registry's 'gpu' rules) -----------------

def _ops(*names: str) -> tuple[str, ...]:
    return tuple(f"ew_{n}_" for n in names)


_GPU_RULES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("+", "%add2", "tensor-add"): _ops("add"),
    ("-", "%sub2", "tensor-sub"): _ops("sub", "neg"),
    ("%neg", "tensor-neg"): _ops("neg"),
    ("*", "%mul2", "tensor-mul", "tensor-scale"): _ops("mul"),
    ("/", "%div2", "tensor-div", "%recip"): _ops("div"),
    ("expt", "tensor-pow"): _ops("pow"),
    ("min", "%min2", "tensor-minimum"): _ops("min"),
    ("max", "%max2", "tensor-maximum"): _ops("max"),
    ("tensor-sum", "tensor-mean"): ("red_sum_", "redax_sum_", "ew_div_ts"),
    ("tensor-prod",): ("red_prod_", "redax_prod_"),
    ("tensor-max",): ("red_max_", "redax_max_"),
    ("tensor-min",): ("red_min_", "redax_min_"),
    ("gpu-zeros", "gpu-ones"): ("fill_",),
    ("gpu-tensor",): ("cast_",),
    ("matmul", "gpu-matmul", "tensor-matmul"): ("fill_", "ew_id_u4_"),
}
for _f in ("exp", "log", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "sqrt",
           "abs", "square"):
    _GPU_RULES[(_f, f"tensor-{_f}")] = _ops(_f)


def _register_rules() -> None:
    """Record the kernels each primitive may launch on GPU tensors as its 'gpu' rule."""
    from eshkol.dialect import primitives

    for names, kernels in _GPU_RULES.items():
        for n in names:
            p = primitives.lookup(n)
            if p is not None:
                p.rules["gpu"] = kernels


_register_rules()


def used_kernels(module) -> set[str]:
    """Name prefixes of the kernels the operations of ``module`` (eshkol dialect) may launch."""
    from mlir import ir

    from eshkol.dialect import ops, primitives

    used: set[str] = {"fused"}

    def visit(op):
        if op.name in (ops.PRIM, ops.PRIM_REF):
            p = primitives.lookup(ir.StringAttr(op.attributes["name"]).value)
            if p is not None:
                used.update(p.rules.get("gpu", ()))
        return ir.WalkResult.ADVANCE

    module.operation.walk(visit)
    return used


def describe(gpu: GpuModule, used: set[str] | None = None) -> str:
    """The GPU module as ``eshkol-translate --target=cuda`` prints it: the kernels whose names
    start with a prefix in ``used`` (all when None), each with its parameter sources, then its
    PTX."""
    shown = [k for k in gpu.kernels if used is None or k.name.startswith(tuple(used))]
    out = [f"// ==== GPU module: {len(gpu.kernels)} kernels, PTX for {gpu.target.chip} "
           f"({gpu.target.features}); parameters: aN = host argument N, cV = constant V"]
    if len(shown) < len(gpu.kernels):
        out.append(f"// showing the {len(shown)} kernels this program's operations launch; the "
                   f"executable embeds all {len(gpu.kernels)}")
    for k in shown:
        out.append(f"// ---- kernel {k.name}: entry {k.entry}, {k.block} threads per block, "
                   f"params {' '.join(p for p, _ in k.params)}")
        out.append(k.ptx.rstrip("\n"))
    return "\n".join(out) + "\n"
