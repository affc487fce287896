"""The checks a loaded configuration must pass: no published secret anywhere, private files
apart from public media, rate limits that hang together, and production's required settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.settings import Settings

# Parts of the placeholder values published in the repository (.env.example, the k8s secret
# template, values earlier versions shipped as defaults): a secret containing one is refused.
_PUBLISHED_SECRET_MARKERS = ("dev-only-", "change-me", "REPLACE", "sk_live_...")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def check_private_storage(settings: Settings) -> None:
    """Private files (body photos) must never land where public media are served from."""
    if settings.media_backend == "s3" and settings.s3_private_bucket in ("", settings.s3_bucket):
        raise SettingsError("MEDIA_BACKEND=s3 needs S3_PRIVATE_BUCKET, a bucket other than S3_BUCKET")
    private, public = settings.private_media_dir.resolve(), settings.media_dir.resolve()
    if settings.media_backend == "local" and private.is_relative_to(public):
        raise SettingsError("PRIVATE_MEDIA_DIR must not be inside MEDIA_DIR (which is served publicly)")


def check_replica(settings: Settings) -> None:
    """The replica's timings must be usable numbers (only read when a replica is configured)."""
    if settings.database_replica_max_lag_ms < 1:
        raise SettingsError("DATABASE_REPLICA_MAX_LAG_MS must be at least 1")
    if settings.database_replica_check_ms < 0:
        raise SettingsError("DATABASE_REPLICA_CHECK_MS must not be negative")
    if settings.database_replica_fence_seconds < 1:
        raise SettingsError("DATABASE_REPLICA_FENCE_SECONDS must be at least 1")


def check_limits(settings: Settings) -> None:
    """Limits and backoff that make sense together (each a positive number; a per-source bound
    no looser than its per-email one; failures remembered at least as long as the longest wait)."""
    positive = (
        "otp_max_attempts",
        "login_free_failures_per_source",
        "login_backoff_base_seconds",
        "login_backoff_max_seconds",
        "login_failure_window_seconds",
        "login_max_failures_per_account",
        "otp_max_sends_per_source_email",
        "otp_max_verifications_per_source_email",
        "search_image_per_minute",
        "search_image_per_user_per_minute",
    )
    for name in positive:
        if getattr(settings, name) < 1:
            raise SettingsError(f"{name.upper()} must be at least 1")
    pairs = (
        ("login_backoff_base_seconds", "login_backoff_max_seconds"),
        ("login_backoff_max_seconds", "login_failure_window_seconds"),
        ("otp_max_sends_per_source_email", "otp_max_sends_per_email"),
        ("otp_max_verifications_per_source_email", "otp_max_verifications_per_email"),
    )
    for smaller, larger in pairs:
        if getattr(settings, smaller) > getattr(settings, larger):
            raise SettingsError(f"{smaller.upper()} must not be more than {larger.upper()}")


def refuse_published_secrets(settings: Settings) -> None:
    """Anyone can read the repository: a placeholder from it must not sign anything, anywhere."""
    values = {
        "SECRET_KEY": settings.secret_key.reveal(),
        "PAYSTACK_SECRET_KEY": settings.paystack_secret_key.reveal(),
        **{f"JWT_SIGNING_KEYS ({kid})": secret for kid, secret in settings.jwt_keys()},
    }
    for name, value in values.items():
        if any(marker in value for marker in _PUBLISHED_SECRET_MARKERS):
            raise SettingsError(
                f"{name} is a placeholder published in the repository: leave it unset in development "
                "(`up` generates one) or set a random value"
            )


def check_production(settings: Settings, *, given: set[str]) -> None:
    """Production refuses unset secrets (they would be random per process) and the sandbox."""
    missing = [n for n in ("database_url", "redis_url") if not getattr(settings, n)]
    if "secret_key" not in given:
        missing.append("secret_key")
    if settings.payment_provider != "paystack":
        raise SettingsError("production takes payments through Paystack: PAYMENT_PROVIDER=paystack")
    if "paystack_secret_key" not in given:
        missing.append("paystack_secret_key")
    if missing:
        raise SettingsError("production needs these variables set: " + ", ".join(m.upper() for m in missing))
