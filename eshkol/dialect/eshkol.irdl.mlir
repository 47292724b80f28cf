// The eshkol dialect.  Functions, branches and returns come from the upstream func and cf
// dialects; these ops cover Eshkol's dynamic values, closures, calls and primitives.
// Every op carries the source location of the expression it came from (its MLIR location).
irdl.dialect @eshkol {
  // A dynamically typed value (16 bytes at runtime: tag and payload).
  irdl.type @value {}

  irdl.operation @const_int {
    %a = irdl.base "#builtin.integer"
    irdl.attributes {"value" = %a}
    %v = irdl.base @eshkol::@value
    irdl.results(result: %v)
  }
  irdl.operation @const_float {
    %a = irdl.base "#builtin.float"
    irdl.attributes {"value" = %a}
    %v = irdl.base @eshkol::@value
    irdl.results(result: %v)
  }
  // Booleans, characters (code point) and the immediate specials: kind is one of
  // "bool", "char", "nil", "void", "default" (a missing optional argument).
  irdl.operation @const_imm {
    %k = irdl.base "#builtin.string"
    %a = irdl.base "#builtin.integer"
    irdl.attributes {"kind" = %k, "value" = %a}
    %v = irdl.base @eshkol::@value
    irdl.results(result: %v)
  }
  // An exact integer beyond 64 bits or an exact rational: decimal "n" or "n/d" (lowest terms),
  // created once when the module starts.
  irdl.operation @const_exact {
    %a = irdl.base "#builtin.string"
    irdl.attributes {"value" = %a}
    %v = irdl.base @eshkol::@value
    irdl.results(result: %v)
  }
  // Literal strings (immutable) and symbols (interned), created once when the module starts.
  irdl.operation @const_string {
    %a = irdl.base "#builtin.string"
    irdl.attributes {"value" = %a}
    %v = irdl.base @eshkol::@value
    irdl.results(result: %v)
  }
  irdl.operation @const_symbol {
    %a = irdl.base "#builtin.string"
    irdl.attributes {"value" = %a}
    %v = irdl.base @eshkol::@value
    irdl.results(result: %v)
  }

  // A top-level variable; sym_name is its Eshkol name.
  irdl.operation @global {
    %a = irdl.base "#builtin.string"
    irdl.attributes {"sym_name" = %a}
  }
  // A top-level variable of a separately compiled library (the prelude, stdlib modules):
  // slot `index` of that library's globals.
  irdl.operation @extern_global {
    %a = irdl.base "#builtin.string"
    %l = irdl.base "#builtin.string"
    %i = irdl.base "#builtin.integer"
    irdl.attributes {"sym_name" = %a, "library" = %l, "index" = %i}
  }
  // Read a global (an error if it is not yet defined).
  irdl.operation @global_ref {
    %a = irdl.base "#builtin.symbol_ref"
    irdl.attributes {"name" = %a}
    %v = irdl.base @eshkol::@value
    irdl.results(result: %v)
  }
  // define (kind "define") or set! (kind "set") of a global.
  irdl.operation @global_set {
    %a = irdl.base "#builtin.symbol_ref"
    %k = irdl.base "#builtin.string"
    irdl.attributes {"name" = %a, "kind" = %k}
    %v = irdl.base @eshkol::@value
    irdl.operands(value: %v)
  }

  // A closure of the func.func `callee` over the captured values.
  irdl.operation @make_closure {
    %a = irdl.base "#builtin.symbol_ref"
    irdl.attributes {"callee" = %a}
    %v = irdl.base @eshkol::@value
    irdl.operands(captured: variadic %v)
    %r = irdl.base @eshkol::@value
    irdl.results(result: %r)
  }
  // Captured value `index` of the closure `self`.
  irdl.operation @closure_ref {
    %a = irdl.base "#builtin.integer"
    irdl.attributes {"index" = %a}
    %v = irdl.base @eshkol::@value
    irdl.operands(self: %v)
    %r = irdl.base @eshkol::@value
    irdl.results(result: %r)
  }
  // Fill captured slot `index` after allocation (closures of letrec that capture each other).
  irdl.operation @closure_set {
    %a = irdl.base "#builtin.integer"
    irdl.attributes {"index" = %a}
    %c = irdl.base @eshkol::@value
    %v = irdl.base @eshkol::@value
    irdl.operands(closure: %c, value: %v)
  }

  // Boxes hold assigned variables that closures capture (assignment conversion).
  irdl.operation @box {
    %v = irdl.base @eshkol::@value
    irdl.operands(value: %v)
    %r = irdl.base @eshkol::@value
    irdl.results(result: %r)
  }
  irdl.operation @unbox {
    %v = irdl.base @eshkol::@value
    irdl.operands(box: %v)
    %r = irdl.base @eshkol::@value
    irdl.results(result: %r)
  }
  irdl.operation @set_box {
    %b = irdl.base @eshkol::@value
    %v = irdl.base @eshkol::@value
    irdl.operands(box: %b, value: %v)
  }

  // Call a procedure value.  tail_call must be followed by func.return of its result.
  irdl.operation @call {
    %f = irdl.base @eshkol::@value
    %v = irdl.base @eshkol::@value
    irdl.operands(callee: %f, args: variadic %v)
    %r = irdl.base @eshkol::@value
    irdl.results(result: %r)
  }
  irdl.operation @tail_call {
    %f = irdl.base @eshkol::@value
    %v = irdl.base @eshkol::@value
    irdl.operands(callee: %f, args: variadic %v)
    %r = irdl.base @eshkol::@value
    irdl.results(result: %r)
  }

  // Apply a builtin from the primitive registry (eshkol/dialect/primitives.py).
  irdl.operation @prim {
    %n = irdl.base "#builtin.string"
    irdl.attributes {"name" = %n}
    %v = irdl.base @eshkol::@value
    irdl.operands(args: variadic %v)
    %r = irdl.base @eshkol::@value
    irdl.results(result: %r)
  }
  // A builtin as a first-class procedure value.
  irdl.operation @prim_ref {
    %n = irdl.base "#builtin.string"
    irdl.attributes {"name" = %n}
    %r = irdl.base @eshkol::@value
    irdl.results(result: %r)
  }

  // Scheme truth (everything but #f is true), for cf.cond_br.
  irdl.operation @truthy {
    %v = irdl.base @eshkol::@value
    irdl.operands(value: %v)
    %i1 = irdl.is i1
    irdl.results(result: %i1)
  }
  // Whether an optional parameter was left out.
  irdl.operation @is_default {
    %v = irdl.base @eshkol::@value
    irdl.operands(value: %v)
    %i1 = irdl.is i1
    irdl.results(result: %i1)
  }

  // A fused chain of tensor primitives (passes/fuse_tensors.py): `expr` is the chain in
  // prefix form over the operands ($0, $1, ...), `kinds` says which operands are tensors (t)
  // and which scalars (s), `kernel` names its generated kernels (lower/to_linalg.py).  The
  // result is the 'default' immediate when the run-time guard declines (operands not host
  // tensors of one float dtype and shape); the unfused primitives then run instead.
  irdl.operation @tensor_fused {
    %e = irdl.base "#builtin.string"
    %k = irdl.base "#builtin.string"
    %n = irdl.base "#builtin.string"
    irdl.attributes {"expr" = %e, "kinds" = %k, "kernel" = %n}
    %v = irdl.base @eshkol::@value
    irdl.operands(args: variadic %v)
    %r = irdl.base @eshkol::@value
    irdl.results(result: %r)
  }

  // ---- unboxed scalars (passes/specialize.py) ----------------------------------------------
  // Specialized code keeps fixnums as i64, flonums as f64 and booleans as i1, computing with
  // upstream arith/math ops; these convert at the edges between typed and generic code.
  irdl.operation @box_fixnum {
    %i = irdl.is i64
    irdl.operands(value: %i)
    %r = irdl.base @eshkol::@value
    irdl.results(result: %r)
  }
  irdl.operation @box_flonum {
    %f = irdl.is f64
    irdl.operands(value: %f)
    %r = irdl.base @eshkol::@value
    irdl.results(result: %r)
  }
  irdl.operation @box_bool {
    %b = irdl.is i1
    irdl.operands(value: %b)
    %r = irdl.base @eshkol::@value
    irdl.results(result: %r)
  }
  // The payload of a value known (or just checked with has_tag) to be a fixnum / flonum.
  irdl.operation @unbox_fixnum {
    %v = irdl.base @eshkol::@value
    irdl.operands(value: %v)
    %i = irdl.is i64
    irdl.results(result: %i)
  }
  irdl.operation @unbox_flonum {
    %v = irdl.base @eshkol::@value
    irdl.operands(value: %v)
    %f = irdl.is f64
    irdl.results(result: %f)
  }
  // Whether a value is a fixnum (tag "fixnum") or a flonum (tag "flonum"): the guard of a
  // speculated type.
  irdl.operation @has_tag {
    %t = irdl.base "#builtin.string"
    irdl.attributes {"tag" = %t}
    %v = irdl.base @eshkol::@value
    irdl.operands(value: %v)
    %b = irdl.is i1
    irdl.results(result: %b)
  }
  // Fixnum arithmetic with overflow flag: op is "add", "sub" or "mul"; when `overflow` is set
  // the exact result needs a bignum and specialized code leaves for the generic version.
  irdl.operation @fixnum_arith {
    %o = irdl.base "#builtin.string"
    irdl.attributes {"op" = %o}
    %i = irdl.is i64
    irdl.operands(lhs: %i, rhs: %i)
    %b = irdl.is i1
    irdl.results(result: %i, overflow: %b)
  }
}
