"""Access tokens stop working the moment the power they carry is taken away.

Each trigger (role change, user suspension, store suspension, logging out everywhere, password
reset) is checked through the API: the token the user held a moment before is a 401 problem on
the very next request, in the same process and (through Redis pub/sub) in another one; a lost
announcement still takes effect within a second.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
import httpx
import pytest
from litestar import Litestar
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.tokens import TokenSigner
from core.jobs import NoActiveUnitOfWork, after_commit
from core.settings import Settings
from db.engine import Database
from db.models import AuditEvent, User
from db.uow import unit_of_work
from tasks.runtime.dispatch import BrokerDispatcher
from tests.support.catalog import make_store
from tests.support.http import problem, serve
from tests.support.identity import PASSWORD, bearer, login, make_user, new_code

pytestmark = pytest.mark.anyio

API = "/api/v1"
REFUSED = "The access token is invalid or has expired."


def refused(response: httpx.Response) -> None:
    """The answer to a revoked token: the same 401 problem as for a forged or expired one."""
    body = problem(response, 401)
    assert body["detail"] == REFUSED
    assert body["status"] == 401
    assert "bearer" in response.headers["www-authenticate"].lower()


async def staff_headers(client: httpx.AsyncClient, session: AsyncSession) -> tuple[User, dict[str, str]]:
    staff = await make_user(session, role="staff")
    return staff, bearer(await login(client, staff.email))


async def signed_in_vendor(
    client: httpx.AsyncClient, session: AsyncSession
) -> tuple[User, Any, dict[str, Any]]:
    vendor = await make_user(session, role="vendor")
    store = await make_store(session, vendor)
    tokens = await login(client, vendor.email)
    assert (await client.get(f"{API}/vendor/products", headers=bearer(tokens))).status_code == 200
    return vendor, store, tokens


# --- each trigger -----------------------------------------------------------------------------


async def test_a_role_change_refuses_the_old_token_at_once(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    vendor, _, tokens = await signed_in_vendor(client, session)
    _, staff = await staff_headers(client, session)

    changed = await client.patch(
        f"{API}/staff/users/{vendor.id}/role", json={"role": "client"}, headers=staff
    )
    assert changed.status_code == 200, changed.text

    refused(await client.get(f"{API}/vendor/products", headers=bearer(tokens)))
    refused(await client.get(f"{API}/me", headers=bearer(tokens)))
    # Signing in again gives a token of the new role.
    again = bearer(await login(client, vendor.email))
    assert (await client.get(f"{API}/me", headers=again)).json()["role"] == "client"
    assert (await client.get(f"{API}/vendor/products", headers=again)).status_code == 403


async def test_a_promotion_also_ends_the_old_token(client: httpx.AsyncClient, session: AsyncSession) -> None:
    """The token says what role it was issued for; a token of the wrong role is never honoured."""
    shopper = await make_user(session)
    tokens = await login(client, shopper.email)
    _, staff = await staff_headers(client, session)
    changed = await client.patch(
        f"{API}/staff/users/{shopper.id}/role", json={"role": "vendor"}, headers=staff
    )
    assert changed.status_code == 200, changed.text
    refused(await client.get(f"{API}/me", headers=bearer(tokens)))


async def test_suspending_a_user_refuses_their_tokens_logins_and_refreshes(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    shopper = await make_user(session)
    tokens = await login(client, shopper.email)
    assert (await client.get(f"{API}/me", headers=bearer(tokens))).status_code == 200
    _, staff = await staff_headers(client, session)

    suspended = await client.patch(
        f"{API}/staff/users/{shopper.id}/status", json={"status": "suspended"}, headers=staff
    )
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "suspended"

    refused(await client.get(f"{API}/me", headers=bearer(tokens)))
    refused(await client.get(f"{API}/cart", headers=bearer(tokens)))
    problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)
    denied = problem(
        await client.post(f"{API}/auth/login", json={"email": shopper.email, "password": PASSWORD}), 403
    )
    assert denied["type"].endswith("/account_suspended")
    # The wrong password still says nothing about the account.
    wrong = await client.post(
        f"{API}/auth/login", json={"email": shopper.email, "password": "not-the-password-1"}
    )
    problem(wrong, 401)

    again = await client.patch(
        f"{API}/staff/users/{shopper.id}/status", json={"status": "suspended"}, headers=staff
    )
    assert again.status_code == 200  # suspending twice changes nothing

    reinstated = await client.patch(
        f"{API}/staff/users/{shopper.id}/status", json={"status": "active"}, headers=staff
    )
    assert reinstated.json()["status"] == "active"
    refused(await client.get(f"{API}/me", headers=bearer(tokens)))  # old tokens stay dead
    fresh = bearer(await login(client, shopper.email))
    assert (await client.get(f"{API}/me", headers=fresh)).status_code == 200
    events = set(await session.scalars(select(AuditEvent.event_type).where(AuditEvent.user_id == shopper.id)))
    assert {"user_suspended", "user_reinstated", "login_suspended"} <= events


async def test_user_status_refuses_bad_requests(client: httpx.AsyncClient, session: AsyncSession) -> None:
    staff_user, staff = await staff_headers(client, session)
    own = await client.patch(
        f"{API}/staff/users/{staff_user.id}/status", json={"status": "suspended"}, headers=staff
    )
    assert problem(own, 409)["type"].endswith("/own_account")
    assert (await client.get(f"{API}/me", headers=staff)).status_code == 200  # nothing happened
    missing = await client.patch(
        f"{API}/staff/users/{uuid.uuid4()}/status", json={"status": "suspended"}, headers=staff
    )
    problem(missing, 404)
    shopper = await make_user(session)
    for body in ({"status": "banned"}, {}, {"status": "suspended", "role": "client"}):
        bad = await client.patch(f"{API}/staff/users/{shopper.id}/status", json=body, headers=staff)
        problem(bad, 422)
    client_token = bearer(await login(client, shopper.email))
    forbidden = await client.patch(
        f"{API}/staff/users/{staff_user.id}/status", json={"status": "suspended"}, headers=client_token
    )
    problem(forbidden, 403)


async def test_suspending_a_store_refuses_its_owners_token_at_once(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    vendor, store, tokens = await signed_in_vendor(client, session)
    _, staff = await staff_headers(client, session)

    done = await client.patch(
        f"{API}/staff/vendors/{store.id}/status", json={"status": "suspended"}, headers=staff
    )
    assert done.status_code == 200, done.text

    refused(await client.get(f"{API}/vendor/products", headers=bearer(tokens)))
    # The owner may sign in again (the account is not suspended), but the store's routes refuse.
    again = bearer(await login(client, vendor.email))
    closed = problem(await client.get(f"{API}/vendor/products", headers=again), 403)
    assert closed["type"].endswith("/store_suspended")
    # Reinstating revokes nothing.
    back = await client.patch(
        f"{API}/staff/vendors/{store.id}/status", json={"status": "active"}, headers=staff
    )
    assert back.status_code == 200
    assert (await client.get(f"{API}/vendor/products", headers=again)).status_code == 200


async def test_logging_out_everywhere_ends_every_session_and_token(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    shopper = await make_user(session)
    phone, laptop = await login(client, shopper.email), await login(client, shopper.email)
    other = await make_user(session)
    others = await login(client, other.email)

    ended = await client.post(f"{API}/auth/logout/all", json={"refresh_token": phone["refresh_token"]})
    assert ended.status_code == 204, ended.text

    for tokens in (phone, laptop):
        refused(await client.get(f"{API}/me", headers=bearer(tokens)))
        rotated = await client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        problem(rotated, 401)
    # Someone else's sessions are untouched.
    assert (await client.get(f"{API}/me", headers=bearer(others))).status_code == 200
    fresh = await login(client, shopper.email)
    listed = await client.get(f"{API}/me/sessions", headers=bearer(fresh))
    assert len(listed.json()["items"]) == 1
    assert "logged_out_everywhere" in set(
        await session.scalars(select(AuditEvent.event_type).where(AuditEvent.user_id == shopper.id))
    )
    # An ended (or unknown) token changes nothing: the new session lives on.
    for stale in (laptop["refresh_token"], "y" * 43):
        again = await client.post(f"{API}/auth/logout/all", json={"refresh_token": stale})
        assert again.status_code == 204
    assert (await client.get(f"{API}/me", headers=bearer(fresh))).status_code == 200
    problem(await client.post(f"{API}/auth/logout/all", json={}), 422)


async def test_a_password_reset_refuses_the_old_access_token(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    shopper = await make_user(session)
    tokens = await login(client, shopper.email)
    code = await new_code(session, settings, shopper, "reset_password")
    body = {"email": shopper.email, "code": code, "new_password": "Ankara-Print-Dress-77"}
    assert (await client.post(f"{API}/auth/password/reset", json=body)).status_code == 204
    refused(await client.get(f"{API}/me", headers=bearer(tokens)))


async def test_tokens_that_disagree_with_the_user_are_refused(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    """Genuine signatures, wrong claims: another role, an older or newer version, no such user."""
    shopper = await make_user(session)
    signer = TokenSigner(settings)
    assert (
        await client.get(f"{API}/me", headers=bearer(signer.issue(shopper.id, "client")))
    ).status_code == 200
    for token in (
        signer.issue(shopper.id, "staff"),
        signer.issue(shopper.id, "client", version=1),
        signer.issue(uuid.uuid4(), "client"),
    ):
        refused(await client.get(f"{API}/me", headers=bearer(token)))
        refused(await client.get(f"{API}/products", headers=bearer(token)))  # public routes too


# --- across processes ---------------------------------------------------------------------------


async def _until_refused(client: httpx.AsyncClient, headers: dict[str, str], limit: float) -> float:
    """Seconds until ``GET /me`` with ``headers`` is refused (fails past ``limit``)."""
    started = time.monotonic()
    while (response := await client.get(f"{API}/me", headers=headers)).status_code == 200:
        assert time.monotonic() - started < limit, "the old token is still honoured"
        await anyio.sleep(0.02)
    refused(response)
    return time.monotonic() - started


async def test_another_process_hears_of_a_revocation_at_once(
    client: httpx.AsyncClient, session: AsyncSession, make_app: Callable[..., Litestar]
) -> None:
    """A second app (its own cache and subscription, as another API process) learns of a role
    change through Redis, well before its one-second cache time would have expired."""
    vendor, _, tokens = await signed_in_vendor(client, session)
    _, staff = await staff_headers(client, session)
    async with serve(make_app()) as other:
        assert (await other.get(f"{API}/vendor/products", headers=bearer(tokens))).status_code == 200
        changed = await client.patch(
            f"{API}/staff/users/{vendor.id}/role", json={"role": "client"}, headers=staff
        )
        assert changed.status_code == 200
        assert await _until_refused(other, bearer(tokens), limit=0.5) < 0.5


async def test_without_the_announcement_a_revocation_takes_at_most_a_second(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    """A lost pub/sub message (here: a change no process announced) costs at most the cache time."""
    shopper = await make_user(session)
    tokens = await login(client, shopper.email)
    assert (await client.get(f"{API}/me", headers=bearer(tokens))).status_code == 200  # now cached
    await session.execute(
        update(User).where(User.id == shopper.id).values(token_version=User.token_version + 1)
    )
    await session.commit()
    # One second of cache time, plus the time a request takes on a busy test machine.
    await _until_refused(client, bearer(tokens), limit=1.5)


# --- the after-commit notice the announcement rides on ------------------------------------------


async def test_notices_run_after_the_commit_only_and_a_failing_one_fails_nothing(
    isolated_db: Database, dispatcher: BrokerDispatcher
) -> None:
    heard: list[str] = []

    async def note(word: str) -> None:
        heard.append(word)

    async def broken() -> None:
        raise ConnectionError("redis is away")

    async def failing_request() -> None:
        async with unit_of_work(isolated_db.session_maker, dispatcher) as session:
            after_commit(partial(note, "rolled back"))
            await session.execute(select(1))
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        await failing_request()
    assert heard == []

    async with unit_of_work(isolated_db.session_maker, dispatcher) as session:
        after_commit(broken)
        after_commit(partial(note, "committed"))
        await session.execute(select(1))
        assert heard == []  # not before the commit
    assert heard == ["committed"]
    with pytest.raises(NoActiveUnitOfWork):
        after_commit(partial(note, "nowhere"))
