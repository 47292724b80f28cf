"""Builtins of Eshkol v1.x (COMPAT.md sections A and B) that are neither tensor nor calculus
operations: the internal entries behind the v1.x special forms (``extern``, keyword
parameters, ``with-region``) and the v1.x procedures implemented in C (runtime_c/compat*.c).

Entries here are registered after the core ones, so a name declared again replaces the core
entry (used where v1.x accepts more arguments than R7RS does)."""

from __future__ import annotations

from eshkol.dialect.primitives import prim

# ---- internal entries of special forms (eshkol/expand/compat.py) -----------------------------
prim("%ffi-proc", "ffi_proc", 4)
prim("%ffi-var", "ffi_var", 2)
prim("%kw-parse", "kw_parse", 3)
prim("%with-region", "with_region", 2)

# ---- numbers (runtime_c/compat.c; aliases reuse the core C functions) -------------------------
for _n, _c in [("%", "modulo"), ("mod", "modulo"), ("floor-remainder", "modulo"),
               ("truncate-quotient", "quotient"), ("truncate-remainder", "remainder"),
               ("pow", "expt"), ("atan2", "atan2"), ("make-rational", "v1_make_rational"),
               ("/rational", "v1_make_rational"), ("arithmetic-shift", "v1_arithmetic_shift"),
               ("bit-shift-left", "v1_shift_left"), ("bit-shift-right", "v1_shift_right")]:
    prim(_n, _c, 2)
for _n, _c in [("ceil", "ceiling"), ("trunc", "truncate"), ("fabs", "v1_fabs"), ("cbrt", "v1_cbrt"),
               ("exp2", "v1_exp2"), ("log10", "v1_log10"), ("log2", "v1_log2"),
               ("asinh", "v1_asinh"), ("acosh", "v1_acosh"), ("atanh", "v1_atanh"),
               ("exact-rational?", "v1_is_exact_rational"), ("bitwise-not", "v1_bitwise_not"),
               ("bit-count", "v1_bit_count"), ("popcount", "v1_bit_count"),
               ("complex?", "is_number")]:
    prim(_n, _c, 1)
for _n, _c in [("bitwise-and", "v1_bitwise_and"), ("bitwise-or", "v1_bitwise_or"),
               ("bitwise-xor", "v1_bitwise_xor")]:
    prim(_n, _c, 0, None)
# (log x [base]); one argument keeps the elementwise tensor behaviour of the core `log`.
prim("log", "v1_log", 1, 2)
prim("void", "v1_void", 0, None)

# ---- binary ports ---------------------------------------------------------------------------
prim("open-binary-input-file", "open_input_file", 1)
prim("open-binary-output-file", "open_output_file", 1, 2)
prim("read-u8", "v1_read_u8", 0, 1)
prim("peek-u8", "v1_peek_u8", 0, 1)
prim("u8-ready?", "v1_u8_ready", 0, 1)
prim("read-bytevector", "v1_read_bytevector", 1, 2)
prim("write-u8", "v1_write_u8", 1, 2)
prim("write-bytevector", "v1_write_bytevector", 1, 4)
prim("input-port-open?", "v1_input_port_open", 1)
prim("output-port-open?", "v1_output_port_open", 1)
prim("binary-port?", "v1_is_binary_port", 1)
prim("string-port?", "v1_is_string_port", 1)
prim("write-shared", "write_port", 1, 2)
prim("write-line", "v1_write_line", 1, 2)  # v1.x: write, then a newline
prim("write-simple", "write_port", 1, 2)

# ---- files, paths and the system --------------------------------------------------------------
for _n, _c in [("read-file", "v1_read_file"), ("file-mmap", "v1_read_file"),
               ("mkdir-recursive", "v1_mkdir_recursive"),
               ("directory-delete-recursive", "v1_directory_delete_recursive"),
               ("file-mtime", "v1_file_mtime"), ("mkstemp", "v1_mkstemp"),
               ("realpath", "v1_realpath"), ("symlink-read", "v1_symlink_read"),
               ("directory?", "v1_is_directory"), ("file-directory?", "v1_is_directory"),
               ("directory-list", "v1_directory_list"),
               ("executable-exists?", "v1_executable_exists"), ("getenv", "v1_getenv"),
               ("get-environment-variable", "v1_getenv"), ("system", "v1_system")]:
    prim(_n, _c, 1)
for _n, _c in [("write-file", "v1_write_file"), ("rename-file", "v1_rename_file"),
               ("file-copy", "v1_file_copy"), ("copy-file", "v1_file_copy"),
               ("symlink-create", "v1_symlink_create"), ("glob-match", "v1_glob_match"),
               ("setenv", "v1_setenv")]:
    prim(_n, _c, 2)
for _n, _c in [("getpid", "v1_getpid"), ("hostname", "v1_hostname"), ("username", "v1_username"),
               ("home-directory", "v1_home_directory"), ("temp-directory", "v1_temp_directory"),
               ("os-type", "v1_os_type"), ("os-arch", "v1_os_arch"), ("cpu-count", "v1_cpu_count"),
               ("current-second", "v1_current_second"), ("current-jiffy", "v1_current_jiffy"),
               ("jiffies-per-second", "v1_jiffies_per_second"), ("current-time-us", "v1_time_us"),
               ("time-us", "v1_time_us"), ("time-ns", "v1_time_ns"),
               ("quantum-random", "v1_entropy_random")]:
    prim(_n, _c, 0)

# ---- random numbers --------------------------------------------------------------------------
prim("random", "v1_random", 0, 1)
prim("prng-random", "v1_prng_next", 1)

# ---- R7RS's optional comparison argument of member and assoc (LANGUAGE.md: the superset) ------
prim("member", "v1_member", 2, 3)
prim("assoc", "v1_assoc", 2, 3)

# ---- tensor files of the nn builtins (runtime_c/tensor_nn.c) ------------------------------------
prim("tensor-save", "tensor_save", 2)     # (tensor-save path t) -> #t
prim("tensor-load", "tensor_load", 1)     # (tensor-load path) -> tensor
prim("model-save", "model_save", 2)       # (model-save path alist) -> #t/#f
prim("model-load", "model_load", 1)       # (model-load path) -> ((name . tensor) ...)
