"""Progress of the long steps of the command-line tools: the demo catalog (``just seed``), the
embedding backfill (``just embed-catalog``) and the benchmark datasets.

Drawn with rich (installed with Litestar's command line) on stderr, and only when stderr is a
terminal: in a log file, CI, the tests or a supervisor's output nothing is drawn, so their logs
stay as they were. While a bar is drawn, log lines go through it and print above it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Tracker:
    """What a step reports: how much is done (``advance``) and what it is doing (``describe``).
    This one draws nothing (no terminal)."""

    def advance(self, amount: int = 1) -> None:
        """``amount`` more units of the total are done."""

    def describe(self, description: str) -> None:
        """Say what the step is doing now."""


class _Bar(Tracker):
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress, self._task = progress, task

    def advance(self, amount: int = 1) -> None:
        self._progress.advance(self._task, amount)

    def describe(self, description: str) -> None:
        self._progress.update(self._task, description=description)


@contextlib.contextmanager
def progress(
    description: str, total: int | None = None, *, console: Console | None = None
) -> Iterator[Tracker]:
    """A progress bar for a step of ``total`` units (a spinner with the elapsed time when the
    total is not known), shown while the block runs. Draws only on a terminal (``console``:
    stderr unless given)."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield Tracker()
        return
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        *((BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) if total is not None else ()),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar, _logs_through_rich():
        yield _Bar(bar, bar.add_task(description, total=total))


@contextlib.contextmanager
def _logs_through_rich() -> Iterator[None]:
    """Log handlers that write to the terminal print through rich meanwhile (above the bar)
    instead of over it: rich redirects ``sys.stderr``/``sys.stdout``, but a handler holds the
    stream it was made with."""
    terminal: dict[int, TextIO] = {id(sys.__stderr__): sys.stderr, id(sys.__stdout__): sys.stdout}
    swapped: list[tuple[logging.StreamHandler[TextIO], TextIO]] = []
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler) and id(handler.stream) in terminal:
            swapped.append((handler, handler.stream))
            handler.setStream(terminal[id(handler.stream)])
    try:
        yield
    finally:
        for handler, stream in swapped:
            handler.setStream(stream)
