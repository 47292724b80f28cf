"""Procedures the generated adjoint code calls: written in Eshkol, compiled into the module.

The VJP rules of the tensor primitives need shape plumbing that depends on run-time shapes
(summing a cotangent down to a broadcast operand's shape, putting an axis back, scattering an
element read's cotangent): loops over axes that are simplest to write as Eshkol. Each helper
below is compiled by the frontend on first use and its procedure moved into the module being
transformed, under a reserved name (``esk.ad.<helper>``); generated code calls it like any
other known procedure. The helpers only call tensor builtins, so they run on the same tensor
runtime as everything else (and the same BLAS for matmul).
"""

from __future__ import annotations

from mlir import ir

from eshkol.dialect import ops

# A product's cotangent d fitted to its operand `like`: summed over the batch axes numpy's
# broadcasting added, then reshaped (an internal procedure of the product helpers below).
_FIT = """
  (define (fit d like)
    (if (equal? (tensor-shape d) (tensor-shape like))
        d
        (let lead ((d d))
          (if (> (tensor-rank d) (tensor-rank like)) (lead (tensor-sum d 0)) (reshape d (tensor-shape like))))))"""

# name -> Eshkol definition (one procedure each; only builtins and its own loops inside).
SOURCES: dict[str, str] = {
    # g summed down to like's shape: the adjoint of numpy broadcasting.
    "unbroadcast": """
(define (unbroadcast g like)
  (cond ((not (tensor? g)) g)
        ((not (tensor? like)) (tensor-sum g))
        ((equal? (tensor-shape g) (tensor-shape like)) g)
        (else
         (let ((k (tensor-rank like)) (ls (tensor-shape like)))
           (let lead ((g g))
             (if (> (tensor-rank g) k)
                 (lead (tensor-sum g 0))
                 (let inner ((i (- k 1)) (g g))
                   (cond ((< i 0) (reshape g ls))
                         ((and (= (list-ref ls i) 1) (not (= (list-ref (tensor-shape g) i) 1)))
                          (inner (- i 1) (tensor-sum g i)))
                         (else (inner (- i 1) g))))))))))
""",
    # The point of a transformed gradient: a float64 tensor in host memory.
    "host-f64-tensor?": """
(define (host-f64-tensor? x)
  (and (tensor? x) (eq? (tensor-dtype x) 'f64) (eq? (tensor-device x) 'cpu)))
""",
    # The zero adjoint of a value nothing used.
    "zero-like": """
(define (zero-like x) (if (tensor? x) (zeros-like x) 0.0))
""",
    # Cotangent of (tensor-sum x [axis]) / (tensor-mean x [axis]) with respect to x.
    "sum-vjp": """
(define (sum-vjp g x . axis)
  (cond ((not (tensor? x)) g)
        ((null? axis) (+ (zeros-like x) g))
        (else
         (let* ((shape (tensor-shape x)) (r (length shape))
                (ax (if (< (car axis) 0) (+ (car axis) r) (car axis))))
           (+ (zeros-like x)
              (reshape g (let put ((s shape) (i 0) (acc '()))
                           (if (null? s)
                               (reverse acc)
                               (put (cdr s) (+ i 1) (cons (if (= i ax) 1 (car s)) acc))))))))))
""",
    "mean-vjp": """
(define (mean-vjp g x . axis)
  (cond ((not (tensor? x)) g)
        ((null? axis) (/ (+ (zeros-like x) g) (exact->inexact (tensor-size x))))
        (else
         (let* ((shape (tensor-shape x)) (r (length shape))
                (ax (if (< (car axis) 0) (+ (car axis) r) (car axis))))
           (/ (+ (zeros-like x)
                 (reshape g (let put ((s shape) (i 0) (acc '()))
                              (if (null? s)
                                  (reverse acc)
                                  (put (cdr s) (+ i 1) (cons (if (= i ax) 1 (car s)) acc))))))
              (exact->inexact (list-ref shape ax)))))))
""",
    # Cotangents of r = (matmul a b): numpy matmul semantics (vectors, matrices, batches).
    "matmul-da": f"""
(define (matmul-da g a b)
{_FIT}
  (let ((ra (tensor-rank a)) (rb (tensor-rank b)))
    (cond ((and (= ra 1) (= rb 1)) (* g b))
          ((= ra 1) (matmul b g))
          ((= rb 1) (outer g b))
          (else (fit (%matmul-t g b #f #t) a)))))  ; g b^T, the transpose a view
""",
    "matmul-db": f"""
(define (matmul-db g a b)
{_FIT}
  (let ((ra (tensor-rank a)) (rb (tensor-rank b)))
    (cond ((and (= ra 1) (= rb 1)) (* g a))
          ((= ra 1) (outer a g))
          ((= rb 1) (matmul (transpose a) g))
          (else (fit (%matmul-t a g #t #f) b)))))  ; a^T g, the transpose a view
""",
    # Cotangents of r = (tensor-dot a b), numpy.dot: a scalar operand scales, otherwise (b of
    # rank <= 2) it is matmul (as the runtime's rule, which also refuses b of rank > 2).
    "dot-da": f"""
(define (dot-da g a b)
{_FIT}
  (let ((sa (or (not (tensor? a)) (= (tensor-rank a) 0)))
        (sb (or (not (tensor? b)) (= (tensor-rank b) 0))))
    (cond (sa (let ((c (* g b))) (if (tensor? c) (tensor-sum c) c)))
          (sb (* g b))
          ((> (tensor-rank b) 2)
           (error "tensor-dot: differentiation with a second operand of rank > 2 is not supported"))
          (else
           (let ((ra (tensor-rank a)) (rb (tensor-rank b)))
             (cond ((and (= ra 1) (= rb 1)) (* g b))
                   ((= ra 1) (matmul b g))
                   ((= rb 1) (outer g b))
                   (else (fit (matmul g (transpose b)) a))))))))
""",
    "dot-db": f"""
(define (dot-db g a b)
{_FIT}
  (let ((sa (or (not (tensor? a)) (= (tensor-rank a) 0)))
        (sb (or (not (tensor? b)) (= (tensor-rank b) 0))))
    (cond (sb (let ((c (* g a))) (if (tensor? c) (tensor-sum c) c)))
          (sa (* g a))
          ((> (tensor-rank b) 2)
           (error "tensor-dot: differentiation with a second operand of rank > 2 is not supported"))
          (else
           (let ((ra (tensor-rank a)) (rb (tensor-rank b)))
             (cond ((and (= ra 1) (= rb 1)) (* g a))
                   ((= ra 1) (outer a g))
                   (else (fit (matmul (transpose a (- ra 2) (- ra 1)) g) b))))))))
""",
    # Cotangent of (tensor-prod x [axis]): g times the product of the other elements of each
    # element's reduced slice. Not r / x, which is nan at a zero: with z zeros in a slice and
    # q the product of its nonzero elements, that is q / x when z = 0, q at the zero when
    # z = 1, and 0 when z > 1.
    "prod-vjp": """
(define (prod-vjp g x . axis)
  (if (not (tensor? x))
      g
      (let* ((shape (tensor-shape x))
             (ax (if (null? axis) #f (if (< (car axis) 0) (+ (car axis) (length shape)) (car axis))))
             ;; the reduced shape with the axis kept (size 1): reduced values broadcast back
             (ks (and ax (let put ((s shape) (i 0) (acc '()))
                           (if (null? s)
                               (reverse acc)
                               (put (cdr s) (+ i 1) (cons (if (= i ax) 1 (car s)) acc))))))
             (zero (tensor-eq x 0.0))
             (xs (tensor-where zero 1.0 x))
             (q (+ (zeros-like x) (if ax (reshape (tensor-prod xs ax) ks) (tensor-prod xs))))
             (z (+ (zeros-like x) (if ax (reshape (tensor-sum zero ax) ks) (tensor-sum zero)))))
        (tensor-mul (+ (zeros-like x) (if ax (reshape g ks) g))
                    (tensor-where (tensor-eq z 0.0) (tensor-div q xs)
                                  (tensor-where (tensor-eq z 1.0) (tensor-mul zero q) 0.0))))))
""",
    # sign(p) as floats (the derivative of abs: 0 at 0, as the runtime's rule).
    "sign": """
(define (sign p)
  (if (tensor? p)
      (tensor-sub (tensor-gt p 0.0) (tensor-lt p 0.0))
      (cond ((positive? p) 1.0) ((negative? p) -1.0) (else 0.0))))
""",
    # 1.0 where max (min) picks its first operand, ties included (ad_rules.c), else 0.0.
    "pick-first": """
(define (pick-first a b max)
  (cond ((and (tensor? a) (not (tensor? b)))  ; relu's (max x 0.0): no broadcast needed
         (if (= max 1) (tensor-ge a b) (tensor-le a b)))
        ((or (tensor? a) (tensor? b))
         (if (= max 1) (tensor-ge (+ a (* 0.0 b)) b) (tensor-le (+ a (* 0.0 b)) b)))
        (else (if (if (= max 1) (>= a b) (<= a b)) 1.0 0.0))))
""",
    # Cotangent g of an element or block read (tensor-get t i ...), added in place into the
    # fresh accumulator z (shaped like t); z is returned.
    "get-acc": """
(define (get-acc z g . idx)
  (apply tensor-set! z (append idx (list (+ (apply tensor-get z idx) g))))
  z)
""",
    # The same for (tensor-ref t i ...): one index on a tensor of rank other than 1 is flat.
    "ref-acc": """
(define (ref-acc z g . idx)
  (if (and (= (length idx) 1) (not (= (tensor-rank z) 1)))
      (let ((r (reshape z (list (tensor-size z)))))
        (tensor-set! r (car idx) (+ (tensor-get r (car idx)) g))
        (reshape r (tensor-shape z)))
      (begin (apply tensor-set! z (append idx (list (+ (apply tensor-get z idx) g)))) z)))
""",
    # Reverse sweeps through loops (autodiff_vjp_loop.py): a carried adjoint nothing has added
    # to yet is the fixnum 0 ('nothing yet', never a cotangent the rules make).
    "adj-add": """
(define (adj-add a c)
  (cond ((eq? a 0) c) ((eq? c 0) a) (else (+ a c))))
""",
    # A carried adjoint as a real cotangent of x: 'nothing yet' becomes zeros of x's shape.
    "adj-val": """
(define (adj-val g x)
  (if (eq? g 0) (if (tensor? x) (zeros-like x) 0.0) g))
""",
    # The in-place accumulator of element reads of x: a fresh zero tensor on first use.
    "adj-acc-start": """
(define (adj-acc-start acc x)
  (if (eq? acc 0) (zeros-like x) acc))
""",
    # Cotangent g of (tensor-slice t bounds...) added in place into the fresh accumulator z
    # (shaped like t) where the slice read; z is returned. Runtime-AD operands (a gradient
    # under a runtime derivative) take the tape-friendly way: z plus g padded with zeros.
    "slice-acc": """
(define (slice-acc z g . bounds)
  (cond ((if (null? (cdr bounds))
             (%tensor-slice-add! z g (car bounds))
             (%tensor-slice-add! z g (car bounds) (cadr bounds))))
        ((and (= (tensor-rank z) 1) (= (length bounds) 2) (number? (car bounds)) (number? (cadr bounds)))
         ;; a range of a vector: g between two runs of zeros
         (let* ((n (tensor-size z))
                (s (car bounds)) (s (if (< s 0) (+ s n) s))
                (e (cadr bounds)) (e (if (< e 0) (+ e n) e)))
           (+ z (tensor-concat (zeros s) (reshape g (tensor-size g)) (zeros (- n (max s e)))))))
        (else
         ;; the flat positions the slice read (distinct: a slice never reads one twice) get g
         (let* ((n (tensor-size z))
                (pos (apply tensor-slice (reshape (arange n) (tensor-shape z)) bounds))
                (p (zeros n)))
           (tensor-scatter! p (reshape pos (tensor-size pos)) (reshape g (tensor-size g)))
           (+ z (reshape p (tensor-shape z)))))))
""",
}

PREFIX = "esk.ad."


def helper_symbol(module_body: ir.Block, funcs: dict, name: str) -> str:
    """The symbol of helper ``name`` in the module (compiled and moved in on first use)."""
    sym = PREFIX + name
    if sym in funcs:
        return sym
    from eshkol.frontend.compile import source_to_module  # late: the frontend imports passes

    src, _ = source_to_module(SOURCES[name], f"<autodiff {name}>", internal=True)
    body = src.body
    made = None
    for op in list(body.operations):
        op = op.operation
        if op.name != "func.func" or ops.ATTR_NREQ not in op.attributes:
            continue
        if made is not None:
            raise RuntimeError(f"internal error: autodiff helper {name} compiled to several procedures")
        made = op
    if made is None:
        raise RuntimeError(f"internal error: autodiff helper {name} compiled to no procedure")
    made.attributes["sym_name"] = ir.StringAttr.get(sym)
    made.attributes[ops.ATTR_NAME] = ir.StringAttr.get(sym)
    first = list(module_body.operations)[-1].operation
    made.move_after(first)
    funcs[sym] = made
    return sym
