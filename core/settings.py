"""The one settings object, read from environment variables.

Every setting is an upper-case environment variable named after the field (``api_port`` ->
``API_PORT``). ``APP_ENV`` (``dev`` | ``test`` | ``production``) picks a set of defaults first;
explicit variables always win. A ``.env`` file in the working directory is read too, without
overriding variables that are already set, and then ``DATA_DIR/secrets.env`` (the secrets ``up``
generates for its data directory). Secrets are wrapped in :class:`Secret` so they never show up
in a repr, a log line or a traceback. No secret has a value written in the source: an unset one
is random to its process (production refuses to start without them), and a placeholder
published in the repository is refused everywhere.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Literal, get_args

import msgspec

from core.secret import Secret, random_secret
from core.settings_checks import (
    SettingsError,
    check_limits,
    check_private_storage,
    check_production,
    check_replica,
    refuse_published_secrets,
)
from core.settings_parsing import coerce, dec_hook, read_dotenv, required, strip_credentials

__all__ = [
    "SECRETS_FILE",
    "Environment",
    "Secret",
    "Settings",
    "SettingsError",
    "get_settings",
    "load_settings",
]

Environment = Literal["dev", "test", "production"]


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Typed configuration of every process (API, worker, scheduler, dev stack)."""

    app_env: Environment = "dev"
    # Where the embedded services and local files live (relative to the working directory).
    data_dir: Path = Path(".data")

    # --- PostgreSQL ---------------------------------------------------------------------
    # None means "embedded": the dev stack and the test harness start PostgreSQL 18 + pgvector
    # under data_dir and pass its URL to the processes they start.
    database_url: str | None = None
    db_pool_size_api: int = 10
    # No overflow for the API: under sustained load above the pool size, overflow connections are
    # opened and closed for every few requests (a backend start each, on both sides), which cost
    # more than waiting a moment for one of the pool's ten (just bench-request-cost shows both).
    db_max_overflow_api: int = 0
    db_pool_size_worker: int = 4
    db_max_overflow_worker: int = 4
    db_pool_timeout_seconds: float = 5.0
    db_statement_timeout_ms: int = 15_000
    # Behind PgBouncer in transaction mode prepared statements cannot be cached per connection.
    db_pgbouncer: bool = False
    db_echo: bool = False
    # A streaming replica for catalog reads and vector searches (unset: every read on the primary,
    # no second pool). A read goes to the primary instead while the replica is down, replays more
    # than DATABASE_REPLICA_MAX_LAG_MS behind, or has not yet replayed the reader's own last write
    # (remembered in Redis for DATABASE_REPLICA_FENCE_SECONDS). Its state is asked at most every
    # DATABASE_REPLICA_CHECK_MS per process.
    database_replica_url: str | None = None
    database_replica_max_lag_ms: int = 2_000
    database_replica_check_ms: int = 50
    database_replica_fence_seconds: int = 30

    # --- Redis ----------------------------------------------------------------------------
    redis_url: str | None = None
    redis_socket_timeout_seconds: float = 2.0
    embedded_redis_port: int = 6390

    # --- HTTP API ---------------------------------------------------------------------------
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_workers: int = 1
    # Prometheus metrics of the API: 0 serves them at /metrics on the API's own port; a port
    # serves them there instead (on API_METRICS_HOST), and /metrics on the API port answers 404.
    # Production defaults to a port of their own, so the public port never shows them.
    api_metrics_port: int = 0
    api_metrics_host: str = "127.0.0.1"
    # Encoded public pages each API process keeps (api/page_cache.py); 0 keeps none (ETags and
    # 304s still work, every page is built): the benchmark suite compares endpoints with their
    # floors that way.
    page_cache_max_pages: int = 4096
    # Reverse proxies in front of the API whose X-Forwarded-For entries are trusted (0: use the
    # peer address). Client IPs feed rate limits and the audit log.
    trusted_proxy_hops: int = 0
    max_request_body_bytes: int = 16 * 1024 * 1024
    cors_allow_origins: list[str] = msgspec.field(default_factory=list)
    hsts_max_age_seconds: int = 31_536_000
    secret_key: Secret = msgspec.field(default_factory=random_secret)

    # --- Identity -------------------------------------------------------------------------
    # "kid=secret,kid2=secret2": the first key signs, every key verifies (rotation). Unset: one
    # key derived from SECRET_KEY.
    jwt_signing_keys: Secret | None = None
    jwt_issuer: str = "fashionistar"
    jwt_audience: str = "fashionistar-api"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 604_800
    otp_ttl_seconds: int = 600
    # Wrong tries that burn a code: the real guard against guessing it.
    otp_max_attempts: int = 5
    # Failed logins slow down the (account, address) that fails, never the account: from the Nth
    # failure the address waits BASE * 2^(failures - N) s, at most MAX, per attempt (README
    # "Security"); past MAX_FAILURES_PER_ACCOUNT from all addresses, each failing one waits MAX.
    login_free_failures_per_source: int = 3
    login_backoff_base_seconds: int = 2
    login_backoff_max_seconds: int = 900
    login_failure_window_seconds: int = 3600
    login_max_failures_per_account: int = 100
    login_max_attempts_per_ip: int = 30
    login_ip_window_seconds: int = 300
    # Code mails and checks per window: per (address, email), so one address cannot use up the
    # owner's, then per email (looser) against floods and guessing from many addresses.
    otp_max_sends_per_source_email: int = 3
    otp_max_sends_per_email: int = 10
    otp_max_requests_per_ip: int = 20
    otp_max_verifications_per_source_email: int = 10
    otp_max_verifications_per_email: int = 30
    otp_window_seconds: int = 600
    # Concurrent Argon2 computations per API process (each takes ~64 MiB for a moment).
    password_hash_concurrency: int = 2

    # --- Mail -----------------------------------------------------------------------------
    mail_backend: Literal["file", "smtp"] = "file"
    mail_dir: Path = Path(".data/mail")
    mail_from: str = "Fashionistar <no-reply@fashionistar.dev>"
    smtp_host: str = "localhost"
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: Secret | None = None
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = 10.0

    # --- Commerce -------------------------------------------------------------------------
    # How long an unpaid order holds its stock before the expiry job releases it.
    order_reservation_minutes: int = 30
    order_expiry_interval_seconds: int = 60
    # Per-line cap (cart and order) and the most distinct lines one cart or order may hold.
    order_line_max_quantity: int = 10
    order_max_lines: int = 50
    idempotency_key_ttl_hours: int = 24
    # "sandbox" (dev: a local checkout page that delivers a signed webhook) or "paystack".
    payment_provider: Literal["sandbox", "paystack"] = "sandbox"
    # Signs and verifies webhooks (x-paystack-signature) and authorises Paystack API calls.
    paystack_secret_key: Secret = msgspec.field(default_factory=random_secret)
    paystack_base_url: str = "https://api.paystack.co"
    # Where the provider sends the shopper back after paying (the web shop's order page).
    payment_callback_url: str | None = None
    # Where clients reach the API: links to itself (the sandbox checkout) are built on it, never
    # on a request's Host header. Unset: http://API_HOST:API_PORT.
    public_base_url: str | None = None
    payment_http_timeout_seconds: float = 10.0
    # A payment attempt still waiting for its webhook this long after it started is verified with
    # the provider by the reconciliation job (every PAYMENT_RECONCILE_INTERVAL_SECONDS), and
    # settled exactly as the webhook would have; attempts older than the max age are left alone.
    payment_reconcile_after_seconds: int = 900
    payment_reconcile_max_age_hours: int = 48
    payment_reconcile_interval_seconds: int = 300

    # --- Shipping, fulfilment and returns ---------------------------------------------------
    # The platform's default method, for stores that have not set up a shipping profile: its
    # price per shipment and per extra item (minor units), free above a vendor subtotal (0:
    # never), estimated days, and the countries it serves (empty: every country).
    shipping_default_price: int = 250_000
    shipping_default_per_extra_item: int = 50_000
    shipping_default_free_above: int = 0
    shipping_default_min_days: int = 3
    shipping_default_max_days: int = 7
    shipping_default_countries: list[str] = msgspec.field(default_factory=list)
    # Most methods one store's shipping profile may hold.
    shipping_max_methods: int = 20
    # Days after delivery during which a shopper may ask to return items, unless the store set
    # its own window.
    return_window_days: int = 14

    # --- Money: commission, earnings, payouts ----------------------------------------------
    # The platform's commission when no vendor or category rule applies (basis points: 1000 = 10 %).
    commission_default_bps: int = 1_000
    # How often the job that makes vendors' earnings payable (return window over) runs.
    earnings_release_interval_seconds: int = 3_600
    # Smallest payout (minor units); the scheduled payout run goes this often (weekly).
    payout_minimum: int = 500_000
    payout_interval_seconds: int = 604_800

    # --- Catalog and media ---------------------------------------------------------------
    # The marketplace's currency (ISO 4217); prices are integers in its minor unit (kobo).
    currency: str = "NGN"
    media_backend: Literal["local", "s3"] = "local"
    media_dir: Path = Path(".data/media")
    # Public URL prefix of stored media; the API serves it itself in the local backend.
    media_base_url: str = "/media"
    s3_bucket: str = ""
    s3_region: str | None = None
    s3_endpoint_url: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: Secret | None = None
    max_image_bytes: int = 15 * 1024 * 1024
    max_image_pixels: int = 25_000_000
    min_image_side: int = 200
    # Body photos are personal data: they live apart from the public media, never under a
    # served path (a directory outside MEDIA_DIR, or a bucket of their own in the s3 backend).
    private_media_dir: Path = Path(".data/private")
    s3_private_bucket: str = ""
    # Search by photo waits this long for an inference worker's answer, then answers 503.
    search_image_timeout_seconds: float = 5.0
    # Searches by photo per minute (each runs a model): anonymous callers per client address,
    # logged-in users per account (never counted against their address, which they may share).
    search_image_per_minute: int = 30
    search_image_per_user_per_minute: int = 30

    # --- Body measurement ---------------------------------------------------------------
    # Shorter side of a body photo below which the person is too small to measure (422).
    min_body_photo_side: int = 256
    measurement_uploads_per_hour: int = 20
    # A measurement still pending or processing after this long is failed with code "timeout".
    measurement_timeout_seconds: int = 900
    measurement_sweep_interval_seconds: int = 60
    # Photos of a finished measurement are deleted after this many days (the numbers stay).
    measurement_photo_retention_days: int = 30
    # Server-sent events of one measurement: a keep-alive comment this often, closed after the max.
    measurement_events_heartbeat_seconds: float = 15.0
    measurement_events_max_seconds: int = 300

    # --- Logging and tracing ------------------------------------------------------------
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str = "fashionistar"

    # --- Background work ----------------------------------------------------------------
    task_result_ttl_seconds: int = 3_600
    task_max_attempts: int = 3
    task_retry_base_delay_seconds: float = 2.0
    task_retry_max_delay_seconds: float = 30.0
    # A message delivered to a worker that dies is handed to another worker once it has been
    # pending this long (live workers keep re-claiming the messages they are running).
    task_redelivery_idle_seconds: float = 120.0
    task_stream_maxlen: int = 200_000
    # A message delivered this many times without an acknowledgement (each worker that took it
    # died) is parked in the dead letters instead of being delivered again (0: never).
    task_dead_letter_after_deliveries: int = 5
    worker_max_async_tasks: int = 32
    # onnxruntime threads per model session in an inference worker.
    inference_threads: int = 2
    # Images per model run; activations grow with it (memory vs throughput).
    inference_max_batch: int = 8
    # Tasks a worker serving the inference queue takes at once: enough to fill an embedding batch,
    # few enough that queued body measurements stay in the stream for other inference workers.
    inference_max_async_tasks: int = 8
    outbox_sweep_interval_seconds: int = 15
    # Outbox rows younger than this are left to the after-commit flush that normally sends them.
    outbox_sweep_min_age_seconds: float = 10.0
    # Workers and the scheduler touch this file while their event loop runs (container probes;
    # see tasks/runtime/heartbeat.py). None: no heartbeat.
    heartbeat_file: Path | None = None
    heartbeat_interval_seconds: float = 10.0
    # Prometheus metrics of each worker process (tasks/runtime/metrics.py): the process number n
    # of one `--processes N` worker (0 for the first) serves them on this port + n. 0: none.
    worker_metrics_port: int = 9100
    worker_metrics_host: str = "127.0.0.1"

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def measurement_request_max_bytes(self) -> int:
        """Body limit of a measurement upload: two photos plus the form around them."""
        return 2 * self.max_image_bytes + 256 * 1024

    @property
    def public_api_base_url(self) -> str:
        """``PUBLIC_BASE_URL`` without a trailing slash, or the API's own address when unset."""
        return (self.public_base_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    def require_database_url(self) -> str:
        """The database URL. Raises RuntimeError, with how to fix it, when unset."""
        return required(self.database_url, "DATABASE_URL", "postgresql+asyncpg://user:pass@host:5432/db")

    def require_redis_url(self) -> str:
        """The Redis URL. Raises RuntimeError, with how to fix it, when unset."""
        return required(self.redis_url, "REDIS_URL", "redis://host:6379/0")

    def jwt_keys(self) -> list[tuple[str, str]]:
        """(kid, secret) pairs, the signing key first."""
        if self.jwt_signing_keys is None:
            return [("k0", self.secret_key.reveal())]
        pairs = []
        for part in self.jwt_signing_keys.reveal().split(","):
            kid, sep, secret = part.strip().partition("=")
            if sep and kid and secret:
                pairs.append((kid.strip(), secret.strip()))
        return pairs

    def safe_summary(self) -> dict[str, Any]:
        """Settings as a dict fit for a log line: secrets masked, credentials stripped from URLs."""
        out: dict[str, Any] = {}
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, Secret):
                value = str(value)
            elif name.endswith("_url") and isinstance(value, str):
                value = strip_credentials(value)
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out


# Defaults that differ by environment; explicit environment variables override them.
_ENV_DEFAULTS: dict[str, dict[str, str]] = {
    "dev": {"log_format": "console", "log_level": "INFO"},
    "test": {"log_level": "WARNING", "db_pool_size_api": "5", "task_retry_base_delay_seconds": "0.5"},
    "production": {
        "log_format": "json",
        "mail_backend": "smtp",
        "payment_provider": "paystack",
        "api_metrics_port": "9200",
    },
}

SECRETS_FILE = "secrets.env"


def load_settings(environ: dict[str, str] | None = None, *, dotenv: Path | None = Path(".env")) -> Settings:
    """Build settings from ``environ`` (default: ``os.environ`` plus ``.env``).

    Raises:
        SettingsError: a variable has a value of the wrong type, or production lacks a required one.
    """
    env = dict(environ if environ is not None else os.environ)
    if dotenv is not None and environ is None:
        for key, value in read_dotenv(dotenv).items():
            env.setdefault(key, value)
        for key, value in read_dotenv(Path(env.get("DATA_DIR") or ".data") / SECRETS_FILE).items():
            env.setdefault(key, value)

    app_env = env.get("APP_ENV", "dev")
    if app_env not in get_args(Environment):
        raise SettingsError(f"APP_ENV must be one of {get_args(Environment)}, got {app_env!r}")

    hints = msgspec.structs.fields(Settings)
    raw: dict[str, Any] = {}
    merged = {**_ENV_DEFAULTS[app_env], **{k.lower(): v for k, v in env.items()}}
    for field in hints:
        if field.name in merged:
            raw[field.name] = coerce(field.name, merged[field.name], field.type)
    raw["app_env"] = app_env
    try:
        settings = msgspec.convert(raw, Settings, strict=False, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid configuration: {exc}") from None

    if settings.jwt_signing_keys is not None and not settings.jwt_keys():
        raise SettingsError("JWT_SIGNING_KEYS must look like 'kid=secret[,kid2=secret2]'")
    if any(len(secret) < 32 for _, secret in settings.jwt_keys()) and settings.is_production:
        raise SettingsError("JWT signing keys (or SECRET_KEY) must be at least 32 characters")
    check_private_storage(settings)
    check_replica(settings)
    check_limits(settings)
    refuse_published_secrets(settings)
    if settings.is_production:
        check_production(settings, given=set(raw))
    return settings


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
