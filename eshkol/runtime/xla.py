"""The XLA target's driver: runs outlined tensor regions through XLA, via jax's client.

``eshkol run --target=xla`` compiles a program whose tensor regions are calls of
``%xla-call`` (``eshkol.passes.xla_outline``) and, before it starts, ``install``s the regions
and a ctypes callback in the runtime (runtime_c/xla_bridge.c). At each call the callback reads
the inputs' dtypes and shapes (numbers are weakly typed scalars), generates StableHLO for that
signature (``eshkol.lower.stablehlo``), compiles it with the CPU (or GPU) backend of jax's
client, and runs it. Executables are cached in the process by (region, signature) and on disk
(serialized, under the eshkol cache folder) by the hash of the StableHLO text and the jax
version, so a second run of a program skips XLA's compiler too.

Data moves without copies where it can: tensors go to XLA as zero-copy host buffers (the
runtime's buffers are 64-byte aligned), and XLA's result buffers become Eshkol tensors
directly (``esk_xla_wrap``); a result is dropped here once the collector finds its tensor dead.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import os
import pickle
import struct
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eshkol.lower import stablehlo_rules
from eshkol.lower.stablehlo import NUMPY, ArgSpec, NeedStatic, TType, XlaError, region_module
from eshkol.runtime.cache import cache_dir
from eshkol.runtime.toolchain import runtime_shared
from eshkol.syntax.diagnostics import EshkolError

# Tags and dtypes of runtime_c/include/eshkol_rt.h.
T_FIXNUM, T_FLONUM, T_SYMBOL, T_TENSOR = 4, 5, 18, 26
DT_F64, DT_F32, DT_I64 = 0, 1, 2
DEV_HOST = 0
_NP = {DT_F64: np.float64, DT_F32: np.float32, DT_I64: np.int64}
_NAME = {DT_F64: "f64", DT_F32: "f32", DT_I64: "i64"}
_CODE = {"f64": DT_F64, "f32": DT_F32, "i64": DT_I64}


class EskValue(ctypes.Structure):
    _fields_ = [("tag", ctypes.c_int64), ("payload", ctypes.c_int64)]


class EskTensorBuf(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("bytes", ctypes.c_size_t), ("device", ctypes.c_int32),
                ("device_index", ctypes.c_int32), ("size_class", ctypes.c_int32), ("pad", ctypes.c_int32)]


class EskTensor(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("dtype", ctypes.c_int32),
                ("device", ctypes.c_int32), ("rank", ctypes.c_int64), ("size", ctypes.c_int64),
                ("offset", ctypes.c_int64), ("dims", ctypes.c_int64 * 8), ("strides", ctypes.c_int64 * 8),
                ("buf", ctypes.POINTER(EskTensorBuf))]


# The callback takes the address of an esk_xla_frame (runtime_c/xla_bridge.c), as a plain
# integer: one argument converts faster than the nine it replaced.
CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int64)
# esk_xla_frame: the inputs (loc, region, argc, argv, keylen, key), then what the driver
# writes: wrap flag, out value (tag, payload), data, handle, dtype, rank, dims; then err[2048],
# errloc[512], and the key's usual place. The driver reads and writes a frame through a
# memoryview (cached by address: a loop's calls reuse one stack slot), not through ctypes
# calls, which cost ~1 us each here.
_FRAME_IN = struct.Struct("<qqqqqq")
_OUT_AT = _FRAME_IN.size
_RESULT = struct.Struct("<qqq")          # wrap = 0, out
_WRAP = struct.Struct("<qqqqqqqq")       # wrap = 1, (unused out), data, handle, dtype, rank, dims
_ERR_AT, _ERRLEN, _ERRLOC_AT, _ERRLOCLEN = 112, 2048, 2160, 512
_FRAME_KEY_AT, _FRAME_SIZE = 2672, 4720
# esk_tensor as bytes: header (type, flags), dtype, device, rank, size, offset, dims[8],
# strides[8], buf.
TENSOR = struct.Struct("<IIiiqqq8q8qQ")
_VALUE = struct.Struct("<qq")
_QWORD = struct.Struct("<q")
_DOUBLE = struct.Struct("<d")


def missing_jax_message() -> str:
    return ("the XLA target needs jax and jaxlib: pip install 'eshkol[xla]' "
            "(or pip install 'jax[cpu]')")


def available() -> bool:
    """Whether jax can be imported (the XLA target's one optional dependency)."""
    try:
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


# ---- regions on disk, next to the compiled program ---------------------------------------------

def save_regions(path: Path, regions: list) -> None:
    """Store a program's regions beside its cache entry (the callback needs them on a hit)."""
    tmp = Path(f"{path}.{os.getpid()}.tmp")
    tmp.write_bytes(pickle.dumps(regions, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(tmp, path)


def load_regions(path: Path) -> list:
    return pickle.loads(path.read_bytes())


# ---- XLA ----------------------------------------------------------------------------------------

MISSING = object()


@dataclass
class Compiled:
    run: Callable[..., Any]  # device arrays -> the result's device array
    result: TType
    dims: Any = None  # the result's dims as a C array, for esk_xla_wrap

    def __post_init__(self) -> None:
        self.dims = (ctypes.c_int64 * max(1, self.result.rank))(*self.result.shape)
        self.code = _CODE.get(self.result.dtype, DT_F64)
        self.dims_at = ctypes.addressof(self.dims)


class Backend:
    """jax's client for one platform, with compile and executable caches. ``persistent``:
    keep compiled code on disk, under the eshkol cache folder (jax's compilation cache)."""

    def __init__(self, persistent: bool = False) -> None:
        try:
            import jax
            from jax._src import xla_bridge
            from jax._src.lib import xla_client
        except ImportError:
            raise XlaError(None, missing_jax_message()) from None
        jax.config.update("jax_enable_x64", True)  # f64 inputs must stay f64 through device_put
        self.jax = jax
        self.xc = xla_client
        self.client = xla_bridge.get_backend()
        self.device = self.client.local_devices()[0]
        self.devices = xla_client.DeviceList((self.device,))
        self.stamp = f"{jax.__version__}:{self.client.platform}:{self.client.platform_version}"
        # On the host, tensors and results share memory with XLA; on a GPU they are copied
        # (ESHKOL_XLA_COPY=1 copies on the host too: the GPU's data path, testable here).
        self.host = self.client.platform == "cpu" and not os.environ.get("ESHKOL_XLA_COPY")
        self.platform = {"gpu": "cuda"}.get(self.client.platform, self.client.platform)
        self.memory: dict[str, Any] = {}
        if persistent:
            try:
                jax.config.update("jax_compilation_cache_dir", str(cache_dir() / "xla"))
                jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
            except AttributeError:  # an older jax: executables are compiled in each run
                pass

    def options(self):
        opts = self.xc.CompileOptions()
        build = opts.executable_build_options
        build.num_replicas = 1
        build.num_partitions = 1
        return opts

    def compile(self, text: str) -> Any:
        """An executable for a StableHLO module: from memory, the disk cache, or XLA."""
        digest = hashlib.sha256((self.stamp + "\0" + text).encode()).hexdigest()[:32]
        exe = self.memory.get(digest)
        if exe is not None:
            return exe
        path = cache_dir() / "xla" / f"{digest}.bin"
        if path.exists():
            try:
                exe = self.client.deserialize_executable(path.read_bytes(), self.devices, self.options())
            except Exception:  # noqa: BLE001 - a stale or partial file: compile again
                exe = None
        if exe is None:
            exe = self.client.compile_and_load(text, self.devices, self.options())
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = Path(f"{path}.{os.getpid()}.tmp")
                tmp.write_bytes(self.client.serialize_executable(exe))
                os.replace(tmp, path)
            except Exception:  # noqa: BLE001 - serialization is an optimisation only
                pass
        self.memory[digest] = exe
        return exe

    def function(self, text: str, args: list[TType], result: TType) -> Callable[..., Any]:
        """A callable running the StableHLO module ``text`` on device arrays (one per
        ``args``), returning the result's array. Preferably the module taken as an exported
        function under jax.jit: its calls use jax's C++ dispatch, cheaper than the client's
        Python API; the client's executable otherwise (or with ESHKOL_XLA_CLIENT=1)."""
        fn = None if os.environ.get("ESHKOL_XLA_CLIENT") else self._exported(text, args, result)
        if fn is not None:
            return fn
        exe = self.compile(text)
        return lambda *inputs: exe.execute_sharded(list(inputs)).disassemble_into_single_device_arrays()[0][0]

    def _exported(self, text: str, args: list[TType], result: TType) -> Callable[..., Any] | None:
        try:  # jax's export API: internal enough to change between versions, hence the fallback
            from jax import export, tree_util
            from jax._src import core
            from jax._src.lib import _jax
            from jax._src.lib.mlir.dialects import hlo

            target = hlo.get_version_from_compatibility_requirement(hlo.StablehloCompatibilityRequirement.WEEK_4)
            sdy = getattr(self.client, "serialize_with_sdy", False)
            blob = _jax.mlir.serialize_portable_artifact(text, target, sdy)
            n = len(args)
            fields = dict(
                fun_name="eshkol_region", in_tree=tree_util.tree_structure((tuple(range(n)), {})),
                in_avals=tuple(core.ShapedArray(t.shape, NUMPY[t.dtype]) for t in args),
                out_tree=tree_util.tree_structure(0),
                out_avals=(core.ShapedArray(result.shape, NUMPY[result.dtype]),),
                _has_named_shardings=False, _in_named_shardings=(None,) * n, _out_named_shardings=(None,),
                in_shardings_hlo=(None,) * n, out_shardings_hlo=(None,), nr_devices=1,
                platforms=(self.platform,), ordered_effects=(), unordered_effects=(), disabled_safety_checks=(),
                mlir_module_serialized=blob, calling_convention_version=9, module_kept_var_idx=tuple(range(n)),
                uses_global_constants=False, _get_vjp=None)
            names = {f.name for f in dataclasses.fields(export.Exported)}
            exported = export.Exported(**{k: v for k, v in fields.items() if k in names})
            structs = [self.jax.ShapeDtypeStruct(t.shape, NUMPY[t.dtype]) for t in args]
            jitted = self.jax.jit(exported.call)
            # Compiled now, so that a failure takes the client's executable; the calls go
            # through the jitted function, whose C++ dispatch is ~40 us faster than the
            # compiled object's (measured on the MLP of benchmarks/tensors_xla.py).
            jitted.lower(*structs).compile()
            return jitted
        except Exception:  # noqa: BLE001 - any failure: the client's executable instead
            return None


class Driver:
    """The callback's state: the program's regions, compiled executables, live results."""

    def __init__(self, regions: list, rt: ctypes.CDLL) -> None:
        self.regions = regions
        self.rt = rt
        self.backend: Backend | None = None
        self.compiled: dict[tuple, Compiled] = {}
        self.views: dict[tuple, Any] = {}
        self.calls: dict[bytes, tuple] = {}  # a call's key (esk_xla_frame) -> (Compiled, inputs)
        self.frames: dict[int, memoryview] = {}
        self.threads: set[int] = set()
        self.scalars: dict[tuple, Any] = {}
        self.live: dict[int, Any] = {}
        self.next_handle = 1
        self.released = (ctypes.c_int64 * 1024)()
        rt.esk_tensor_new.restype = ctypes.c_void_p
        rt.esk_tensor_new.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_void_p]
        self.pending = ctypes.c_int64.in_dll(rt, "esk_xla_nreleased")
        rt.esk_xla_take_released.restype = ctypes.c_int64
        rt.esk_xla_take_released.argtypes = [ctypes.POINTER(ctypes.c_int64), ctypes.c_int64]
        self.callback = CALLBACK(self._callback)

    # ---- the callback ----------------------------------------------------------------------

    def _callback(self, frame: int) -> int:
        try:
            if threading.get_ident() not in self.threads:
                # ctypes gives a foreign thread a fresh Python thread state per callback, and
                # jax rebuilds its thread-local state each time (~0.3 ms a call): one extra
                # PyGILState_Ensure keeps this thread's state for the program's lifetime.
                self.threads.add(threading.get_ident())
                ctypes.pythonapi.PyGILState_Ensure()
            mv = self.frames.get(frame)
            if mv is None:
                if len(self.frames) >= 256:
                    self.frames.clear()
                mv = self.frames[frame] = memoryview((ctypes.c_char * _FRAME_SIZE).from_address(frame)).cast("B")
            _, region, argc, argv, keylen, keyaddr = _FRAME_IN.unpack_from(mv)
            self._drain()
            key = (mv[_FRAME_KEY_AT:_FRAME_KEY_AT + keylen].tobytes() if keyaddr == frame + _FRAME_KEY_AT
                   else ctypes.string_at(keyaddr, keylen))
            prepared = self.calls.get(key)
            if prepared is None:
                values = list(_VALUE.iter_unpack(ctypes.string_at(argv, 16 * argc))) if argc else []
                prepared = self._prepare(region, values, key)
                if prepared is None:
                    return 2  # run the cpu code
            comp, inputs = prepared
            result = comp.run(*inputs)
            result.block_until_ready()
            self._store(result, comp, mv)
            return 0

        except BaseException as e:  # noqa: BLE001 - nothing may unwind through C frames
            if isinstance(e, EshkolError):
                msg, where = e.message, (str(e.loc) if e.loc.line > 0 else "")
            else:
                msg, where = f"internal error in the XLA driver: {type(e).__name__}: {e}", ""
            for at, size, text in ((_ERR_AT, _ERRLEN, msg), (_ERRLOC_AT, _ERRLOCLEN, where)):
                data = text.encode()[:size - 1] + b"\0"
                ctypes.memmove(frame + at, data, len(data))
            return 1

    def _drain(self) -> None:
        if not self.pending.value:
            return
        while True:
            n = self.rt.esk_xla_take_released(self.released, len(self.released))
            for i in range(n):
                self.live.pop(self.released[i], None)
            if n < len(self.released):
                return

    def _prepare(self, region_id: int, values: list[tuple[int, int]], key: bytes) -> tuple | None:
        """The executable and its arguments for a call of region ``region_id`` on the argument
        values ((tag, payload) pairs); None when the region's cpu code must run instead (inputs
        XLA cannot take: values other than numbers, host tensors and symbols; for regions found
        automatically, also inputs the region cannot be compiled for).

        The signature (dtype and shape of each tensor, kind of each number, values of the
        inputs the region is specialised on) names the executable. When every argument can be
        used again (aliases of tensors' memory, numbers), the pair is remembered under the
        call's ``key``, so that the next call with the same inputs skips all of this."""
        region = self.regions[region_id]
        sig: list = []
        inputs: list = []
        static = region.static
        reusable = True
        for i, (tag, payload) in enumerate(values):
            if tag == T_TENSOR:
                h = TENSOR.unpack(ctypes.string_at(payload, TENSOR.size))
                if h[3] != DEV_HOST:
                    return None
                dtype, rank, buf = h[2], h[4], h[23]
                shape = h[7:7 + rank]
                sig.append((dtype, shape))
                base = _QWORD.unpack(ctypes.string_at(buf, 8))[0] if buf else 0
                view = (base + h[6] * (4 if dtype == DT_F32 else 8), dtype, shape, h[15:15 + rank])
                arr = self.views.get(view)
                if arr is None:
                    arr = self._device_array(payload, view)
                reusable = reusable and self.views.get(view) is arr
                inputs.append(arr)
            elif tag == T_FLONUM or tag == T_FIXNUM:
                x = _DOUBLE.unpack(_QWORD.pack(payload))[0] if tag == T_FLONUM else payload
                sig.append((tag, x) if i in static else tag)
                inputs.append(self._scalar(tag, x))
            elif tag == T_SYMBOL:  # a dtype name: the region is specialised on it
                sig.append((tag, _symbol_name(payload)))
                inputs.append(self._scalar(T_FIXNUM, 0))
            else:
                return None
        comp = self.compiled.get((region_id, tuple(sig)), MISSING)
        if comp is MISSING:
            comp = self._compile(region, values)
        if comp is None:
            return None
        if reusable:
            if len(self.calls) >= 4096:
                self.calls.clear()
            self.calls[key] = (comp, inputs)
        return comp, inputs

    def _device_array(self, payload: int, view: tuple):
        """A device array for a host tensor: a zero-copy alias of its memory, cached under
        ``view`` (address, dtype, shape, strides: the memory of a live tensor at that address
        is what the alias reads); strided or unaligned tensors are copied each time."""
        host = _host_array(EskTensor.from_address(payload))
        arr = self.backend_().jax.device_put(host, self.backend.device)
        if self.backend.host and host.size and arr.unsafe_buffer_pointer() == view[0]:  # an alias, not a copy
            if len(self.views) >= 4096:
                self.views.clear()
            self.views[view] = arr
        return arr

    def _scalar(self, tag: int, x):
        key = (tag, x)
        arr = self.scalars.get(key)
        if arr is None:
            if len(self.scalars) >= 1024:
                self.scalars.clear()
            dtype = np.float64 if tag == T_FLONUM else np.int64
            arr = self.scalars[key] = self.backend_().jax.device_put(np.array(x, dtype), self.backend.device)
        return arr

    def backend_(self) -> Backend:
        if self.backend is None:
            self.backend = Backend(persistent=True)
        return self.backend

    def _compile(self, region, values: list[tuple[int, int]]) -> Compiled | None:
        """The slow path: trace the region for these inputs, compile it (or load it from the
        disk cache) and remember it under the signature ``call`` computes."""
        while True:
            specs, sig = [], []
            for i, (tag, payload) in enumerate(values):
                v = EskValue(tag, payload)
                if v.tag == T_TENSOR:
                    t = EskTensor.from_address(v.payload)
                    shape = tuple(t.dims[:t.rank])
                    specs.append(ArgSpec(TType(_NAME[t.dtype], shape)))
                    sig.append((t.dtype, shape))
                    if i in region.static:
                        raise XlaError(region.loc, f"XLA region: {_input_name(region, i)} must be a number "
                                                   "(it is used as a dimension or axis)")
                    continue
                if v.tag == T_SYMBOL:
                    name = _symbol_name(v.payload)
                    specs.append(ArgSpec(TType("i64"), True, name))
                    sig.append((v.tag, name))
                    continue
                x = struct.unpack("<d", struct.pack("<q", v.payload))[0] if v.tag == T_FLONUM else v.payload
                dtype = "f64" if v.tag == T_FLONUM else "i64"
                specs.append(ArgSpec(TType(dtype), True, x if i in region.static else None))
                sig.append((v.tag, x) if i in region.static else v.tag)
            try:
                text, result = region_module(region, specs)
            except NeedStatic as need:
                if need.indices <= region.static:
                    raise XlaError(region.loc, "internal error: region specialisation did not converge") from None
                region.static |= need.indices
                continue
            except XlaError:
                if region.explicit:
                    raise
                self.compiled[(region.id, tuple(sig))] = None  # the cpu code, from now on
                return None
            if os.environ.get("ESHKOL_XLA_DUMP"):
                print(text, file=sys.stderr)
            comp = Compiled(self.backend_().function(text, [s.type for s in specs], result.type), result.type)
            self.compiled[(region.id, tuple(sig))] = comp
            return comp

    def _store(self, result, comp: Compiled, frame: memoryview) -> None:
        """Write the result into the frame: a number for rank 0, else a tensor over XLA's
        buffer (wrapped by the runtime once the callback returns)."""
        t = comp.result
        if t.rank == 0:
            x = np.asarray(result).item()
            value = (T_FIXNUM, int(x)) if t.dtype == "i64" else (T_FLONUM, _QWORD.unpack(_DOUBLE.pack(float(x)))[0])
            _RESULT.pack_into(frame, _OUT_AT, 0, *value)
            return
        if not self.backend.host:  # a GPU result: into a fresh runtime tensor
            data = np.ascontiguousarray(np.asarray(result))
            tensor = self.rt.esk_tensor_new(comp.code, t.rank, ctypes.addressof(comp.dims))
            h = TENSOR.unpack(ctypes.string_at(tensor, TENSOR.size))
            if data.nbytes:
                ctypes.memmove(_QWORD.unpack(ctypes.string_at(h[23], 8))[0], data.ctypes.data, data.nbytes)
            _RESULT.pack_into(frame, _OUT_AT, 0, T_TENSOR, tensor)
            return
        handle = self.next_handle
        self.next_handle += 1
        self.live[handle] = result
        ptr = result.unsafe_buffer_pointer() if t.size else 0
        _WRAP.pack_into(frame, _OUT_AT, 1, 0, 0, ptr, handle, comp.code, t.rank, comp.dims_at)


class EskString(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("len", ctypes.c_int64),
                ("data", ctypes.c_void_p)]


def _symbol_name(addr: int) -> str:
    """The name of the symbol at ``addr`` (esk_symbol: header, then its esk_string)."""
    string = EskString.from_address(ctypes.c_void_p.from_address(addr + 8).value)
    return ctypes.string_at(string.data, string.len).decode()


def _input_name(region, i: int) -> str:
    ref = region.free[i]
    name = ref if isinstance(ref, str) else ref.name
    return "(an argument expression)" if name.startswith("%") else name


def _host_array(t: EskTensor) -> np.ndarray:
    """A numpy view of a host tensor's elements (a contiguous copy when it is strided)."""
    dtype = np.dtype(_NP[t.dtype])
    shape = tuple(t.dims[i] for i in range(t.rank))
    if t.size == 0:
        return np.zeros(shape, dtype)
    base = t.buf.contents.base + t.offset * dtype.itemsize
    strides = [t.strides[i] for i in range(t.rank)]
    expect, n = [], 1
    for d in reversed(shape):
        expect.append(n)
        n *= d
    if all(s == e or d == 1 for s, e, d in zip(strides, reversed(expect), shape, strict=True)):
        buf = (ctypes.c_char * (t.size * dtype.itemsize)).from_address(base)
        return np.frombuffer(buf, dtype=dtype).reshape(shape)
    lo = sum(min(0, (d - 1) * s) for d, s in zip(shape, strides, strict=True))
    hi = sum(max(0, (d - 1) * s) for d, s in zip(shape, strides, strict=True))
    buf = (ctypes.c_char * ((hi - lo + 1) * dtype.itemsize)).from_address(base + lo * dtype.itemsize)
    flat = np.frombuffer(buf, dtype=dtype)
    view = np.lib.stride_tricks.as_strided(flat[-lo:], shape, [s * dtype.itemsize for s in strides])
    return np.ascontiguousarray(view)


_DRIVER: Driver | None = None


def install(regions: list) -> None:
    """Register the program's regions and the callback with the runtime (before it runs)."""
    global _DRIVER
    if regions and not available():
        raise EshkolError(None, missing_jax_message())
    stablehlo_rules.attach()
    rt = ctypes.CDLL(str(runtime_shared()), mode=ctypes.RTLD_GLOBAL)
    _DRIVER = Driver(regions, rt)
    rt.esk_xla_set_callback.argtypes = [CALLBACK]
    rt.esk_xla_set_callback(_DRIVER.callback)
