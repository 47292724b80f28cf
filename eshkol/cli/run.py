"""``eshkol``: run (JIT) and build (native executable) Eshkol programs."""

from __future__ import annotations

import sys

import click

from eshkol.cli.common import OPT_LEVEL, report_errors


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="eshkol", message="eshkol %(version)s")
@click.pass_context
def main(ctx: click.Context) -> None:
    """The Eshkol compiler: a Scheme for scientific computing, compiled through MLIR.

    With no command, starts the REPL."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(repl)


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("file")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@OPT_LEVEL
@click.option("-v", "--verbose", is_flag=True, help="Say whether the compile cache was hit.")
@report_errors
def run(file: str, args: tuple[str, ...], opt_level: int, verbose: bool) -> None:
    """Compile FILE (or use the cached compilation) and run it; ARGS go to the program."""
    from eshkol.driver import Options, run_program

    status = run_program(file, list(args), Options(opt_level), verbose)
    sys.stdout.flush()
    sys.exit(status)


@main.command()
@click.argument("file")
@click.option("-o", "output", required=True, help="Path of the executable to write.")
@OPT_LEVEL
@report_errors
def build(file: str, output: str, opt_level: int) -> None:
    """Compile FILE into a native executable that runs without Python."""
    from eshkol.driver import Options, build_program

    build_program(file, output, Options(opt_level))


@main.command()
@OPT_LEVEL
@report_errors
def repl(opt_level: int) -> None:
    """Interactive read-eval-print loop (line editing and history on a terminal)."""
    from eshkol.cli.repl import run_repl

    sys.exit(run_repl(opt_level))
