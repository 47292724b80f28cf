"""``eshkol-translate --target=stablehlo``: the StableHLO of a program's tensor regions.

The program is outlined as for ``eshkol run --target=xla`` (eshkol/passes/xla_outline.py);
each region whose inputs have shapes known before running is printed as one function,
``@regionN``. Shapes are inferred statically from tensor literals, creation calls with
constant dimensions and globals defined once from such expressions (and numbers, which count
as their values where a region needs them as dimensions or axes). A region whose input shapes
are only known at run time (procedure parameters, values read from files ...) is listed in a
comment: ``eshkol run --target=xla`` specialises it when it runs. Constructs that cannot run
on XLA inside ``with-xla-jit`` are errors with their location (raised by the outlining).
"""

from __future__ import annotations

from eshkol.core import ast as A
from eshkol.core.closure import stable_procedures
from eshkol.lower.stablehlo import ArgSpec, NeedStatic, TType, XlaError, region_function, result_spec
from eshkol.passes.xla_outline import XLA_CALL, Outliner, Region, _walk, free_inputs

HEADER = ("module @eshkol_xla attributes {mhlo.num_partitions = 1 : i32, "
          "mhlo.num_replicas = 1 : i32} {")


def _input_name(ref) -> str:
    return ref if isinstance(ref, str) else ref.name


class StaticShapes:
    """Types of globals known before running: name → ArgSpec (with the value of numbers)."""

    def __init__(self, program: A.Program, outliner: Outliner, regions: list[Region]) -> None:
        self.outliner = outliner
        self.regions = regions
        self.known: dict[str, ArgSpec] = {}
        defines: dict[str, int] = {}
        assigned: set[str] = set()

        def visit(node: A.Node) -> None:
            if isinstance(node, A.GSet):
                if node.define:
                    defines[node.name] = defines.get(node.name, 0) + 1
                else:
                    assigned.add(node.name)

        for node in program.body:
            _walk(node, visit)
        once = {n for n, k in defines.items() if k == 1 and n not in assigned}
        once -= stable_procedures(program)
        for node in _flat(program.body):
            if isinstance(node, A.GSet) and node.define and node.name in once:
                spec = self.infer(node.value)
                if spec is not None:
                    self.known[node.name] = spec

    def specs(self, region: Region) -> list[ArgSpec] | str:
        """The inputs' types, or the text saying which input is known only at run time."""
        out = []
        for ref in region.free:
            spec = self.known.get(ref) if isinstance(ref, str) else None
            if spec is None:
                name = _input_name(ref)
                return ("an argument expression" if name.startswith("%") else name) + \
                    " is known only at run time"
            out.append(spec)
        return out

    def infer(self, node: A.Node) -> ArgSpec | None:
        """The static type of a global's defining expression, or None."""
        if isinstance(node, A.Const) and isinstance(node.value, (int, float)) \
                and not isinstance(node.value, bool):
            v = node.value
            return ArgSpec(TType("i64" if isinstance(v, int) else "f64"), True, v)
        if isinstance(node, A.Prim) and node.name == XLA_CALL:
            region = self.regions[node.args[0].value]
        elif self.outliner.in_subset(node) is not None:
            region = Region(-1, node.loc, node, free_inputs(node, self.outliner.functions),
                            self.outliner.functions)
        else:
            return None
        specs = self.specs(region)
        return None if isinstance(specs, str) else result_spec(region, specs)


def _flat(body: list[A.Node]) -> list[A.Node]:
    out: list[A.Node] = []
    for n in body:
        out.extend(_flat(n.body) if isinstance(n, A.Seq) else [n])
    return out


def translate_program(program: A.Program, file: str) -> str:
    """The StableHLO module text of ``program``'s regions (see the module docstring)."""
    outliner = Outliner(program, auto=True)
    regions = outliner.run()
    shapes = StaticShapes(program, outliner, regions)
    lines = [f"// StableHLO of the tensor regions of {file} (one function per region; regions",
             "// whose input shapes are known only at run time are listed without code)", HEADER]
    for region in regions:
        where = f"  // region {region.id} at {region.loc}"
        specs = shapes.specs(region)
        if isinstance(specs, str):
            lines.append(f"{where}: {specs}")
            continue
        try:
            text, _ = region_function(region, specs, name=f"region{region.id}")
        except XlaError as e:
            if region.explicit:
                raise
            lines.append(f"{where}: fails when run: {e.message}")
            continue
        except NeedStatic as need:
            names = ", ".join(_input_name(region.free[i]) for i in sorted(need.indices))
            lines.append(f"{where}: the values of {names} are needed as constants, known only at run time")
            continue
        lines.append(where)
        lines.append(text)
    lines.append("}")
    return "\n".join(lines) + "\n"
