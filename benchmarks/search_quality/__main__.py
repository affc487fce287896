"""``python -m benchmarks.search_quality`` (``just bench-search``)."""

from __future__ import annotations

import sys

from benchmarks.search_quality.cli import main

sys.exit(main())
