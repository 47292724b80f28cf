"""``eshkol-opt``: run Eshkol and upstream MLIR passes on a module, like mlir-opt."""

from __future__ import annotations

import click

from eshkol.cli.common import report_errors
from eshkol.lower.pipelines import DESCRIPTIONS, PIPELINES
from eshkol.passes.registry import PASSES


def _pass_help() -> str:
    lines = ["\b", "Passes:"]
    lines += [f"  --{p.name:<24} {p.description}" for p in PASSES.values()]
    lines += ["\b", "Pipelines:"]
    lines += [f"  --{n:<24} {DESCRIPTIONS[n]}" for n in PIPELINES]
    return "\n".join(lines)


class _OptCommand(click.Command):
    """Accepts ``--<pass>`` and ``--<pipeline>`` flags in command-line order."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        chosen, rest = [], []
        for a in args:
            name = a[2:] if a.startswith("--") else None
            if name in PASSES:
                chosen.append(name)
            elif name in PIPELINES:
                chosen.extend(PIPELINES[name])
            else:
                rest.append(a)
        ctx.meta["eshkol_passes"] = chosen
        return super().parse_args(ctx, rest)


@click.command(cls=_OptCommand, context_settings={"help_option_names": ["-h", "--help"]},
               epilog=_pass_help())
@click.argument("file", default="-")
@click.option("-o", "output", default="-", help="Output file (default: stdout).")
@click.option("--pass-pipeline", "pipeline", default=None,
              help="Textual pipeline, e.g. 'builtin.module(eshkol-fold-constants,eshkol-dce)'; "
                   "upstream MLIR passes are accepted too.")
@click.option("--mlir-print-debuginfo", "debuginfo", is_flag=True, help="Print source locations.")
@click.pass_context
@report_errors
def main(ctx: click.Context, file: str, output: str, pipeline: str | None, debuginfo: bool) -> None:
    """Parse FILE (.mlir, or .esk source; - for stdin), run passes, print the result."""
    from eshkol.driver import dialect_module, parse_mlir, read_source, run_passes
    from eshkol.passes.manager import split_pipeline

    text = read_source(file)
    if file.endswith(".esk"):
        mctx, module = dialect_module(text, file)
    else:
        mctx, module = parse_mlir(text, file)
    passes = list(ctx.meta.get("eshkol_passes", []))
    if pipeline:
        passes += split_pipeline(pipeline)
    if passes:
        run_passes(mctx, module, passes)
    with mctx:
        out = module.operation.get_asm(enable_debug_info=debuginfo)
    with click.open_file(output, "w") as f:
        f.write(out)
