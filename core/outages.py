"""Telling a dependency outage (PostgreSQL or Redis unreachable, restarting, refusing work) from a bug.

The API answers an outage with 503 + ``Retry-After`` (``api/errors.py``); a task that fails with
one is retried for as long as the outage lasts instead of spending its attempts
(``tasks/runtime/retry.py``). Libraries wrap the driver's error (SQLAlchemy's ``DBAPIError``,
advanced-alchemy's repository errors), so the whole ``raise ... from`` chain is read.
"""

from __future__ import annotations

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeoutError,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionError,
)
# A database that takes no work now: connection exceptions (class 08), shutting down, crashed or
# starting up (57P01-57P03), too many connections (53300).
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# The clients whose own socket errors mean their server is gone: a connect finding PostgreSQL's
# Unix socket missing (FileNotFoundError), an unreachable host, a read that timed out. The same
# errors raised elsewhere (a missing file) are not outages.
CLIENT_MODULES = ("asyncpg.", "redis.")


def is_outage(exc: BaseException, *, also: tuple[type[BaseException], ...] = ()) -> bool:
    """Whether ``exc``, or an exception it was raised from, says a database or Redis cannot be
    used right now (``also``: more exception types that count)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 20:
        chain.append(current)
        current = current.__cause__
    return any(_is_outage_one(e, (*OUTAGE_ERRORS, *also)) for e in chain)


def _is_outage_one(exc: BaseException, types: tuple[type[BaseException], ...]) -> bool:
    if isinstance(exc, types):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    state = getattr(exc, "sqlstate", None)
    if isinstance(state, str) and (state.startswith("08") or state in UNAVAILABLE_SQLSTATES):
        return True
    return isinstance(exc, OSError) and _raised_in(exc, CLIENT_MODULES)


def _raised_in(exc: BaseException, modules: tuple[str, ...]) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith(modules):
            return True
        tb = tb.tb_next
    return False
