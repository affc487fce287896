"""Migrations and the request unit of work against the real database."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from litestar import Litestar, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from redis.asyncio import Redis
from sqlalchemy import Connection, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

import db.models
from core.jobs import Job, defer
from core.logging import configure_logging
from core.settings import Settings
from db.engine import Database
from db.migrate import current_revisions, head_revisions, is_current
from db.models import OutboxMessage, RefreshToken, User
from tasks.runtime.dispatch import BrokerDispatcher
from tests.support.http import serve
from tests.support.stack import WorkerProcess
from tests.test_tasks_e2e import eventually

pytestmark = pytest.mark.anyio


async def test_database_is_at_head_with_pgvector(database: Database) -> None:
    async with database.engine.connect() as conn:
        assert await current_revisions(conn) == head_revisions()
        version = await conn.scalar(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'"))
        server = await conn.scalar(text("SHOW server_version_num"))
    assert version is not None
    assert int(server) >= 160000


async def test_models_and_migrations_agree(database: Database) -> None:
    def diff(sync_conn: Connection) -> list[Any]:
        context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
        return list(compare_metadata(context, db.models.metadata))

    async with database.engine.connect() as conn:
        changes = await conn.run_sync(diff)
    assert changes == [], f"models differ from migrations; add a revision: {changes}"


async def test_uuid7_primary_keys_and_audit_columns(session: AsyncSession) -> None:
    row = OutboxMessage(job_id=uuid.uuid4(), task_name="critical.x.y", args=[], kwargs={}, labels={})
    session.add(row)
    await session.flush()
    assert row.id.version == 7
    assert row.created_at is not None
    assert row.updated_at is not None


@post("/api/v1/_test/outbox")
async def add_outbox_row(
    db_session: NamedDependency[AsyncSession], data: JSONBody[dict[str, str]]
) -> dict[str, str]:
    job = defer("critical.test.record", data["key"], durable=True)
    return {"job_id": str(job.job_id)}


@post("/api/v1/_test/duplicate")
async def add_duplicate_rows(
    db_session: NamedDependency[AsyncSession], data: JSONBody[dict[str, str]]
) -> dict[str, str]:
    job_id = uuid.uuid4()
    defer("critical.test.record", data["key"])
    for _ in range(2):  # violates the unique job_id, but only when flushed at commit time
        db_session.add(OutboxMessage(job_id=job_id, task_name="critical.x", args=[], kwargs={}, labels={}))
    return {"status": "created"}


async def test_request_commits_then_sends_and_the_task_logs_the_request_id(
    make_app: Callable[..., Litestar],
    isolated_db: Database,
    worker: WorkerProcess,
    redis: Redis,
) -> None:
    key = f"req:{uuid.uuid4()}"
    app = make_app()
    app.register(add_outbox_row)
    async with serve(app) as client:
        response = await client.post(
            "/api/v1/_test/outbox", json={"key": key}, headers={"X-Request-ID": f"rid-{key[-12:]}"}
        )
    assert response.status_code == 201, response.text
    await eventually(lambda: redis.get(key), within=20)
    async with isolated_db.session_maker() as s:
        row = await s.scalar(
            select(OutboxMessage).where(OutboxMessage.job_id == uuid.UUID(response.json()["job_id"]))
        )
    assert row is not None
    assert row.dispatched_at is not None
    assert row.labels["request_id"] == f"rid-{key[-12:]}"
    # The worker's log line for the task carries the request id of the request that caused it.
    lines = [json.loads(x) for x in worker.log_text().splitlines() if x.startswith("{")]
    assert any(
        line.get("request_id") == f"rid-{key[-12:]}" and line.get("event") == "task finished"
        for line in lines
    )


async def test_failed_commit_is_an_error_response_and_sends_nothing(
    make_app: Callable[..., Litestar], worker: WorkerProcess, redis: Redis, dispatcher: BrokerDispatcher
) -> None:
    key = f"dup:{uuid.uuid4()}"
    stream = io.StringIO()
    app = make_app()
    app.register(add_duplicate_rows)
    configure_logging(level="INFO", fmt="json", stream=stream)
    try:
        async with serve(app) as client:
            response = await client.post("/api/v1/_test/duplicate", json={"key": key})
    finally:
        configure_logging(level="WARNING", fmt="json")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "IntegrityError" in stream.getvalue()  # logged for us, not shown to the client
    assert "IntegrityError" not in response.text
    # A job sent after the request on the same queue has run, so the request's would have too.
    await dispatcher.send(Job(task_name="critical.test.record", args=(f"{key}:after",)))
    await eventually(lambda: redis.get(f"{key}:after"), within=20)
    assert await redis.get(key) is None


async def test_demo_seed_fills_an_empty_database_once(committed_db: Database, settings: Settings) -> None:
    from devstack.seed import DEMO_ACCOUNTS, seed_demo_data

    assert await seed_demo_data(settings) is True
    assert await seed_demo_data(settings) is False
    async with committed_db.session_maker() as s:
        emails = set(await s.scalars(select(User.email)))
    assert emails == {a[0] for a in DEMO_ACCOUNTS}
    with pytest.raises(RuntimeError):
        await seed_demo_data(msgspec.structs.replace(settings, app_env="production"))


async def test_get_owned_hides_other_users_objects(session: AsyncSession) -> None:
    from core.errors import NotFound
    from db.ownership import get_owned
    from tests.support.identity import make_user

    owner, stranger = await make_user(session), await make_user(session)
    token = RefreshToken(
        user_id=owner.id,
        family_id=uuid.uuid4(),
        token_hash=uuid.uuid4().bytes * 2,
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    session.add(token)
    await session.flush()
    found = await get_owned(session, RefreshToken, token.id, RefreshToken.user_id, owner.id)
    assert found.id == token.id
    with pytest.raises(NotFound):
        await get_owned(session, RefreshToken, token.id, RefreshToken.user_id, stranger.id)
    with pytest.raises(NotFound):
        await get_owned(session, RefreshToken, uuid.uuid4(), RefreshToken.user_id, owner.id)


def _old_profile_hash(password: str) -> str:
    """A hash as accounts made before the switch to OWASP's parameters carry it (argon2-cffi's
    RFC 9106 low-memory profile: 64 MiB, t=3, p=4)."""
    from argon2 import PasswordHasher
    from argon2.profiles import RFC_9106_LOW_MEMORY

    return PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY).hash(password)


async def test_login_rehashes_a_password_made_with_old_parameters(client: Any, session: AsyncSession) -> None:
    from core.adapters.passwords import needs_rehash, verify_password_sync
    from tests.support.identity import PASSWORD, login, make_user

    user = await make_user(session)
    old = user.password_hash = _old_profile_hash(PASSWORD)
    await session.commit()
    assert old.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert needs_rehash(old)
    await login(client, user.email)
    await session.refresh(user)
    upgraded = user.password_hash
    assert upgraded != old
    assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert not needs_rehash(upgraded)
    assert verify_password_sync(upgraded, PASSWORD)
    assert not verify_password_sync(upgraded, PASSWORD + "x")
    # The upgraded hash logs in, and is not made again.
    await login(client, user.email)
    await session.refresh(user)
    assert user.password_hash == upgraded


async def test_a_refused_login_does_not_rehash(client: Any, session: AsyncSession) -> None:
    """Only a login that succeeds rewrites the hash: a wrong password proves nothing, and the right
    password on an unverified account is refused in the same transaction (rolled back)."""
    from tests.support.identity import PASSWORD

    wrong = await _user_with_old_hash(session, verified=True)
    unverified = await _user_with_old_hash(session, verified=False)
    before = {wrong.id: wrong.password_hash, unverified.id: unverified.password_hash}
    refused = await client.post(
        "/api/v1/auth/login", json={"email": wrong.email, "password": "not-it-at-all-1"}
    )
    assert refused.status_code == 401, refused.text
    not_yet = await client.post("/api/v1/auth/login", json={"email": unverified.email, "password": PASSWORD})
    assert not_yet.status_code == 403, not_yet.text
    for user in (wrong, unverified):
        await session.refresh(user)
        assert user.password_hash == before[user.id]


async def _user_with_old_hash(session: AsyncSession, *, verified: bool) -> Any:
    from tests.support.identity import PASSWORD, make_user

    user = await make_user(session, verified=verified)
    user.password_hash = _old_profile_hash(PASSWORD)
    await session.commit()
    return user


async def test_readiness_accepts_a_database_migrated_by_a_newer_release(
    db_connection: AsyncConnection,
) -> None:
    """During a rolling deploy the migration job runs before the new pods: the old ones must stay
    ready on a database that is ahead of them, and only a database behind the code is outdated."""
    (head,) = head_revisions()
    assert await is_current(db_connection)
    await db_connection.execute(text("UPDATE alembic_version SET version_num = '0009'"))
    assert not await is_current(db_connection)  # behind this code
    await db_connection.execute(text("UPDATE alembic_version SET version_num = 'f00dcafe0042'"))
    assert await is_current(db_connection)  # a revision of a newer release
    await db_connection.execute(text("DELETE FROM alembic_version"))
    assert not await is_current(db_connection)  # never migrated
    await db_connection.execute(text("INSERT INTO alembic_version VALUES (:v)"), {"v": head})
    assert await is_current(db_connection)
