"""HTTP API: the app factory, middleware, error mapping and one folder per domain."""

import sys


def _import_advanced_alchemy_without_numpy() -> None:
    """Import advanced-alchemy as if numpy were not installed.

    At import, advanced-alchemy registers JSON encoders for numpy types and a numpy array
    comparison for its repositories whenever numpy is installed, which loads numpy (~16 MB)
    into every process. The API never holds a numpy array (pgvector's columns read and write
    lists), so it is kept out of the API process: a ``None`` entry in ``sys.modules`` makes
    ``find_spec("numpy")`` answer None and ``import numpy`` fail while advanced-alchemy loads,
    then goes away, so code that does need numpy later still imports it. A process that has
    already loaded either of them (workers, tests) is left as it is.
    """
    if "advanced_alchemy" in sys.modules or "numpy" in sys.modules:
        return
    sys.modules["numpy"] = None  # type: ignore[assignment]
    try:
        import advanced_alchemy.repository  # noqa: F401, PLC0415
    finally:
        del sys.modules["numpy"]


_import_advanced_alchemy_without_numpy()
