"""``eshkol-translate``: print a program as the eshkol dialect or as LLVM IR."""

from __future__ import annotations

import click

from eshkol.cli.common import report_errors

TARGETS = ["eshkol", "llvm", "expanded", "stablehlo"]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file", default="-")
@click.option("--target", type=click.Choice(TARGETS), required=True,
              help="eshkol: the eshkol dialect; llvm: LLVM IR after the CPU pipeline; "
                   "expanded: the fully macro-expanded core program as S-expressions; "
                   "stablehlo: the program's tensor regions as StableHLO (what --target=xla runs).")
@click.option("-o", "output", default="-", help="Output file (default: stdout).")
@click.option("-O", "opt_level", type=click.IntRange(0, 3), default=0, show_default=True,
              help="Run LLVM's optimisation pipeline at this level on --target=llvm output.")
@report_errors
def main(file: str, target: str, output: str, opt_level: int) -> None:
    """Translate FILE (.esk source or .mlir; - for stdin) to TARGET."""
    from eshkol.driver import Options, translate

    text = translate(file, target, Options(opt_level))
    with click.open_file(output, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
