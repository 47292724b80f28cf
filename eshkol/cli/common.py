"""What every tool shares: turning errors into diagnostics and exit status 1."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable

import click

from eshkol.syntax.diagnostics import EshkolError


def report_errors(fn: Callable) -> Callable:
    """Run a command body; print diagnostics (never a traceback) and exit 1 on failure."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EshkolError as e:
            sys.stdout.flush()
            print(e.render(), file=sys.stderr)
            sys.exit(1)
        except RecursionError:
            sys.stdout.flush()
            print("error: program nesting too deep for the compiler", file=sys.stderr)
            sys.exit(1)
        except (click.exceptions.Exit, click.ClickException, SystemExit, KeyboardInterrupt):
            raise
        except Exception as e:  # a compiler bug: say so plainly, without a traceback
            sys.stdout.flush()
            msg = str(e).strip().splitlines()
            print(f"error: internal compiler error: {type(e).__name__}: {msg[0] if msg else ''}",
                  file=sys.stderr)
            sys.exit(1)

    return wrapper


OPT_LEVEL = click.option("-O", "opt_level", type=click.IntRange(0, 3), default=2, show_default=True,
                         help="LLVM optimisation level.")



def gpu_options(fn: Callable) -> Callable:
    """--gpu-chip and --gpu-features of the cuda target (checked by eshkol.lower.cuda)."""
    fn = click.option("--gpu-features", default=None, metavar="+ptxNN",
                      help="PTX ISA version of the cuda target (default +ptx80).")(fn)
    return click.option("--gpu-chip", default=None, metavar="sm_NN",
                        help="GPU the cuda target's PTX is for: sm_80, sm_90 (default), ...")(fn)
