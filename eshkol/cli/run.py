"""``eshkol``: run (JIT) and build (native executable) Eshkol programs."""

from __future__ import annotations

import sys

import click

from eshkol.cli.common import OPT_LEVEL, gpu_options, report_errors

# Module search (COMPAT.md section 4): -I folders, and --no-stdlib to drop the implicit stdlib.
INCLUDE = click.option("-I", "include", multiple=True, metavar="DIR",
                       help="Also search DIR for required modules (after the program's folder and the current one).")
NO_STDLIB = click.option("-n", "--no-stdlib", is_flag=True,
                         help="Do not import the standard library implicitly.")


def _modules(include: tuple[str, ...], no_stdlib: bool) -> None:
    from eshkol.expand import modules

    modules.set_include_dirs(include)
    modules.set_implicit_stdlib(not no_stdlib)


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
@INCLUDE
@NO_STDLIB
@click.option("--target", type=click.Choice(["cpu", "xla", "cuda"]), default="cpu", show_default=True,
              envvar="ESHKOL_TARGET",
              help="Where tensor code runs. xla: every maximal tensor expression and every "
                   "(with-xla-jit body ...) runs as one XLA computation (needs jax); with cpu, "
                   "with-xla-jit just evaluates its body; cuda: GPU kernels (PTX) compiled in, "
                   "tensors on the GPU run them. Default from $ESHKOL_TARGET.")
@gpu_options
@report_errors
def run(file: str, args: tuple[str, ...], opt_level: int, verbose: bool, include: tuple[str, ...],
        no_stdlib: bool, target: str, gpu_chip: str | None, gpu_features: str | None) -> None:
    """Compile FILE (or use the cached compilation) and run it; ARGS go to the program."""
    from eshkol.driver import Options, run_program

    _modules(include, no_stdlib)
    status = run_program(file, list(args), Options(opt_level, target, gpu_chip, gpu_features), verbose)
    sys.stdout.flush()
    sys.exit(status)


@main.command()
@click.argument("file")
@click.option("-o", "output", required=True, help="Path of the executable to write.")
@OPT_LEVEL
@INCLUDE
@NO_STDLIB
@click.option("--target", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="cuda: the executable carries the GPU kernels (PTX) and calls the CUDA driver "
                   "(dlopen'ed at run time: building needs no CUDA).")
@gpu_options
@report_errors
def build(file: str, output: str, opt_level: int, include: tuple[str, ...], no_stdlib: bool,
          target: str, gpu_chip: str | None, gpu_features: str | None) -> None:
    """Compile FILE into a native executable that runs without Python."""
    from eshkol.driver import Options, build_program

    _modules(include, no_stdlib)
    build_program(file, output, Options(opt_level, target, gpu_chip, gpu_features))


@main.command()
@OPT_LEVEL
@report_errors
def repl(opt_level: int) -> None:
    """Interactive read-eval-print loop (line editing and history on a terminal)."""
    from eshkol.cli.repl import run_repl

    sys.exit(run_repl(opt_level))
