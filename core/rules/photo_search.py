"""Search by photo: the contract between the API, which waits for a query image's vector, and
the inference worker, which computes it (``inference.catalog.embed_query``).

The API never runs a model; it sends the image (base64, since task arguments are JSON
primitives) with a deadline and waits for the worker's answer in the result backend. The
answer is a :class:`QueryEmbedding`: the vector, or why there is none. A bad image is an
answer, not a task failure, so it is neither retried nor logged as a worker error.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal, Protocol, runtime_checkable

import msgspec

from core.adapters.images import UnusableImage
from core.errors import ServiceUnavailable


# Runtime-checkable: the API injects one, and Litestar checks injected values against their type.
@runtime_checkable
class QueryEmbedder(Protocol):
    """Turns a query photo into its unit vector (``tasks.runtime.dispatch.BrokerQueryEmbedder``)."""

    async def embed(self, image: bytes) -> list[float]:
        """Raises:
        UnusableImage: the worker could not decode the image (422).
        ServiceUnavailable: no worker answered in time, or the broker is unreachable (503).
        """
        ...


class QueryEmbedding(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """What the worker answers: ``vector``, or ``error`` (``unreadable_image`` with a detail,
    or ``expired`` when the request's deadline had passed before the worker got to it)."""

    vector: list[float] | None = None
    error: Literal["unreadable_image", "expired"] | None = None
    detail: str | None = None


def encode_image(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_image(text: str) -> bytes:
    """Raises ValueError when ``text`` is not base64."""
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64: {exc}") from None


def vector_of(answer: Any) -> list[float]:
    """The vector in a worker's answer.

    Raises:
        UnusableImage: the worker could not decode the image (422).
        ServiceUnavailable: the answer came too late to be computed (503).
        msgspec.ValidationError: the answer is malformed (a bug: 500).
    """
    embedding = msgspec.convert(answer, QueryEmbedding)
    if embedding.error == "unreadable_image":
        raise UnusableImage(f"The image could not be read ({embedding.detail or 'unknown reason'}).")
    if embedding.error == "expired" or embedding.vector is None:
        raise ServiceUnavailable("Search by photo is busy. Please retry shortly.")
    return embedding.vector
