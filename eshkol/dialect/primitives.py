"""The primitive registry: every builtin procedure is declared here once.

An entry gives the Eshkol name, the arity, the C runtime function that implements it (the CPU
lowering's rule), an optional inline fast path, and how calls with other argument counts
reduce to it. The expander resolves names here, the frontend emits ``eshkol.prim`` with the
entry's name, and each target lowers by looking the entry up; no stage keeps its own list.

C calling convention (runtime_c/prims.c): fixed arity k <= 2 is
``esk_value esk_prim_C(const char *loc, esk_value a, esk_value b)``; k >= 3 or variadic is
``esk_value esk_prim_C(const char *loc, int64_t argc, esk_value *argv)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Primitive:
    """One builtin procedure."""

    name: str                 # the Eshkol name (also the eshkol.prim `name` attribute)
    cname: str                # C symbol is esk_prim_<cname>
    min_args: int
    max_args: int | None      # None: variadic
    fast: str | None = None   # inline fast path in lower/fastpaths.py (CPU target)
    # n-ary reduction when called with a count other than 2: 'assoc' folds left with `binary`
    # from `identity`; 'left' folds from the first argument (one argument: `unary`);
    # 'chain' compares neighbours pairwise and ands the results.
    nary: str | None = None
    binary: str | None = None
    unary: str | None = None
    identity: int | None = None
    # Structural class that passes key on: 'elementwise', 'reduce', 'matmul', 'shape',
    # 'create', 'calculus', ... (None: an opaque scalar builtin).
    kind: str | None = None
    # Per-target and per-transformation rules, keyed 'stablehlo', 'linalg', 'gpu', 'jvp', 'vjp'.
    rules: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def argv_convention(self) -> bool:
        """True when the C function takes (loc, argc, argv) instead of values."""
        return self.max_args is None or self.max_args >= 3 or self.min_args != self.max_args

    def accepts(self, n: int) -> bool:
        """Whether ``n`` arguments is a valid call."""
        return n >= self.min_args and (self.max_args is None or n <= self.max_args)

    def arity_text(self) -> str:
        """Human-readable arity for error messages."""
        if self.max_args is None:
            return f"at least {self.min_args}"
        if self.min_args == self.max_args:
            return str(self.min_args)
        return f"{self.min_args} to {self.max_args}"


PRIMITIVES: dict[str, Primitive] = {}


def prim(name: str, cname: str, min_args: int, max_args: int | None = -1, **kw) -> None:
    """Register a primitive; ``max_args`` defaults to ``min_args`` (fixed arity)."""
    PRIMITIVES[name] = Primitive(name, cname, min_args, min_args if max_args == -1 else max_args, **kw)


def rule(key: str, *names: str) -> Callable[[Callable], Callable]:
    """Decorator: register ``fn`` as the ``key`` rule ('stablehlo', 'jvp', ...) of ``names``."""
    def register(fn: Callable) -> Callable:
        for n in names:
            PRIMITIVES[n].rules[key] = fn
        return fn
    return register


def lookup(name: str) -> Primitive | None:
    """The primitive called ``name``, if any."""
    return PRIMITIVES.get(name)


# ---- numbers -------------------------------------------------------------------------------
# Binary forms (the names starting with '%' are internal: not visible as Eshkol identifiers).
prim("%add2", "add2", 2, fast="add2")
prim("%sub2", "sub2", 2, fast="sub2")
prim("%mul2", "mul2", 2, fast="mul2")
prim("%div2", "div2", 2, fast="div2")
prim("%num=2", "num_eq2", 2, fast="num_eq2")
prim("%num<2", "num_lt2", 2, fast="num_lt2")
prim("%num>2", "num_gt2", 2, fast="num_gt2")
prim("%num<=2", "num_le2", 2, fast="num_le2")
prim("%num>=2", "num_ge2", 2, fast="num_ge2")
prim("%min2", "min2", 2)
prim("%max2", "max2", 2)
prim("%gcd2", "gcd2", 2)
prim("%lcm2", "lcm2", 2)
prim("+", "add", 0, None, nary="assoc", binary="%add2", identity=0)
prim("*", "mul", 0, None, nary="assoc", binary="%mul2", identity=1)
prim("-", "sub", 1, None, nary="left", binary="%sub2", unary="%neg")
prim("/", "div", 1, None, nary="left", binary="%div2", unary="%recip")
prim("=", "num_eq", 1, None, nary="chain", binary="%num=2")
prim("<", "num_lt", 1, None, nary="chain", binary="%num<2")
prim(">", "num_gt", 1, None, nary="chain", binary="%num>2")
prim("<=", "num_le", 1, None, nary="chain", binary="%num<=2")
prim(">=", "num_ge", 1, None, nary="chain", binary="%num>=2")
prim("min", "min", 1, None, nary="left", binary="%min2")
prim("max", "max", 1, None, nary="left", binary="%max2")
prim("gcd", "gcd", 0, None, nary="assoc", binary="%gcd2", identity=0)
prim("lcm", "lcm", 0, None, nary="assoc", binary="%lcm2", identity=1)
prim("%neg", "neg", 1)
prim("%recip", "recip", 1)
for _n, _c in [("quotient", "quotient"), ("remainder", "remainder"), ("modulo", "modulo"),
               ("expt", "expt")]:
    prim(_n, _c, 2)
prim("atan", "atan_n", 1, 2)
for _n, _c in [("abs", "abs"), ("exact->inexact", "exact_to_inexact"), ("inexact", "exact_to_inexact"),
               ("inexact->exact", "inexact_to_exact"), ("exact", "inexact_to_exact"),
               ("floor", "floor"), ("ceiling", "ceiling"), ("round", "round"), ("truncate", "truncate"),
               ("sqrt", "sqrt"), ("exp", "exp"), ("log", "log"), ("sin", "sin"), ("cos", "cos"),
               ("tan", "tan"), ("sinh", "sinh"), ("cosh", "cosh"), ("tanh", "tanh"),
               ("asin", "asin"), ("acos", "acos"), ("square", "square"),
               ("number?", "is_number"), ("integer?", "is_integer"), ("exact?", "is_exact"),
               ("inexact?", "is_inexact"), ("zero?", "is_zero"), ("positive?", "is_positive"),
               ("negative?", "is_negative"), ("odd?", "is_odd"), ("even?", "is_even"),
               ("real?", "is_real"), ("rational?", "is_rational"), ("exact-integer?", "is_exact_integer"),
               ("nan?", "is_nan"), ("infinite?", "is_infinite"), ("finite?", "is_finite"),
               ("numerator", "numerator"), ("denominator", "denominator")]:
    prim(_n, _c, 1)
# Optional radix: (number->string z [radix]), (string->number s [radix]).
prim("number->string", "number_to_string", 1, 2)
prim("string->number", "string_to_number", 1, 2)

# ---- pairs and lists -------------------------------------------------------------------------
prim("cons", "cons", 2, fast="cons")
prim("car", "car", 1, fast="car")
prim("cdr", "cdr", 1, fast="cdr")
prim("set-car!", "set_car", 2)
prim("set-cdr!", "set_cdr", 2)
for _n in ["cadr", "cddr", "caar", "cdar", "caddr", "cdddr"]:
    prim(_n, _n, 1)
prim("list", "list", 0, None)
prim("append", "append", 0, None)
for _n, _c in [("length", "length"), ("reverse", "reverse"), ("list?", "is_list")]:
    prim(_n, _c, 1)
prim("null?", "is_null", 1, fast="is_null")
prim("pair?", "is_pair", 1, fast="is_pair")
for _n, _c in [("list-ref", "list_ref"), ("list-tail", "list_tail"), ("memq", "memq"),
               ("memv", "memv"), ("member", "member"), ("assq", "assq"), ("assv", "assv"),
               ("assoc", "assoc")]:
    prim(_n, _c, 2)

# ---- equality and type predicates -----------------------------------------------------------
prim("eq?", "eq", 2, fast="eq")
prim("eqv?", "eqv", 2)
prim("equal?", "equal", 2)
prim("not", "not", 1, fast="not")
for _n, _c in [("symbol?", "is_symbol"), ("string?", "is_string"), ("char?", "is_char"),
               ("boolean?", "is_boolean"), ("procedure?", "is_procedure"), ("vector?", "is_vector")]:
    prim(_n, _c, 1)

# ---- strings, characters, symbols ---------------------------------------------------------
prim("string-length", "string_length", 1)
prim("string-ref", "string_ref", 2)
prim("substring", "substring", 2, 3)
prim("string-append", "string_append", 0, None)
prim("string=?", "string_eq2", 2)
prim("string<?", "string_lt2", 2)
for _n, _c in [("string->symbol", "string_to_symbol"), ("symbol->string", "symbol_to_string"),
               ("string-upcase", "string_upcase"), ("string-downcase", "string_downcase"),
               ("string->list", "string_to_list"), ("list->string", "list_to_string"),
               ("char->integer", "char_to_integer"), ("integer->char", "integer_to_char"),
               ("string-copy", "string_copy")]:
    prim(_n, _c, 1)
prim("string", "string", 0, None)

# ---- vectors ---------------------------------------------------------------------------------
prim("vector", "vector", 0, None)
prim("make-vector", "make_vector", 1, 2)
prim("vector-ref", "vector_ref", 2, fast="vector_ref")
prim("vector-set!", "vector_set", 3, fast="vector_set")
prim("vector-length", "vector_length", 1)
prim("vector->list", "vector_to_list", 1)
prim("list->vector", "list_to_vector", 1)
prim("vector-fill!", "vector_fill", 2)

# ---- control ---------------------------------------------------------------------------------
prim("apply", "apply", 1, None)

# ---- output ----------------------------------------------------------------------------------
prim("display", "display_port", 1, 2)
prim("write", "write_port", 1, 2)
prim("newline", "newline_port", 0, 1)
prim("write-string", "write_string_port", 1, 4)
prim("write-char", "write_char_port", 1, 2)
prim("exit", "exit", 0, 1)
prim("command-line", "command_line", 0)

# ---- control: conditions, dynamic-wind, continuations, values, parameters, promises, records
# (runtime_c/control.c; the special forms that use the '%' entries are in expand/expander.py)
prim("values", "values", 0, None)
prim("call-with-values", "call_with_values", 2)
prim("%mv-ref", "mv_ref", 3)
prim("%mv-rest", "mv_rest", 2)
prim("floor/", "floor_slash", 2)
prim("truncate/", "truncate_slash", 2)
prim("error", "error", 1, None)
prim("raise", "raise", 1)
prim("raise-continuable", "raise_continuable", 1)
prim("with-exception-handler", "with_exception_handler", 2)
prim("%with-guard", "with_guard", 2)
prim("%reraise", "reraise", 2)
prim("error-object?", "is_error_object", 1)
prim("error-object-message", "error_object_message", 1)
prim("error-object-irritants", "error_object_irritants", 1)
prim("file-error?", "is_file_error", 1)
prim("read-error?", "is_read_error", 1)
prim("%assert-fail", "assert_fail", 1)
prim("dynamic-wind", "dynamic_wind", 3)
prim("call-with-current-continuation", "call_cc", 1)
prim("call/cc", "call_cc", 1)
# exit runs the after thunks of pending dynamic-winds first (LANGUAGE.md); emergency-exit not.
prim("exit", "exit_unwind", 0, 1)
prim("emergency-exit", "exit", 0, 1)
prim("make-parameter", "make_parameter", 1, 2)
prim("%parameterize", "parameterize", 3)
prim("parameter?", "is_parameter", 1)
prim("%delay", "delay", 1)
prim("%delay-force", "delay_force", 1)
prim("make-promise", "make_promise", 1)
prim("promise?", "is_promise", 1)
prim("force", "force", 1)
prim("%make-rtd", "make_rtd", 2)
prim("%record", "record", 1, None)
prim("%record?", "is_record_of", 2)
prim("%record-ref", "record_ref", 4)
prim("%record-set!", "record_set", 5)
prim("%case-lambda", "case_lambda", 1, None)

# ---- data types and I/O (runtime_c/strings.c, hash.c, ports.c) -----------------------------
# Entries here replace earlier ones of the same name (string=?, string-copy, vector->list ...
# gain their R7RS optional arguments / variadic forms).
for _n, _c in [("char-upcase", "char_upcase"), ("char-downcase", "char_downcase"),
               ("char-foldcase", "char_foldcase"), ("char-alphabetic?", "is_char_alphabetic"),
               ("char-numeric?", "is_char_numeric"), ("char-whitespace?", "is_char_whitespace"),
               ("char-upper-case?", "is_char_upper_case"),
               ("char-lower-case?", "is_char_lower_case"), ("digit-value", "digit_value"),
               ("string-upcase", "string_upcase_u"), ("string-downcase", "string_downcase_u"),
               ("string-foldcase", "string_foldcase"), ("string-trim", "string_trim"),
               ("string-trim-left", "string_trim_left"), ("string-trim-right", "string_trim_right"),
               ("string-null?", "string_null"), ("string-reverse", "string_reverse"),
               ("bytevector?", "is_bytevector"), ("bytevector-length", "bytevector_length"),
               ("hash-table?", "is_hash_table"), ("hash-table-count", "hash_table_count"),
               ("hash-table/count", "hash_table_count"), ("hash-table-size", "hash_table_count"),
               ("hash-table-keys", "hash_table_keys"), ("hash-table-values", "hash_table_values"),
               ("hash-table->alist", "hash_table_to_alist"),
               ("hash-table-clear!", "hash_table_clear"),
               ("open-input-string", "open_input_string"),
               ("get-output-string", "get_output_string"),
               ("open-input-file", "open_input_file"), ("close-port", "close_port"),
               ("close-input-port", "close_input_port"),
               ("close-output-port", "close_output_port"),
               ("call-with-output-string", "call_with_output_string"),
               ("port?", "is_port"), ("input-port?", "is_input_port"),
               ("output-port?", "is_output_port"), ("textual-port?", "is_port"),
               ("file-exists?", "file_exists"), ("delete-file", "delete_file"),
               ("eof-object?", "is_eof_object")]:
    prim(_n, _c, 1)
prim("char->digit", "char_to_digit", 1, 2)
prim("digit->char", "digit_to_char", 1, 2)
for _n, _c in [("char=?", "char_eq"), ("char<?", "char_lt"), ("char>?", "char_gt"),
               ("char<=?", "char_le"), ("char>=?", "char_ge"), ("char-ci=?", "char_ci_eq"),
               ("char-ci<?", "char_ci_lt"), ("char-ci>?", "char_ci_gt"),
               ("char-ci<=?", "char_ci_le"), ("char-ci>=?", "char_ci_ge"),
               ("string=?", "string_eq"), ("string<?", "string_lt"), ("string>?", "string_gt"),
               ("string<=?", "string_le"), ("string>=?", "string_ge"),
               ("string-ci=?", "string_ci_eq"), ("string-ci<?", "string_ci_lt"),
               ("string-ci>?", "string_ci_gt"), ("string-ci<=?", "string_ci_le"),
               ("string-ci>=?", "string_ci_ge")]:
    prim(_n, _c, 1, None)
for _n, _c in [("string-contains", "string_contains"), ("string-index", "string_index"),
               ("string-prefix?", "string_prefix"), ("string-suffix?", "string_suffix"),
               ("vector-grow", "vector_grow"), ("bytevector-u8-ref", "bytevector_u8_ref"),
               ("hash-table-delete!", "hash_table_delete"), ("hash-delete!", "hash_table_delete"),
               ("hash-table-contains?", "hash_table_contains"),
               ("hash-table-exists?", "hash_table_contains"),
               ("hash-table-walk", "hash_table_walk"), ("hash-table-for-each", "hash_table_walk"),
               ("call-with-output-file", "call_with_output_file"),
               ("call-with-input-file", "call_with_input_file"),
               ("call-with-port", "call_with_port")]:
    prim(_n, _c, 2)
prim("string-copy", "string_copy_range", 1, 3)
prim("make-string", "make_string", 1, 2)
prim("string-set!", "string_set", 3)
prim("string-fill!", "string_fill", 2, 4)
prim("string-copy!", "string_copy_to", 3, 5)
prim("string-split", "string_split", 1, 2)
prim("string-join", "string_join", 1, 2)
prim("string-search-forward", "string_search_forward", 2, 3)
prim("string->vector", "string_to_vector", 1, 3)
prim("vector->string", "vector_to_string", 1, 3)
prim("symbol-append", "symbol_append", 0, None)
prim("gensym", "gensym", 0, 1)
prim("vector-copy", "vector_copy", 1, 3)
prim("subvector", "subvector", 3)
prim("vector->list", "vector_to_list_range", 1, 3)
prim("vector-append", "vector_append", 0, None)
prim("vector-fill!", "vector_fill_range", 2, 4)
prim("vector-copy!", "vector_copy_to", 3, 5)
prim("make-bytevector", "make_bytevector", 1, 2)
prim("bytevector", "bytevector", 0, None)
prim("bytevector-u8-set!", "bytevector_u8_set", 3)
prim("bytevector-copy", "bytevector_copy", 1, 3)
prim("bytevector-copy!", "bytevector_copy_to", 3, 5)
prim("bytevector-append", "bytevector_append", 0, None)
prim("utf8->string", "utf8_to_string", 1, 3)
prim("string->utf8", "string_to_utf8", 1, 3)
# Hash tables (make-hash-table takes optional SRFI-69 equivalence/hash arguments).
prim("make-hash-table", "make_hash_table", 0, None)
prim("make-equal-hash-table", "make_hash_table", 0, None)
prim("make-eq-hash-table", "make_eq_hash_table", 0, None)
prim("make-eqv-hash-table", "make_eqv_hash_table", 0, None)
prim("make-strong-eqv-hash-table", "make_eqv_hash_table", 0, None)
prim("make-string-hash-table", "make_string_hash_table", 0, None)
prim("hash-table-set!", "hash_table_set", 3)
prim("hash-set!", "hash_table_set", 3)
prim("hash-table-ref", "hash_table_ref", 2, 4)
prim("hash-table-ref/default", "hash_table_ref_default", 3)
prim("hash-ref", "hash_ref", 2, 3)
prim("hash-table-update!", "hash_table_update", 3, 4)
prim("hash-table-update!/default", "hash_table_update_default", 4)
prim("hash-table-copy", "hash_table_copy", 1, 2)
prim("hash-table-fold", "hash_table_fold", 3)
prim("alist->hash-table", "alist_to_hash_table", 1, None)
# Ports. (current-output-port p) makes p current, as a Chez parameter does; the prelude's
# with-output-to-string uses it inside dynamic-wind.
prim("current-output-port", "current_output_port", 0, 1)
prim("current-input-port", "current_input_port", 0, 1)
prim("current-error-port", "current_error_port", 0)
prim("open-output-string", "open_output_string", 0)
prim("open-output-file", "open_output_file", 1, 2)
prim("write-line", "write_line", 1, 2)
prim("flush-output-port", "flush_output_port", 0, 1)
prim("read-char", "read_char", 0, 1)
prim("peek-char", "peek_char", 0, 1)
prim("char-ready?", "char_ready", 0, 1)
prim("read-line", "read_line", 0, 1)
prim("read-string", "read_string", 1, 2)
prim("read", "read", 0, 1)
prim("eof-object", "eof_object", 0)
prim("format", "format", 1, None)
prim("printf", "printf", 1, None)


# ---- area registries ---------------------------------------------------------------------------
# Each area declares its primitives in its own module (tensors, calculus, devices, v1.x compat),
# imported here for effect after the core entries so that an area may refine a core entry.
# Per-target rules (stablehlo, linalg, gpu, jvp, vjp) live in Primitive.rules, filled in by
# the module implementing that target through `rule()`.
from eshkol.dialect import prims_tensor  # noqa: E402,F401,I001 (order: later areas refine earlier ones)
from eshkol.dialect import prims_ad  # noqa: E402,F401
from eshkol.dialect import prims_gpu  # noqa: E402,F401
from eshkol.dialect import prims_compat  # noqa: E402,F401
from eshkol.dialect import prims_xla  # noqa: E402,F401
