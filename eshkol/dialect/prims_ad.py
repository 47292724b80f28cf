"""Calculus primitives (runtime_c/ad_forms.c on the runtime AD of ad.c): derivative and its
alias D, derivative-n, taylor, gradient, value-and-grad, jacobian, hessian, laplacian,
divergence, curl, directional-derivative, checkpoint-segment.

Each takes the procedure to differentiate first; the one-argument forms of derivative,
gradient, value-and-grad, jacobian, hessian, laplacian, divergence and curl return a
procedure of the point.  ``kind="calculus"`` marks them for the autodiff pass, which replaces
calls it can see through with transformed code and leaves the rest to these runtime entries.
"""

from __future__ import annotations

from eshkol.dialect.primitives import prim

prim("derivative", "derivative", 1, 2, kind="calculus")
prim("D", "derivative", 1, 2, kind="calculus")
prim("derivative-n", "derivative_n", 3, kind="calculus")
prim("taylor", "taylor", 3, kind="calculus")
# (gradient f x y ...) packs the extra arguments into one point (COMPAT.md).
prim("gradient", "gradient", 1, None, kind="calculus")
prim("value-and-grad", "value_and_grad", 1, None, kind="calculus")
prim("jacobian", "jacobian", 1, 2, kind="calculus")
prim("hessian", "hessian", 1, 2, kind="calculus")
prim("laplacian", "laplacian", 1, 2, kind="calculus")
prim("divergence", "divergence", 1, 2, kind="calculus")
prim("curl", "curl", 1, 2, kind="calculus")
prim("directional-derivative", "directional_derivative", 3, kind="calculus")
prim("checkpoint-segment", "checkpoint_segment", 1, kind="calculus")
