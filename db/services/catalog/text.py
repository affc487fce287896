"""Slugs and normalised attribute values."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^a-z0-9]+")


def slugify(text: str, *, max_length: int = 80) -> str:
    ascii_text = unicodedata.normalize("NFKD", text.replace("&", " and ")).encode("ascii", "ignore").decode()
    slug = _NON_WORD.sub("-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "item"


def normalise_size(size: str) -> str:
    return " ".join(size.split()).upper()


def normalise_color(color: str) -> str:
    return " ".join(color.split()).lower()
