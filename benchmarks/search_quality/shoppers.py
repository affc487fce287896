"""Shoppers with ready body profiles, written straight into the database, and their logins.

The fit endpoints need a caller with a ``ready`` measurement. Going through photo uploads would
measure the inference worker, not fit search, so each benchmark shopper is a verified ``client``
user with one ready measurement: a body drawn from ``training.body.anthropometry.sample_body``
(both sexes), its 14 measurements, and per-measurement confidences of 0.75-0.95 (what the
pipeline reports for clean photos). Idempotent: shoppers that exist are kept.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import numpy as np
from sqlalchemy import select

from core.adapters.passwords import hash_password_sync
from core.settings import Settings
from db.engine import create_database
from db.models import Measurement, User
from training.body.anthropometry import sample_body

API = "/api/v1"
SHOPPER_PASSWORD = "bench-search-shopper-2026"  # noqa: S105  # benchmark-only accounts on a throwaway stack
EMAIL_DOMAIN = "bench-search.fashionistar.dev"


def shopper_email(index: int) -> str:
    return f"shopper{index:04d}@{EMAIL_DOMAIN}"


async def ensure_shoppers(settings: Settings, count: int, seed: int) -> list[str]:
    """Emails of ``count`` shoppers with a ready body profile (created where missing)."""
    emails = [shopper_email(i) for i in range(count)]
    database = create_database(settings, "cli")
    try:
        async with database.session_maker() as session, session.begin():
            existing = set(await session.scalars(select(User.email).where(User.email.in_(emails))))
            missing = [e for e in emails if e not in existing]
            if not missing:
                return emails
            password_hash = hash_password_sync(SHOPPER_PASSWORD)
            now = datetime.now(UTC)
            for email in missing:
                index = int(email.removeprefix("shopper").split("@")[0])
                rng = np.random.default_rng([seed, 3, index])
                body = sample_body(rng)
                user = User(email=email, password_hash=password_hash, full_name=f"Bench Shopper {index}",
                            role="client", is_verified=True, verified_at=now)  # fmt: skip
                session.add(user)
                await session.flush()
                session.add(
                    Measurement(
                        user_id=user.id,
                        status="ready",
                        height_cm=round(body.measurements["height_cm"], 1),
                        measurements={k: round(v, 1) for k, v in body.measurements.items()},
                        confidence={k: round(float(rng.uniform(0.75, 0.95)), 2) for k in body.measurements},
                        model_name="bench-search",
                        model_version="sampled",
                        started_at=now,
                        completed_at=now,
                    )
                )
    finally:
        await database.dispose()
    return emails


async def log_in(client: httpx.AsyncClient, emails: list[str]) -> list[dict[str, str]]:
    """One ``Authorization`` header per shopper, logging in once each (before any timing).

    Raises:
        RuntimeError: a login was refused.
    """
    headers = []
    for email in emails:
        response = await client.post(f"{API}/auth/login", json={"email": email, "password": SHOPPER_PASSWORD})
        if response.status_code != 200:
            raise RuntimeError(f"login as {email} answered {response.status_code}: {response.text[:200]}")
        headers.append({"Authorization": f"Bearer {response.json()['access_token']}"})
    return headers
