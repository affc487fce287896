"""Progress bars of the long command-line steps (seed, embed-catalog, benchmark datasets)."""

from __future__ import annotations

import io
import logging
import sys

from rich.console import Console

from devstack.progress import progress


def test_nothing_is_drawn_without_a_terminal() -> None:
    out = io.StringIO()
    with progress("copying rows", 3, console=Console(file=out, force_terminal=False)) as bar:
        bar.describe("copying the last rows")
        bar.advance(3)
    assert out.getvalue() == ""


def test_a_terminal_gets_a_bar_and_log_lines_print_above_it() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with progress("copying rows", 3, console=Console(file=out, force_terminal=True, width=100)) as bar:
            bar.advance(2)
            logging.getLogger("tests.progress").warning("a log line while the bar is drawn")
            bar.describe("copying the last rows")
            bar.advance()
    finally:
        root.removeHandler(handler)
    text = out.getvalue()
    assert "copying the last rows" in text
    assert "3/3" in text
    assert "a log line while the bar is drawn" in text  # went through the bar's console
    assert handler.stream is sys.__stderr__  # and the handler writes where it did before
