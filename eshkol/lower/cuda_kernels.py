"""The CUDA kernel catalogue: each kernel as a host function on memrefs whose body is one
``scf.parallel`` loop (MLIR text), ready for the GPU pipeline of ``eshkol.lower.cuda``.

Kernel names and argument orders are a contract with ``runtime_c/cuda_shim.c``, which fills
the arguments (memref descriptors as ``allocated, aligned, offset, sizes..., strides...``
slots, scalars, index counts) and launches ``ceil(work / 256)`` blocks of 256 threads:

  ew_<op>_tt_<dt>(a: M1s, b: M1s, o: M1)        o[i] = a[i] op b[i]        work = dim(o)
  ew_<op>_ts_<dt>(a: M1s, s: dt, o: M1)         o[i] = a[i] op s
  ew_<op>_st_<dt>(s: dt, b: M1s, o: M1)         o[i] = s op b[i]
  ew_<op>_b4_<dt>(a: M4s, b: M4s, o: M4, n)     rank-4 broadcasting (strides 0), work = n
  ew_<op>_u_<dt>(a: M1s, o: M1)                 unary, o[i] = op(a[i])
  ew_<op>_u4_<dt>(a: M4s, o: M4, n)             unary on a rank-4 strided view (id = copy)
  red_<op>_<dt>(a: M1s, p: M1)                  p[t] = op over a[t], a[t+T], ... (T = dim(p))
  redax_<op>_<dt>(a: M3s, o: M2, n)             o[i,j] = op over k of a[i,k,j], n = dims(o)
  fill_<dt>(s: dt, o: M1)                       o[i] = s
  cast_<from>_<to>(a: M1s, o: M1)               dtype conversion
  fused<i>_<dt>(operands..., o: M1)             chain i of the program (fused_kernels)
  fusedr<i>_<dt>(operands..., p: M1)            its partial reduction, when a sum/max/min

M1s is ``memref<?xT, strided<[?], offset: ?>>`` (stride 0 broadcasts a one-element operand),
M1 the contiguous ``memref<?xT>``; M4s/M3s are strided rank-4/3 views.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

DTYPES = ("f64", "f32")

# Binary operations: name -> MLIR template (fields r, x, y: SSA names; t: the element type).
BINARY: dict[str, str] = {
    "add": "{r} = arith.addf {x}, {y} : {t}",
    "sub": "{r} = arith.subf {x}, {y} : {t}",
    "mul": "{r} = arith.mulf {x}, {y} : {t}",
    "div": "{r} = arith.divf {x}, {y} : {t}",
    "pow": "{r} = math.powf {x}, {y} : {t}",
    "max": "{r} = arith.maximumf {x}, {y} : {t}",   # NaN-propagating, like numpy.maximum
    "min": "{r} = arith.minimumf {x}, {y} : {t}",
}

# Unary operations: name -> MLIR template (fields r, x, t).
UNARY: dict[str, str] = {
    # x + (-0.0) is x for every x, -0.0 and NaN included: the copy kernels.
    "id": "{r}_z = arith.constant -0.0 : {t}\n{r} = arith.addf {x}, {r}_z : {t}",
    "neg": "{r} = arith.negf {x} : {t}",
    "abs": "{r} = math.absf {x} : {t}",
    "sqrt": "{r} = math.sqrt {x} : {t}",
    "exp": "{r} = math.exp {x} : {t}",
    "log": "{r} = math.log {x} : {t}",
    "sin": "{r} = math.sin {x} : {t}",
    "cos": "{r} = math.cos {x} : {t}",
    "tan": "{r} = math.tan {x} : {t}",
    "asin": "{r} = math.asin {x} : {t}",
    "acos": "{r} = math.acos {x} : {t}",
    "atan": "{r} = math.atan {x} : {t}",
    "sinh": "{r} = math.sinh {x} : {t}",
    "cosh": "{r} = math.cosh {x} : {t}",
    "tanh": "{r} = math.tanh {x} : {t}",
    "square": "{r} = arith.mulf {x}, {x} : {t}",
}

# NVPTX lowers an f32 math.sqrt to sqrt.approx; through f64 it is correctly rounded (double
# rounding is exact for sqrt), as numpy's is.
SQRT_F32 = ("{r}_w = arith.extf {x} : f32 to f64\n{r}_s = math.sqrt {r}_w : f64\n"
            "{r} = arith.truncf {r}_s : f64 to f32")


def unary_text(op: str, r: str, x: str, t: str) -> str:
    """MLIR computing SSA ``r`` = op(``x``) in type ``t``."""
    if op == "sqrt" and t == "f32":
        return SQRT_F32.format(r=r, x=x)
    return UNARY[op].format(r=r, x=x, t=t)


# Reductions: name -> template combining the accumulator {x} with element {y}.
REDUCE: dict[str, str] = {
    "sum": BINARY["add"],
    "prod": BINARY["mul"],
    "max": BINARY["max"],
    "min": BINARY["min"],
    # NaN-skipping (C's fmax/fmin): the later stages of fused max/min chains, as on the CPU
    "maxnum": "{r} = arith.maxnumf {x}, {y} : {t}",
    "minnum": "{r} = arith.minnumf {x}, {y} : {t}",
}


def float_const(x: float, t: str) -> str:
    """An exact MLIR literal for ``x`` as type ``t`` (the IEEE bit pattern in hex)."""
    if t == "f64":
        return f"0x{struct.unpack('<Q', struct.pack('<d', x))[0]:016X}"
    return f"0x{struct.unpack('<I', struct.pack('<f', x))[0]:08X}"


_IDENTITY = {"sum": 0.0, "prod": 1.0, "max": float("-inf"), "min": float("inf"),
             "maxnum": float("-inf"), "minnum": float("inf")}


@dataclass(frozen=True)
class Kernel:
    """One kernel: its name (the PTX entry is ``<name>_kernel``) and host function text."""

    name: str
    func: str


def m1s(t: str) -> str:
    """A strided rank-1 memref (offset and stride given at run time)."""
    return f"memref<?x{t}, strided<[?], offset: ?>>"


def m1(t: str) -> str:
    """A contiguous rank-1 memref."""
    return f"memref<?x{t}>"


def mns(t: str, rank: int) -> str:
    """A strided memref of ``rank``."""
    q = ",".join("?" * rank)
    return f"memref<{'?x' * rank}{t}, strided<[{q}], offset: ?>>"


def mn(t: str, rank: int) -> str:
    """A contiguous memref of ``rank``."""
    return f"memref<{'?x' * rank}{t}>"


_PRE = """  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c3 = arith.constant 3 : index
  %c4 = arith.constant 4 : index
"""


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def _func(name: str, sig: str, pre: str, n: str, body: str) -> Kernel:
    """A host function running ``body`` (on flat index %i) for %i in [0, n) in parallel."""
    loop = (f"  scf.parallel (%i) = (%c0) to ({n}) step (%c1) {{\n{_indent(body, 4)}\n"
            f"    scf.reduce\n  }}\n")
    return Kernel(name, f"func.func @{name}({sig}) {{\n{_PRE}{pre}{loop}  return\n}}\n")


def _dim(v: str, ty: str, k: int = 0, name: str = "%n") -> str:
    return f"  {name} = memref.dim {v}, %c{k} : {ty}\n"


# i0..i3 from the flat index %i of a row-major rank-4 iteration over the dims %d0..%d3.
_SPLIT4 = ("%i3 = arith.remui %i, %d3 : index\n%k2 = arith.divui %i, %d3 : index\n"
           "%i2 = arith.remui %k2, %d2 : index\n%k1 = arith.divui %k2, %d2 : index\n"
           "%i1 = arith.remui %k1, %d1 : index\n%i0 = arith.divui %k1, %d1 : index")
_IDX4 = "[%i0, %i1, %i2, %i3]"


def _dims4(v: str, ty: str) -> str:
    return "".join(_dim(v, ty, k, f"%d{k}") for k in range(1, 4))


def binary_kernel(op: str, variant: str, t: str) -> Kernel:
    """``ew_<op>_<variant>_<t>``: variant tt (two tensors), ts / st (tensor and scalar), b4
    (rank-4 broadcasting)."""
    name = f"ew_{op}_{variant}_{t}"
    calc = BINARY[op].format(r="%r", x="%x", y="%y", t=t)
    store = f"memref.store %r, %o[%i] : {m1(t)}"
    if variant == "tt":
        return _func(name, f"%a: {m1s(t)}, %b: {m1s(t)}, %o: {m1(t)}", _dim("%o", m1(t)), "%n",
                     f"%x = memref.load %a[%i] : {m1s(t)}\n%y = memref.load %b[%i] : {m1s(t)}\n"
                     f"{calc}\n{store}")
    if variant == "ts":
        return _func(name, f"%a: {m1s(t)}, %y: {t}, %o: {m1(t)}", _dim("%o", m1(t)), "%n",
                     f"%x = memref.load %a[%i] : {m1s(t)}\n{calc}\n{store}")
    if variant == "st":
        return _func(name, f"%x: {t}, %b: {m1s(t)}, %o: {m1(t)}", _dim("%o", m1(t)), "%n",
                     f"%y = memref.load %b[%i] : {m1s(t)}\n{calc}\n{store}")
    a4, o4 = mns(t, 4), mn(t, 4)
    return _func(name, f"%a: {a4}, %b: {a4}, %o: {o4}, %n: index", _dims4("%o", o4), "%n",
                 f"{_SPLIT4}\n%x = memref.load %a{_IDX4} : {a4}\n%y = memref.load %b{_IDX4} : {a4}\n"
                 f"{calc}\nmemref.store %r, %o{_IDX4} : {o4}")


def unary_kernel(op: str, variant: str, t: str) -> Kernel:
    """``ew_<op>_u_<t>`` (rank 1) or ``ew_<op>_u4_<t>`` (a strided rank-4 view)."""
    name = f"ew_{op}_{variant}_{t}"
    calc = unary_text(op, "%r", "%x", t)
    if variant == "u":
        return _func(name, f"%a: {m1s(t)}, %o: {m1(t)}", _dim("%o", m1(t)), "%n",
                     f"%x = memref.load %a[%i] : {m1s(t)}\n{calc}\nmemref.store %r, %o[%i] : {m1(t)}")
    a4, o4 = mns(t, 4), mn(t, 4)
    return _func(name, f"%a: {a4}, %o: {o4}, %n: index", _dims4("%o", o4), "%n",
                 f"{_SPLIT4}\n%x = memref.load %a{_IDX4} : {a4}\n{calc}\n"
                 f"memref.store %r, %o{_IDX4} : {o4}")


def _strided_reduce(element, comb, t: str, store: str) -> str:
    """Loop body: thread %i combines element(k) for k = i, i+T, i+2T, ... < %n (neighbouring
    threads read neighbouring elements) into four independent accumulators, so that four loads
    are in flight, then ``store``s the result %acc. ``element(k, sfx)`` gives (lines, value)
    for index SSA ``k`` with names suffixed ``sfx``; ``comb(acc, x, r)`` the combining line."""
    ts = ", ".join([t] * 4)
    lines = ["%rem = arith.subi %n, %i : index", "%cnt = arith.ceildivui %rem, %T : index",
             "%q = arith.divui %cnt, %c4 : index", "%T4 = arith.muli %T, %c4 : index",
             f"%a0, %a1, %a2, %a3 = scf.for %j = %c0 to %q step %c1 iter_args(%w0 = %init, "
             f"%w1 = %init, %w2 = %init, %w3 = %init) -> ({ts}) {{",
             "  %jb = arith.muli %j, %T4 : index", "  %k0 = arith.addi %i, %jb : index",
             "  %k1 = arith.addi %k0, %T : index", "  %k2 = arith.addi %k1, %T : index",
             "  %k3 = arith.addi %k2, %T : index"]
    for m in range(4):
        el, x = element(f"%k{m}", f"_{m}")
        lines += ["  " + line for line in el] + ["  " + comb(f"%w{m}", x, f"%r{m}")]
    lines += [f"  scf.yield %r0, %r1, %r2, %r3 : {ts}", "}",
              "%jt = arith.muli %q, %c4 : index",
              f"%tl = scf.for %j = %jt to %cnt step %c1 iter_args(%wt = %init) -> ({t}) {{",
              "  %jo = arith.muli %j, %T : index", "  %kt = arith.addi %i, %jo : index"]
    el, x = element("%kt", "_t")
    lines += ["  " + line for line in el] + ["  " + comb("%wt", x, "%rt"), f"  scf.yield %rt : {t}", "}",
              comb("%a0", "%a1", "%b0"), comb("%a2", "%a3", "%b1"), comb("%b0", "%b1", "%b2"),
              comb("%b2", "%tl", "%acc"), store]
    return "\n".join(lines)


def reduce_kernel(op: str, t: str) -> Kernel:
    """``red_<op>_<t>``: thread i combines a[i], a[i+T], a[i+2T], ... into p[i], T = dim(p)."""
    pre = (_dim("%a", m1s(t)) + _dim("%p", m1(t), 0, "%T")
           + f"  %init = arith.constant {float_const(_IDENTITY[op], t)} : {t}\n")

    def element(k: str, sfx: str) -> tuple[list[str], str]:
        return [f"%x{sfx} = memref.load %a[{k}] : {m1s(t)}"], f"%x{sfx}"

    def comb(acc: str, x: str, r: str) -> str:
        return REDUCE[op].format(r=r, x=acc, y=x, t=t)

    body = _strided_reduce(element, comb, t, f"memref.store %acc, %p[%i] : {m1(t)}")
    return _func(f"red_{op}_{t}", f"%a: {m1s(t)}, %p: {m1(t)}", pre, "%T", body)


def reduce_axis_kernel(op: str, t: str) -> Kernel:
    """``redax_<op>_<t>``: o[i, j] = op over k of a[i, k, j] (the (outer, axis, inner) view of
    the reduced tensor); n = outer * inner."""
    comb = REDUCE[op].format(r="%r", x="%s", y="%x", t=t)
    a3, o2 = mns(t, 3), mn(t, 2)
    pre = (_dim("%a", a3, 1, "%len") + _dim("%o", o2, 1, "%inner")
           + f"  %init = arith.constant {float_const(_IDENTITY[op], t)} : {t}\n")
    body = (f"%j = arith.remui %i, %inner : index\n%q = arith.divui %i, %inner : index\n"
            f"%acc = scf.for %k = %c0 to %len step %c1 iter_args(%s = %init) -> ({t}) {{\n"
            f"  %x = memref.load %a[%q, %k, %j] : {a3}\n  {comb}\n  scf.yield %r : {t}\n}}\n"
            f"memref.store %acc, %o[%q, %j] : {o2}")
    return _func(f"redax_{op}_{t}", f"%a: {a3}, %o: {o2}, %n: index", pre, "%n", body)


def fill_kernel(t: str) -> Kernel:
    """``fill_<t>``: o[i] = s."""
    return _func(f"fill_{t}", f"%s: {t}, %o: {m1(t)}", _dim("%o", m1(t)), "%n",
                 f"memref.store %s, %o[%i] : {m1(t)}")


def cast_kernel(src: str, dst: str) -> Kernel:
    """``cast_<src>_<dst>``: dtype conversion (rounding to nearest)."""
    conv = "arith.extf" if (src, dst) == ("f32", "f64") else "arith.truncf"
    return _func(f"cast_{src}_{dst}", f"%a: {m1s(src)}, %o: {m1(dst)}", _dim("%o", m1(dst)), "%n",
                 f"%x = memref.load %a[%i] : {m1s(src)}\n%r = {conv} %x : {src} to {dst}\n"
                 f"memref.store %r, %o[%i] : {m1(dst)}")


def standard_kernels() -> list[Kernel]:
    """Every kernel the runtime's tensor operations launch, for both float dtypes."""
    out: list[Kernel] = []
    for t in DTYPES:
        for op in BINARY:
            for v in ("tt", "ts", "st", "b4"):
                out.append(binary_kernel(op, v, t))
        for op in UNARY:
            for v in ("u", "u4"):
                out.append(unary_kernel(op, v, t))
        for op in REDUCE:
            out.append(reduce_kernel(op, t))
            if op in ("sum", "prod", "max", "min"):
                out.append(reduce_axis_kernel(op, t))
        out.append(fill_kernel(t))
    out.append(cast_kernel("f32", "f64"))
    out.append(cast_kernel("f64", "f32"))
    return out


# ---- fused chains ------------------------------------------------------------------------------
# The chains passes/fuse_tensors.py makes (eshkol.tensor_fused: a prefix expression over
# operands $i, kinds 't'ensor / 's'calar), with the scalar semantics of lower/to_linalg.py's
# tables (the registry's 'linalg' rules), so the CPU and GPU kernels of a chain agree.

def _fused_value(e: tuple, kinds: str, t: str, lines: list[str], counter: list[int],
                 k: str = "%k", sfx: str = "") -> str:
    """SSA name of expression ``e`` at element index ``k``, emitting its computation into
    ``lines`` (names suffixed ``sfx``)."""
    from eshkol.lower.to_linalg import ELEMENTWISE

    if e[0] == "arg":
        i = e[1]
        if kinds[i] == "s":
            return f"%s{i}"
        v = f"%x{i}{sfx}"
        if not any(line.startswith(f"{v} =") for line in lines):
            lines.append(f"{v} = memref.load %l{i}[{k}] : {m1(t)}")
        return v
    kids = [_fused_value(c, kinds, t, lines, counter, k, sfx) for c in e[1:]]
    counter[0] += 1
    v = f"%v{counter[0]}{sfx}"
    if e[0] == "tensor-sqrt":
        lines.append(unary_text("sqrt", v, kids[0], t))
    else:
        lines.append(f"{v} = " + ELEMENTWISE[e[0]][1].format(*kids, T=t))
    return v


def _fused_params(kinds: str, t: str) -> list[str]:
    return [f"%l{i}: {m1(t)}" if k == "t" else f"%s{i}: {t}" for i, k in enumerate(kinds)]


def fused_kernels(index: int, expr: str, kinds: str) -> list[Kernel]:
    """Kernels of fused chain number ``index`` of a program, for both dtypes.

    Elementwise root: ``fused<index>_<t>(operands..., o: M1)``, o[k] = expr at k.
    Reduction root (tensor-sum/max/min of a chain): ``fusedr<index>_<t>(operands..., p: M1)``,
    thread i combines expr at i, i+T, ... into p[i] (then ``red_<op>`` finishes)."""
    from eshkol.lower.to_linalg import REDUCE as CPU_REDUCE
    from eshkol.lower.to_linalg import parse_expr

    e = parse_expr(expr)
    first = kinds.index("t")
    out = []
    for t in DTYPES:
        lines: list[str] = []
        if e[0] in CPU_REDUCE:
            identity, comb = CPU_REDUCE[e[0]]
            ident = float_const(_HEX_VALUES.get(identity, 0.0) if identity.startswith("0x")
                                else float(identity), t)
            sig = ", ".join(_fused_params(kinds, t) + [f"%p: {m1(t)}"])
            pre = (_dim(f"%l{first}", m1(t)) + _dim("%p", m1(t), 0, "%T")
                   + f"  %init = arith.constant {ident} : {t}\n")

            def element(k: str, sfx: str, t: str = t) -> tuple[list[str], str]:
                el: list[str] = []
                return el, _fused_value(e[1], kinds, t, el, [0], k, sfx)

            def combine(acc: str, x: str, r: str, comb: str = comb, t: str = t) -> str:
                return f"{r} = " + comb.format(acc, x, T=t)

            body = _strided_reduce(element, combine, t, f"memref.store %acc, %p[%i] : {m1(t)}")
            out.append(_func(f"fusedr{index}_{t}", sig, pre, "%T", body))
        else:
            x = _fused_value(e, kinds, t, lines, [0])
            lines.append(f"memref.store {x}, %o[%k] : {m1(t)}")
            sig = ", ".join(_fused_params(kinds, t) + [f"%o: {m1(t)}"])
            body = "%k = arith.addi %i, %c0 : index\n" + "\n".join(lines)
            out.append(_func(f"fused{index}_{t}", sig, _dim("%o", m1(t)), "%n", body))
    return out


_HEX_VALUES = {"0xFFF0000000000000": float("-inf"), "0x7FF0000000000000": float("inf")}
