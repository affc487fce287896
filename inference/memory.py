"""Handing freed heap memory back to the operating system.

An image pipeline allocates and frees tens of megabytes per photo; glibc keeps much of that in
its heaps, so a worker's RSS stays at its high-water mark. ``malloc_trim`` returns the free
parts. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any


@functools.cache
def _glibc() -> Any:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        library = ctypes.CDLL(name)
        return library if hasattr(library, "malloc_trim") else None
    except OSError:
        return None


def release_freed_memory() -> bool:
    """Return freed heap memory to the OS; True if anything could be released."""
    library = _glibc()
    return bool(library.malloc_trim(0)) if library is not None else False
