"""Where the ``regbench`` commands print, and how a user's mistake ends a command.

``out`` is standard output (tables, written paths), ``err`` standard error (progress,
notes, errors). A :class:`~regbench.errors.RegbenchError` raised by a command becomes one
paragraph on ``err`` and the error's exit code, with no traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from regbench.errors import RegbenchError

# Piped output (`regbench list tasks | grep ...`) has no terminal width: rich would cut tables at 80 columns.
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 400)
err = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

INTERRUPTED = "interrupted: finished responses are cached; run the same command again to resume"


def user_errors(command: F) -> F:
    """Print a RegbenchError as one paragraph and exit with its code (2 unless it says otherwise);
    Ctrl-C says how to resume and exits 130."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RegbenchError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)  # text is not markup
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:  # here, not in main(): click turns it into a bare "Aborted!" first
            err.print(INTERRUPTED, highlight=False, soft_wrap=True)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]
