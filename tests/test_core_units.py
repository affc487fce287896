"""Pure pieces: settings, queues, backoff, event bus, job buffer, engine options."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import anyio
import anyio.lowlevel
import msgspec
import pytest
from sqlalchemy.engine import make_url

from core.adapters.mail import FileMailer, compose
from core.events import Event, EventBus
from core.jobs import NoActiveUnitOfWork, defer, job_buffer
from core.secret import Secret
from core.settings import SettingsError, load_settings
from db.engine import create_database, engine_options, engine_url, normalise_url
from tasks.runtime.queues import QUEUES, UnknownQueue, parse_queues, queue_of, stream_name
from tasks.runtime.retry import backoff_delay
from tasks.runtime.worker import build_command


def test_settings_read_types_lists_and_secrets() -> None:
    s = load_settings(
        {
            "APP_ENV": "test",
            "API_PORT": "9001",
            "DB_PGBOUNCER": "true",
            "CORS_ALLOW_ORIGINS": "https://shop.example, https://app.example",
            "SECRET_KEY": "s3cr3t-value",
            "DATABASE_URL": "postgresql://user:pw@db:5432/app",
        },
        dotenv=None,
    )
    assert s.api_port == 9001
    assert s.db_pgbouncer is True
    assert s.cors_allow_origins == ["https://shop.example", "https://app.example"]
    assert s.secret_key.reveal() == "s3cr3t-value"
    assert "s3cr3t" not in repr(s)
    assert "s3cr3t" not in str(s.safe_summary())
    assert "pw" not in s.safe_summary()["database_url"]


def test_settings_defaults_differ_by_environment() -> None:
    dev = load_settings({"APP_ENV": "dev"}, dotenv=None)
    test = load_settings({"APP_ENV": "test"}, dotenv=None)
    assert dev.log_format == "console"
    assert test.log_format == "json"
    # An explicit variable beats the environment's default.
    assert load_settings({"APP_ENV": "dev", "LOG_FORMAT": "json"}, dotenv=None).log_format == "json"


def test_settings_errors_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="api_port"):
        load_settings({"API_PORT": "eighty"}, dotenv=None)
    with pytest.raises(SettingsError, match="APP_ENV"):
        load_settings({"APP_ENV": "staging"}, dotenv=None)


def test_production_requires_real_servers_and_a_secret() -> None:
    with pytest.raises(SettingsError, match="DATABASE_URL, REDIS_URL, SECRET_KEY, PAYSTACK_SECRET_KEY"):
        load_settings({"APP_ENV": "production"}, dotenv=None)
    real = {
        "APP_ENV": "production",
        "DATABASE_URL": "postgresql://db/app",
        "REDIS_URL": "redis://cache:6379/0",
        "SECRET_KEY": "a-real-secret-from-the-vault-0123456789",
        "PAYSTACK_SECRET_KEY": "sk_live_from_the_vault_0123456789",
    }
    ok = load_settings(real, dotenv=None)
    assert ok.is_production
    assert ok.payment_provider == "paystack"
    # The payment sandbox pays without money: never in production.
    with pytest.raises(SettingsError, match="PAYMENT_PROVIDER=paystack"):
        load_settings({**real, "PAYMENT_PROVIDER": "sandbox"}, dotenv=None)
    with pytest.raises(SettingsError, match="at least 32"):
        load_settings(
            {
                "APP_ENV": "production",
                "DATABASE_URL": "postgresql://db/app",
                "REDIS_URL": "redis://cache:6379/0",
                "SECRET_KEY": "short-secret",
            },
            dotenv=None,
        )


def test_dotenv_fills_only_missing_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("API_PORT=9100\n# comment\nLOG_LEVEL='DEBUG'\n")
    monkeypatch.setenv("API_PORT", "9200")
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    s = load_settings(dotenv=env_file)
    assert s.api_port == 9200
    assert s.log_level == "DEBUG"


DOTENV_CASES = {
    # a shell-style file: `export` is dropped
    "export SECRET_KEY=abc-from-an-exported-line-0123456789": (
        "SECRET_KEY",
        "abc-from-an-exported-line-0123456789",
    ),
    # a comment after an unquoted value is not part of it
    "LOG_LEVEL=DEBUG # verbose": ("LOG_LEVEL", "DEBUG"),
    # inside quotes `#` is text, and the quotes go
    'MAIL_FROM="Shop <shop@example.test> # 1"  # the sender': ("MAIL_FROM", "Shop <shop@example.test> # 1"),
    "SMTP_HOST='smtp.example.test'": ("SMTP_HOST", "smtp.example.test"),
    # `#` inside an unquoted value (no space before it) is kept
    "PAYMENT_CALLBACK_URL=https://shop.example.test/orders#paid": (
        "PAYMENT_CALLBACK_URL",
        "https://shop.example.test/orders#paid",
    ),
    # spaces around `=` are allowed; `${...}` is literal (secrets may contain it)
    "SMTP_PASSWORD = pa${ss}word": ("SMTP_PASSWORD", "pa${ss}word"),
    # escapes in double quotes
    'SMTP_USERNAME="a\\"b"': ("SMTP_USERNAME", 'a"b'),
}


@pytest.mark.parametrize("line", sorted(DOTENV_CASES))
def test_dotenv_reads_export_quotes_and_comments(
    line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    variable, expected = DOTENV_CASES[line]
    env_file = tmp_path / ".env"
    env_file.write_text(f"# local settings\n\n{line}\nMAIL_BACKEND=file\n")
    monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("APP_ENV", "dev")
    value = getattr(load_settings(dotenv=env_file), variable.lower())
    assert (value.reveal() if isinstance(value, Secret) else value) == expected
    # What is already set wins over the file.
    monkeypatch.setenv(variable, "from-the-environment")
    value = getattr(load_settings(dotenv=env_file), variable.lower())
    assert (value.reveal() if isinstance(value, Secret) else value) == "from-the-environment"


def test_a_missing_dotenv_file_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    monkeypatch.setenv("APP_ENV", "dev")
    assert load_settings(dotenv=tmp_path / "absent.env").log_level == "INFO"


def test_secret_hides_its_value() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret)
    assert "hunter2" not in str(secret)
    assert "hunter2" not in f"{secret}"
    assert secret == Secret("hunter2")


def test_queue_routing_by_task_name() -> None:
    assert queue_of("inference.body.measure") == "inference"
    assert stream_name("emails") == "fashionistar:queue:emails"
    with pytest.raises(UnknownQueue):
        queue_of("bulk.something")
    assert parse_queues("all") == QUEUES
    assert parse_queues(None) == QUEUES
    assert parse_queues("critical, inference") == ("inference", "critical")
    with pytest.raises(UnknownQueue):
        parse_queues("inference,video")


def test_backoff_grows_exponentially_with_jitter_in_the_upper_half() -> None:
    rng = random.Random(7)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (10, 30.0)]:
        for _ in range(200):
            delay = backoff_delay(attempt, base=1.0, cap=30.0, rng=rng)
            assert ceiling / 2 <= delay <= ceiling


def test_event_bus_delivers_in_order_and_propagates_errors() -> None:
    class OrderPlaced(Event, frozen=True):
        order_id: str

    class Other(Event, frozen=True):
        pass

    bus = EventBus()
    seen: list[str] = []
    bus.subscribe(OrderPlaced, lambda e: seen.append(f"a:{e.order_id}"))
    bus.subscribe(OrderPlaced, lambda e: seen.append(f"b:{e.order_id}"))
    bus.publish(OrderPlaced(order_id="1"))
    bus.publish(Other())
    assert seen == ["a:1", "b:1"]

    def broken(_: Other) -> None:
        raise ValueError("subscriber failed")

    bus.subscribe(Other, broken)
    with pytest.raises(ValueError, match="subscriber failed"):
        bus.publish(Other())


def test_defer_needs_a_unit_of_work_and_records_jobs_in_order() -> None:
    with pytest.raises(NoActiveUnitOfWork):
        defer("critical.x.y")
    with job_buffer() as buffer:
        first = defer("critical.a.b", "1", durable=True)
        defer("emails.c.d", flag=True)
        assert [j.task_name for j in buffer.jobs] == ["critical.a.b", "emails.c.d"]
        assert first.durable
        assert first.job_id.version == 7
        assert buffer.jobs[1].kwargs == {"flag": True}
    with pytest.raises(NoActiveUnitOfWork):
        defer("critical.x.y")


def test_engine_options_per_role_and_for_pgbouncer() -> None:
    base = load_settings({"APP_ENV": "test", "DATABASE_URL": "postgresql://db/app"}, dotenv=None)
    api = engine_options(base, "api")
    assert api["pool_size"] == base.db_pool_size_api
    assert api["connect_args"]["server_settings"]["application_name"] == "fashionistar-api"
    assert "statement_timeout" in api["connect_args"]["server_settings"]
    worker = engine_options(base, "worker")
    assert worker["pool_size"] == base.db_pool_size_worker

    bouncer_settings = msgspec.structs.replace(base, db_pgbouncer=True)
    bouncer = engine_options(bouncer_settings, "api")
    assert bouncer["connect_args"]["statement_cache_size"] == 0
    assert make_url(engine_url(bouncer_settings)).query["prepared_statement_cache_size"] == "0"
    assert "prepared_statement_cache_size" not in make_url(engine_url(base)).query
    # Both option sets build an engine (creating one does not connect); behind PgBouncer reads
    # stay in transactions.
    plain_db, bouncer_db = create_database(base, "api"), create_database(bouncer_settings, "api")
    assert plain_db.reader() is not plain_db.session_maker
    assert bouncer_db.reader() is bouncer_db.session_maker
    for database in (plain_db, bouncer_db):
        database.engine.sync_engine.dispose()
    names = {bouncer["connect_args"]["prepared_statement_name_func"]() for _ in range(3)}
    assert len(names) == 3
    assert "statement_timeout" not in bouncer["connect_args"]["server_settings"]


def test_database_urls_are_pinned_to_asyncpg() -> None:
    assert normalise_url("postgres://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_url("postgresql://u@h/db") == "postgresql+asyncpg://u@h/db"
    assert normalise_url("postgresql+asyncpg://u@h/db") == "postgresql+asyncpg://u@h/db"


@pytest.mark.parametrize(
    ("queues", "expected"), [("inference", "8"), ("all", "8"), ("critical,emails", "32")]
)
def test_workers_serving_inference_take_few_tasks_at_once(
    queues: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKER_MAX_ASYNC_TASKS", "32")
    monkeypatch.setenv("INFERENCE_MAX_ASYNC_TASKS", "8")
    monkeypatch.setattr("tasks.runtime.worker.get_settings", load_settings)
    args = argparse.Namespace(queues=queues, module=[], scheduler=False, processes=1, shutdown_timeout=5.0)
    command = build_command(args)
    assert command[command.index("--max-async-tasks") + 1] == expected


@pytest.mark.anyio
async def test_the_same_message_key_makes_the_same_mail_file(tmp_path: Path) -> None:
    mailer = FileMailer(tmp_path)
    for _ in range(2):
        message = compose(
            sender="Fashionistar <no-reply@fashionistar.dev>",
            to="ada@example.com",
            template="verify_email",
            message_key="verify_email-0192/abc",
            name="Ada",
            code="123456",
            minutes="10",
        )
        assert message["Message-ID"] == "<verify_email-0192_abc@fashionistar.dev>"
        await mailer.send(message)
    assert [p.name async for p in anyio.Path(tmp_path).iterdir()] == ["verify_email-0192_abc.eml"]


def test_unknown_accounts_are_checked_against_a_hash_with_todays_parameters() -> None:
    """The stand-in hash verified for an unknown email is written out in the code; with other
    parameters than new hashes, an unknown email would answer faster than a wrong password."""
    from core.adapters.passwords import _DUMMY_HASH, needs_rehash, verify_password_sync

    assert not needs_rehash(_DUMMY_HASH)
    assert not verify_password_sync(None, "this-account-does-not-exist")
    assert _DUMMY_HASH.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_new_passwords_are_hashed_with_owasps_argon2id_parameters() -> None:
    from argon2 import extract_parameters

    from core.adapters.passwords import hash_password_sync, needs_rehash, verify_password_sync

    made = hash_password_sync("velvet-Runway-2026!")
    parameters = extract_parameters(made)
    assert (parameters.type.name, parameters.memory_cost, parameters.time_cost, parameters.parallelism) == (
        "ID",
        19 * 1024,
        2,
        1,
    )
    assert not needs_rehash(made)
    assert needs_rehash(
        "$argon2id$v=19$m=65536,t=3,p=4$hEPkBQ2Dg8dMbqs9myqjcA$dLZ+/xm7KTJ63cG87LmTakpArrfug1i3iFekQUnsmLk"
    )
    assert needs_rehash("not a hash")
    assert verify_password_sync(made, "velvet-Runway-2026!")


@pytest.mark.anyio
async def test_password_hashing_runs_off_the_event_loop() -> None:
    """The loop keeps serving other requests while a hash or a verify runs."""
    from core.adapters.passwords import PasswordHasher

    hasher = PasswordHasher(concurrency=1)
    ticks = 0
    done = anyio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(ticker)
        await anyio.lowlevel.checkpoint()
        made = await hasher.hash("velvet-Runway-2026!")
        during_hash, ticks = ticks, 0
        assert await hasher.verify(made, "velvet-Runway-2026!")
        assert not await hasher.verify(None, "velvet-Runway-2026!")
        done.set()
    assert during_hash > 1
    assert ticks > 1


def test_readiness_reads_the_same_revisions_from_the_scripts_as_alembic() -> None:
    """The API reads head and known revisions without loading Alembic; they must be Alembic's."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from db.config import MIGRATIONS_DIR
    from db.migrate import head_revisions, known_revisions

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    scripts = ScriptDirectory.from_config(config)
    assert head_revisions() == frozenset(scripts.get_heads())
    assert known_revisions() == frozenset(s.revision for s in scripts.walk_revisions())


def test_a_fresh_process_reads_heic_without_registering_the_decoder_first(tmp_path: Path) -> None:
    """The HEIC decoder is loaded on first use, not at import: a process that never asked for it
    still reads a HEIC upload (and did not load it before)."""
    import subprocess
    import sys

    from tests.support.catalog import image_bytes
    from tests.support.stack import ROOT

    photo = tmp_path / "photo.heic"
    photo.write_bytes(image_bytes("HEIF"))
    code = (
        "import sys\n"
        "from core.adapters.images import inspect_image\n"
        "assert 'pillow_heif' not in sys.modules\n"
        f"data = open({str(photo)!r}, 'rb').read()\n"
        "info = inspect_image(data, max_bytes=2**24, max_pixels=10**7, min_side=10)\n"
        "print(info.format, info.width, info.height)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["HEIF", "400", "600"]
