"""Tensor primitives: creation, inspection and indexing, elementwise operations, reductions,
shape operations and linear algebra (LANGUAGE.md "Tensors", COMPAT.md section B).

Each builtin is a registry entry like the scalar ones, with a ``kind`` that passes key on
instead of a dedicated dialect op:

- ``create``: makes a fresh tensor from numbers/shapes (no tensor operands).
- ``inspect``: reads metadata (shape, rank, size, dtype, ``tensor?``).
- ``index``: reads elements or views (``tensor-get``, ``tensor-ref``, ``vref``, gather).
- ``elementwise``: numpy-broadcasting elementwise map (the tables below give the operation).
- ``mutate``: writes into its first tensor operand (``tensor-set!``, ``tensor-add!`` ...).
- ``reduce``: reduction over all elements or one axis (``REDUCTIONS``).
- ``shape``: reshapes/permutes/joins without arithmetic.
- ``matmul``, ``contract``, ``linalg``: matrix products, contractions, factorizations.

C functions: runtime_c/tensor*.c (helper T1: tensor.c, tensor_create.c, tensor_index.c,
tensor_ops.c, tensor_reduce.c) and runtime_c/tensor_linalg.c / tensor_extra.c (linear algebra
and the extended operations); their prototypes are in runtime_c/include/eshkol_rt.h.
"""

from __future__ import annotations

from eshkol.dialect.primitives import prim

# ---- creation -------------------------------------------------------------------------------
# Creation builtins take an optional trailing dtype symbol ('f64 default, 'f32, 'i64).
# The expander turns an unquoted #(...) into %tensor-const (all elements numeric constants) or
# %tensor-literal (shape vector constant, then the element expressions).
prim("%tensor-literal", "tensor_literal", 1, None, kind="create")
prim("%tensor-const", "tensor_const", 2, kind="create")
prim("tensor", "tensor", 0, None, kind="create")
for _n in ("zeros", "ones", "rand", "randn", "random-tensor"):
    prim(_n, _n.replace("-", "_"), 0, None, kind="create")
prim("make-tensor", "make_tensor", 1, 3, kind="create")
prim("eye", "eye", 1, 3, kind="create")
prim("arange", "arange", 1, 4, kind="create")
prim("linspace", "linspace", 3, 4, kind="create")
prim("random-seed!", "random_seed", 1, kind="create")
prim("zeros-like", "zeros_like", 1, kind="create")
prim("ones-like", "ones_like", 1, kind="create")
prim("tensor-fill", "tensor_fill", 2, kind="create")
prim("list->tensor", "list_to_tensor", 1, 2, kind="create")
prim("vector->tensor", "vector_to_tensor", 1, 2, kind="create")
prim("tensor->list", "tensor_to_list", 1, kind="create")
prim("tensor->vector", "tensor_to_vector", 1, kind="create")
prim("tensor-data", "tensor_to_vector", 1, kind="create")
prim("tensor-astype", "tensor_astype", 2, kind="elementwise")

# ---- inspection and indexing ------------------------------------------------------------------
prim("tensor?", "is_tensor", 1, kind="inspect")
prim("tensor-shape", "tensor_shape", 1, kind="inspect")
prim("tensor-rank", "tensor_rank", 1, kind="inspect")
prim("tensor-size", "tensor_size", 1, kind="inspect")
prim("tensor-length", "tensor_size", 1, kind="inspect")
prim("tensor-dtype", "tensor_dtype", 1, kind="inspect")
prim("tensor-get", "tensor_get", 1, None, kind="index")
prim("tensor-ref", "tensor_ref", 2, None, kind="index")
prim("vref", "vref", 2, kind="index")
prim("tensor-set!", "tensor_set", 2, None, kind="mutate")   # value LAST
prim("tensor-set", "tensor_set", 2, None, kind="mutate")

# ---- elementwise --------------------------------------------------------------------------------
# Eshkol name -> the operation (ESK_OP_* in eshkol_rt.h, lower case), for passes and targets.
ELEMENTWISE_BINARY: dict[str, str] = {
    "tensor-add": "add", "tensor-sub": "sub", "tensor-mul": "mul", "tensor-div": "div",
    "tensor-scale": "mul", "tensor-pow": "expt", "tensor-maximum": "max",
    "tensor-minimum": "min",
}
ELEMENTWISE_UNARY: dict[str, str] = {
    "tensor-neg": "neg", "tensor-abs": "abs", "tensor-sqrt": "sqrt", "tensor-exp": "exp",
    "tensor-log": "log", "tensor-sin": "sin", "tensor-cos": "cos", "tensor-tan": "tan",
    "tensor-tanh": "tanh", "tensor-square": "square",
}
for _n in ELEMENTWISE_BINARY:
    prim(_n, _n.replace("-", "_"), 2, kind="elementwise")
for _n in ELEMENTWISE_UNARY:
    prim(_n, _n.replace("-", "_"), 1, kind="elementwise")
prim("tensor-apply", "tensor_apply", 2, kind="elementwise")   # (tensor-apply f t) or (t f)
# Comparisons and selection (tensor_extra.c): 1.0/0.0 masks, numpy broadcasting.
for _n in ("tensor-eq", "tensor-ne", "tensor-lt", "tensor-gt", "tensor-le", "tensor-ge"):
    prim(_n, _n.replace("-", "_"), 2, kind="elementwise")
prim("tensor-where", "tensor_where", 3, kind="elementwise")

# In place: the first operand is updated and returned.
for _n, _c in [("tensor-add!", "tensor_add_bang"), ("tensor-sub!", "tensor_sub_bang"),
               ("tensor-mul!", "tensor_mul_bang"), ("tensor-div!", "tensor_div_bang"),
               ("tensor-scale!", "tensor_scale_bang")]:
    prim(_n, _c, 2, kind="mutate")
prim("tensor-axpy!", "tensor_axpy_bang", 3, kind="mutate")   # (y a x) or BLAS order (a x y)

# ---- reductions (optional axis) -----------------------------------------------------------------
REDUCTIONS: dict[str, str] = {
    "tensor-sum": "sum", "tensor-mean": "mean", "tensor-max": "max", "tensor-min": "min",
    "tensor-prod": "prod", "tensor-variance": "variance", "tensor-var": "variance",
    "tensor-std": "std", "tensor-argmax": "argmax", "tensor-argmin": "argmin",
}
for _n, _r in REDUCTIONS.items():
    prim(_n, "tensor_" + _r, 1, 2, kind="reduce")

# ---- shape ------------------------------------------------------------------------------------
prim("reshape", "reshape", 1, None, kind="shape")          # (reshape t d ...) | (reshape t list)
prim("tensor-reshape", "reshape", 1, None, kind="shape")
prim("flatten", "flatten", 1, kind="shape")
prim("transpose", "transpose", 1, 3, kind="shape")         # (transpose T) | (transpose T i j)
prim("tensor-transpose", "transpose", 1, 3, kind="shape")
prim("tensor-broadcast", "tensor_broadcast", 2, kind="shape")
prim("tensor-concat", "tensor_concat", 1, None, kind="shape")
prim("tensor-stack", "tensor_stack", 1, None, kind="shape")
prim("tensor-split", "tensor_split", 2, 3, kind="shape")
prim("tensor-slice", "tensor_slice", 2, 3, kind="shape")
# The transformed gradient's slice-cotangent accumulation (autodiff_helpers.py).
prim("%tensor-slice-add!", "tensor_slice_add_bang", 3, 4, kind="mutate")
prim("tensor-gather", "tensor_gather", 2, 3, kind="index")

# ---- linear algebra (tensor_linalg.c) ----------------------------------------------------------
prim("matmul", "matmul", 2, kind="matmul")
prim("tensor-matmul", "matmul", 2, kind="matmul")
# matmul with operands' last two axes swapped on request: the transformed matmul VJP's
# g b^T and a^T g without copying the transposes (autodiff_helpers.py).
prim("%matmul-t", "matmul_t", 4)
prim("tensor-dot", "tensor_dot", 2, kind="contract")
prim("outer", "outer", 2, kind="contract")
prim("trace", "trace", 1, kind="contract")
prim("norm", "norm", 1, 2, kind="linalg")
prim("det", "det", 1, kind="linalg")
prim("tensor-det", "det", 1, kind="linalg")
prim("inv", "inv", 1, kind="linalg")
prim("tensor-inverse", "inv", 1, kind="linalg")
prim("solve", "solve", 2, kind="linalg")
prim("tensor-solve", "solve", 2, kind="linalg")
prim("linear-solve", "solve", 2, kind="linalg")

# ---- linear algebra and extended ops (tensor_linalg.c, tensor_einsum.c, tensor_decomp.c) -------
prim("batch-matmul", "matmul", 2, kind="matmul")            # v1.x: matmul broadcasts batches
prim("einsum", "einsum", 2, None, kind="contract")          # (einsum "ij,jk->ik" A B ...)
prim("tensor-cholesky", "tensor_cholesky", 1, kind="linalg")
prim("tensor-qr", "tensor_qr", 1, kind="linalg")            # -> (Q R), reduced
prim("tensor-lstsq", "tensor_lstsq", 2, kind="linalg")
prim("tensor-svd", "tensor_svd", 1, kind="linalg")          # -> (U S V), A = U diag(S) V^T
prim("tensor-eig", "tensor_eig", 1, kind="linalg")          # symmetric: -> (w V), ascending
# v1.x names (COMPAT.md B/C) with the same C functions: the axis may come first.
prim("concatenate", "tensor_concat", 1, None, kind="shape")   # (concatenate axis t ...)
prim("stack", "tensor_stack", 1, None, kind="shape")          # (stack axis t1 t2 ...)
prim("split", "tensor_split", 2, 3, kind="shape")             # (split t n axis)
prim("slice", "tensor_slice", 2, 3, kind="shape")             # (slice t start end)
prim("tensor-lu", "tensor_lu", 1, kind="linalg")            # -> (LU perm sign), P A = L U
prim("tensor-topk", "tensor_topk", 2, 3, kind="reduce")     # -> (values indices), descending
prim("tensor-scatter!", "tensor_scatter_bang", 3, 4, kind="mutate")  # inverse of tensor-gather
prim("squeeze", "squeeze", 1, 2, kind="shape")
prim("tile", "tile", 2, kind="shape")
prim("pad", "pad", 2, 3, kind="shape")                      # (pad t width [value])
