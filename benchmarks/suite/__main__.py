"""``python -m benchmarks.suite``: see the package docstring."""

import sys

from benchmarks.suite.cli import main

if __name__ == "__main__":
    sys.exit(main())
