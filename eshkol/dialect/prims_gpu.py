"""GPU (CUDA) primitives: runtime_c/cuda_tensor.c.

CUDA tensors are ordinary tensors whose buffer lives on the GPU; the tensor builtins run on
them through the shim's kernels (a program compiled with ``--target=cuda`` embeds them), so
only moving data and choosing the device need builtins of their own. Without a GPU (or
without libcuda) these raise the catchable error "cuda: no CUDA driver found (libcuda.so.1)";
``gpu-available?`` says so without raising, and ``gpu-matmul`` of two host tensors is
``matmul`` (v1.x programs call it on machines without a GPU).
"""

from __future__ import annotations

from eshkol.dialect.primitives import prim

prim("gpu-available?", "gpu_available", 0, kind="inspect")
prim("gpu-tensor", "gpu_tensor", 1, 2, kind="create")        # (gpu-tensor x ['f32])
prim("gpu-zeros", "gpu_zeros", 0, None, kind="create")       # (gpu-zeros d ... ['f32])
prim("gpu-ones", "gpu_ones", 0, None, kind="create")
prim("gpu-matmul", "gpu_matmul", 2, kind="matmul")
prim("gpu-to-device!", "gpu_to_device", 1, kind="mutate")   # moves t's data; returns t
prim("gpu-to-host!", "gpu_to_host", 1, kind="mutate")
prim("tensor-device", "tensor_device", 1, kind="inspect")   # 'cpu or 'cuda:0
prim("gpu-synchronize", "gpu_synchronize", 0)                # waits for queued GPU work
# (with-device 'cuda:0 body ...) expands to (%with-device 'cuda:0 (lambda () body ...)); with
# the cuda target each creation builtin's result goes through %tensor-place (passes/cuda_place.py).
prim("%with-device", "with_device", 2)
prim("%tensor-place", "tensor_place", 1)
