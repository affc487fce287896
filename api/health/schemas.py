from __future__ import annotations

from typing import Literal

import msgspec

CheckStatus = Literal["ok", "failing", "outdated"]


class Liveness(msgspec.Struct):
    status: Literal["ok"] = "ok"


class Readiness(msgspec.Struct):
    """Overall readiness plus each dependency's state (``database``, ``migrations``, ``redis``)."""

    status: Literal["ready", "unavailable"]
    checks: dict[str, CheckStatus]
