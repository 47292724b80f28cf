"""The runtime ABI as the LLVM lowering sees it; mirrors runtime_c/include/eshkol_rt.h."""

from __future__ import annotations

VALUE = "!llvm.struct<(i64, i64)>"  # esk_value {tag, payload}

# Value tags (enum in eshkol_rt.h).
T_NIL, T_VOID, T_BOOL, T_CHAR, T_FIXNUM, T_FLONUM, T_EOF, T_DEFAULT, T_UNBOUND = range(9)
T_PAIR, T_STRING, T_SYMBOL, T_VECTOR, T_CLOSURE, T_BOX = 16, 17, 18, 19, 20, 21
T_TENSOR = 26

IMM_TAGS = {"bool": T_BOOL, "char": T_CHAR, "nil": T_NIL, "void": T_VOID, "default": T_DEFAULT}

# Byte offsets inside heap objects (after the 8-byte header).
PAIR_CAR, PAIR_CDR = 0, 16  # pairs have no header
BOX_VALUE = 8
CLOSURE_CODE = 8
CLOSURE_FREE = 32
VALUE_SIZE = 16

MAX_ARGS = 1024

# Runtime functions the lowering calls, with their LLVM signatures (values split in two i64).
RUNTIME_DECLS = {
    "esk_make_closure": "(!llvm.ptr, !llvm.ptr, i64) -> " + VALUE,
    "esk_make_box": "(i64, i64) -> " + VALUE,
    "esk_make_string_literal": "(!llvm.ptr, i64) -> " + VALUE,
    "esk_intern": "(!llvm.ptr, i64) -> " + VALUE,
    "esk_make_exact_from_string": "(!llvm.ptr) -> " + VALUE,
    "esk_list_from_args": "(i64, !llvm.ptr) -> " + VALUE,
    "esk_init_globals": "(!llvm.ptr, i64) -> !llvm.void",
    "esk_error_unbound": "(!llvm.ptr, !llvm.ptr) -> !llvm.void",
    "esk_error_not_procedure": "(!llvm.ptr, i64, i64) -> !llvm.void",
    "esk_error_arity_at": "(!llvm.ptr, i64, i64, i64) -> !llvm.void",
    "esk_stack_overflow": "(!llvm.ptr) -> !llvm.void",
    # fused tensor chains (runtime_c/kernels.c): loc, argc, argv, kinds, root, f64 and f32 entries
    "esk_tensor_fused": "(!llvm.ptr, i64, !llvm.ptr, !llvm.ptr, i64, !llvm.ptr, !llvm.ptr) -> " + VALUE,
}

# Globals defined by the runtime.
ARGBUF = "esk_argbuf_main"     # esk_value[MAX_ARGS]: arguments of every call
CALLSITE = "esk_callsite"      # const char*: location of the call being made (arity errors)
STACK_LIMIT = "esk_stack_limit"


def mlir_string(data: bytes) -> str:
    """``data`` as an MLIR string literal body (non-printable bytes as \\XX)."""
    out = []
    for b in data:
        c = chr(b)
        if 32 <= b < 127 and c not in '"\\':
            out.append(c)
        else:
            out.append(f"\\{b:02X}")
    return "".join(out)
