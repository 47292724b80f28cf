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
import hashlib
import os
import pickle
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eshkol.lower import stablehlo_rules
from eshkol.lower.stablehlo import ArgSpec, NeedStatic, TType, XlaError, region_module
from eshkol.runtime.cache import cache_dir
from eshkol.runtime.toolchain import runtime_shared
from eshkol.syntax.diagnostics import EshkolError

# Tags and dtypes of runtime_c/include/eshkol_rt.h.
T_FIXNUM, T_FLONUM, T_TENSOR = 4, 5, 26
DT_F64, DT_F32, DT_I64 = 0, 1, 2
DEV_HOST = 0
_NP = {DT_F64: np.float64, DT_F32: np.float32, DT_I64: np.int64}
_NAME = {DT_F64: "f64", DT_F32: "f32", DT_I64: "i64"}
_CODE = {"f64": DT_F64, "f32": DT_F32, "i64": DT_I64}
_TAG_NAMES = {0: "the empty list", 1: "the unspecified value", 2: "a boolean", 3: "a character",
              16: "a pair", 17: "a string", 18: "a symbol", 19: "a vector", 20: "a procedure",
              24: "a hash table", 25: "a record", 28: "an error object", 31: "a dual number",
              32: "an AD tape node"}


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


CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_int64, ctypes.c_int64,
                            ctypes.POINTER(EskValue), ctypes.POINTER(EskValue), ctypes.c_void_p,
                            ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64)


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

@dataclass
class Compiled:
    executable: Any
    result: TType


class Backend:
    """jax's client for one platform, with compile and executable caches."""

    def __init__(self) -> None:
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
        self.memory: dict[str, Any] = {}

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


class Driver:
    """The callback's state: the program's regions, compiled executables, live results."""

    def __init__(self, regions: list, rt: ctypes.CDLL) -> None:
        self.regions = regions
        self.rt = rt
        self.backend: Backend | None = None
        self.compiled: dict[tuple, Compiled] = {}
        self.live: dict[int, Any] = {}
        self.next_handle = 1
        self.released = (ctypes.c_int64 * 1024)()
        rt.esk_xla_wrap.restype = EskValue
        rt.esk_xla_wrap.argtypes = [ctypes.c_int32, ctypes.c_int64, ctypes.POINTER(ctypes.c_int64),
                                    ctypes.c_void_p, ctypes.c_int64]
        rt.esk_xla_take_released.restype = ctypes.c_int64
        rt.esk_xla_take_released.argtypes = [ctypes.POINTER(ctypes.c_int64), ctypes.c_int64]
        self.callback = CALLBACK(self._callback)

    # ---- the callback ----------------------------------------------------------------------

    def _callback(self, loc, region, argc, argv, out, err, errlen, errloc, errloclen) -> int:
        try:
            out[0] = self.call(int(region), [argv[i] for i in range(argc)])
            return 0
        except BaseException as e:  # noqa: BLE001 - nothing may unwind through C frames
            if isinstance(e, EshkolError):
                msg, where = e.message, (str(e.loc) if e.loc.line > 0 else "")
            else:
                msg, where = f"internal error in the XLA driver: {type(e).__name__}: {e}", ""
            ctypes.memmove(err, msg.encode()[:errlen - 1] + b"\0", min(len(msg.encode()), errlen - 1) + 1)
            ctypes.memmove(errloc, where.encode()[:errloclen - 1] + b"\0",
                           min(len(where.encode()), errloclen - 1) + 1)
            return 1

    def _drain(self) -> None:
        while True:
            n = self.rt.esk_xla_take_released(self.released, len(self.released))
            for i in range(n):
                self.live.pop(self.released[i], None)
            if n < len(self.released):
                return

    def call(self, region_id: int, values: list[EskValue]) -> EskValue:
        """Run region ``region_id`` on the given argument values; the result as a value."""
        self._drain()
        region = self.regions[region_id]
        specs, arrays = [], []
        for i, v in enumerate(values):
            spec, arr = self._argument(region, i, v)
            specs.append(spec)
            arrays.append(arr)
        comp = self._compiled(region, specs, arrays)
        be = self.backend
        inputs = be.jax.device_put(arrays, be.device)
        result = comp.executable.execute(inputs)[0]
        result.block_until_ready()
        return self._to_value(result, comp.result)

    def _argument(self, region, i: int, v: EskValue) -> tuple[ArgSpec, np.ndarray]:
        if v.tag == T_FLONUM:
            x = struct.unpack("<d", struct.pack("<q", v.payload))[0]
            return ArgSpec(TType("f64"), True), np.array(x, dtype=np.float64)
        if v.tag == T_FIXNUM:
            return ArgSpec(TType("i64"), True), np.array(v.payload, dtype=np.int64)
        if v.tag == T_TENSOR:
            t = EskTensor.from_address(v.payload)
            if t.device != DEV_HOST:
                raise XlaError(None, f"input {_input_name(region, i)} of the XLA region is on a GPU; "
                                     "move it to the host first")
            arr = _host_array(t)
            return ArgSpec(TType(_NAME[t.dtype], arr.shape)), arr
        raise XlaError(None, f"input {_input_name(region, i)} of the XLA region is "
                             f"{_TAG_NAMES.get(v.tag, 'not a number')}, not a tensor or number")

    def _compiled(self, region, specs: list[ArgSpec], arrays: list[np.ndarray]) -> Compiled:
        while True:
            for i in region.static:  # inputs the region is specialised on by value
                if not specs[i].weak:
                    raise XlaError(region.loc, f"XLA region: {_input_name(region, i)} must be a number "
                                               "(it is used as a dimension or axis)")
                specs[i] = ArgSpec(specs[i].type, True, arrays[i].item())
            key = (region.id, tuple(s.key() for s in specs))
            comp = self.compiled.get(key)
            if comp is not None:
                return comp
            try:
                text, result = region_module(region, specs)
            except NeedStatic as need:
                if need.index in region.static:
                    raise XlaError(region.loc, "internal error: region specialisation did not converge") from None
                region.static.add(need.index)
                continue
            if self.backend is None:
                self.backend = Backend()
            if os.environ.get("ESHKOL_XLA_DUMP"):
                print(text, file=sys.stderr)
            comp = Compiled(self.backend.compile(text), result.type)
            self.compiled[key] = comp
            return comp

    def _to_value(self, result, t: TType) -> EskValue:
        if t.rank == 0:
            x = np.asarray(result).item()
            if t.dtype == "i64":
                return EskValue(T_FIXNUM, int(x))
            return EskValue(T_FLONUM, struct.unpack("<q", struct.pack("<d", float(x)))[0])
        handle = self.next_handle
        self.next_handle += 1
        self.live[handle] = result
        dims = (ctypes.c_int64 * t.rank)(*t.shape)
        ptr = result.unsafe_buffer_pointer() if t.size else None
        return self.rt.esk_xla_wrap(_CODE[t.dtype], t.rank, dims, ptr, handle)


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
