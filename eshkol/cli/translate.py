"""``eshkol-translate``: print a program as the eshkol dialect or as LLVM IR."""

from __future__ import annotations

import click

from eshkol.cli.common import gpu_options, report_errors

TARGETS = ["eshkol", "llvm", "expanded", "stablehlo", "cuda"]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("file", default="-")
@click.option("--target", type=click.Choice(TARGETS), required=True,
              help="eshkol: the eshkol dialect; llvm: LLVM IR after the CPU pipeline; "
                   "expanded: the fully macro-expanded core program as S-expressions; "
                   "stablehlo: the program's tensor regions as StableHLO (what --target=xla runs); "
                   "cuda: the GPU module (PTX of the kernels its tensor operations launch) and the "
                   "host code (LLVM IR calling runtime_c/cuda_shim.c).")
@click.option("-o", "output", default="-", help="Output file (default: stdout).")
@click.option("-O", "opt_level", type=click.IntRange(0, 3), default=0, show_default=True,
              help="Run LLVM's optimisation pipeline at this level on --target=llvm output.")
@gpu_options
@report_errors
def main(file: str, target: str, output: str, opt_level: int, gpu_chip: str | None,
         gpu_features: str | None) -> None:
    """Translate FILE (.esk source or .mlir; - for stdin) to TARGET."""
    from eshkol.driver import Options, translate

    text = translate(file, target, Options(opt_level, "cpu", gpu_chip, gpu_features))
    with click.open_file(output, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
