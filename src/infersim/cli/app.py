"""The root command group and the user-error boundary of the CLI."""

from __future__ import annotations

import signal
import sys
import threading

import click
from rich.console import Console
from rich.markup import escape

from ..errors import InfersimError

# a pipe or file gets 120 columns so that tables are not squeezed to 80
console = Console(width=None if sys.stdout.isatty() else 120)
err_console = Console(stderr=True)


class InfersimGroup(click.Group):
    """A click group that turns :class:`InfersimError` into one red line and exit code 2."""

    def invoke(self, ctx: click.Context):
        previous = _on_sigterm_exit()
        try:
            return super().invoke(ctx)
        except InfersimError as exc:
            _fail(str(exc))
        except click.UsageError as exc:
            # a bad flag value: one line naming the flag, and where help is
            name = exc.ctx.command_path if exc.ctx is not None else "infersim"
            _fail(f"{exc.format_message()} (see '{name} --help')")
        except OSError as exc:
            # the environment refused a file operation: an unreadable input, a read-only output
            # directory, a full disk. Inputs are checked by infersim.userfile; this covers outputs.
            what = f"{exc.filename}: " if exc.filename else ""
            _fail(f"{what}{exc.strerror or exc} (check the path, its permissions and free space)")
        except MemoryError:
            _fail("out of memory; run fewer requests or a smaller study (see docs/input-validation.md)")
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/yellow]")
            sys.exit(130)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


class Terminated(SystemExit):
    """Raised in the main thread on SIGTERM, so that cleanup runs (results committed, workers stopped)."""


def _on_sigterm_exit():
    """Make SIGTERM unwind like Ctrl-C (finally blocks run; exit status 143); the old handler, or None."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise Terminated(128 + signum)

    return signal.signal(signal.SIGTERM, handler)


def _fail(message: str) -> None:
    # soft_wrap: a message is one logical line that a terminal may wrap, never a line break
    # inserted by rich in the middle of a path or a quoted value
    err_console.print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False, markup=True,
                      soft_wrap=True)
    sys.exit(2)


@click.group(cls=InfersimGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="infersim")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """infersim: estimate, simulate and search ML inference deployments.

    With no command, runs `infersim estimate` on its built-in default
    (Llama-3.1-8B on one H100 SXM) and lists the other commands.
    """
    if ctx.invoked_subcommand is None:
        from .estimate_cmd import estimate_cmd

        ctx.invoke(estimate_cmd)
        console.print()
        console.print("[dim]More: " + ", ".join(f"infersim {name}" for name in sorted(cli.commands))
                      + "  (add --help to any)[/dim]")
