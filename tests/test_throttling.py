"""Limits an attacker cannot turn against the owner: failed logins slow down the address that
fails (with waits that grow), not the account; a password reset forgets them; code sends and
checks are counted per (address, email) before a looser per-email bound; anonymous traffic is
counted per address and logged-in users per account.

Every client here sits behind one trusted proxy, so ``X-Forwarded-For`` picks the caller's
address as a real deployment derives it (``TRUSTED_PROXY_HOPS``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from litestar import Litestar
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings, SettingsError, load_settings
from core.task_names import SEND_CODE
from db.engine import Database
from db.models import AuditEvent, OutboxMessage
from tests.conftest import clear_rate_limits
from tests.support.catalog import image_bytes
from tests.support.http import problem, serve
from tests.support.identity import PASSWORD, bearer, make_user, new_code, unique_email

pytestmark = pytest.mark.anyio

API = "/api/v1"
ATTACKER, OWNER = "203.0.113.7", "198.51.100.20"
NEW_PASSWORD = "Ankara-Print-Dress-77"


@pytest.fixture
async def behind_proxy(
    make_app: Callable[..., Litestar], settings: Settings, redis: Redis
) -> AsyncIterator[Callable[..., Any]]:
    """Serve the app with ``TRUSTED_PROXY_HOPS=1`` and the given setting overrides."""
    await clear_rate_limits(redis)

    def with_settings(**overrides: Any) -> Any:
        return serve(make_app(settings=msgspec.structs.replace(settings, trusted_proxy_hops=1, **overrides)))

    yield with_settings
    await clear_rate_limits(redis)


def source(ip: str, tokens: dict[str, Any] | None = None) -> dict[str, str]:
    headers = {"X-Forwarded-For": ip}
    return {**headers, **bearer(tokens)} if tokens else headers


async def log_in(client: httpx.AsyncClient, email: str, password: str, ip: str) -> httpx.Response:
    return await client.post(
        f"{API}/auth/login", json={"email": email, "password": password}, headers=source(ip)
    )


async def until_refused(
    send: Callable[[], Awaitable[httpx.Response]], refused_before: int, most: int = 40
) -> httpx.Response:
    """Send until the answer is 429 (checking each earlier answer is ``refused_before``, the
    status a plain wrong try gets); that 429."""
    for _ in range(most):
        response = await send()
        if response.status_code == 429:
            problem(response, 429)
            assert int(response.headers["retry-after"]) >= 1
            return response
        assert response.status_code == refused_before, response.text
    raise AssertionError(f"{most} tries were never refused")


async def fail_until_throttled(client: httpx.AsyncClient, email: str, ip: str) -> dict[str, Any]:
    """Wrong passwords from ``ip`` until it is told to wait; that 429's problem body."""
    response = await until_refused(lambda: log_in(client, email, "not-the-password-9", ip), 401)
    body: dict[str, Any] = response.json()
    body["retry_after"] = int(response.headers["retry-after"])
    return body


# --- failed logins ------------------------------------------------------------------------------


async def test_an_attackers_failures_do_not_stop_the_owner_from_another_address(
    behind_proxy: Callable[..., Any], session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session)
    async with behind_proxy() as client:
        throttled = await fail_until_throttled(client, user.email, ATTACKER)
        # Keep trying: the attacker's address is refused, the right password included ...
        for _ in range(5):
            problem(await log_in(client, user.email, "still-guessing-1", ATTACKER), 429)
        problem(await log_in(client, user.email, PASSWORD, ATTACKER), 429)
        # ... and the owner, elsewhere, comes straight in.
        owner = await log_in(client, user.email, PASSWORD, OWNER)
        assert owner.status_code == 200, owner.text
    assert throttled["type"].endswith("login_throttled")
    events = list(await session.scalars(select(AuditEvent.event_type).where(AuditEvent.user_id == user.id)))
    assert "login_throttled" in events
    assert events.count("login_failed") == settings.login_free_failures_per_source


async def test_the_wait_grows_with_each_failure_up_to_the_cap(
    behind_proxy: Callable[..., Any], session: AsyncSession
) -> None:
    user = await make_user(session)
    waits = []
    async with behind_proxy(
        login_free_failures_per_source=1, login_backoff_base_seconds=2, login_backoff_max_seconds=4
    ) as client:
        for _ in range(3):
            problem(await log_in(client, user.email, "wrong-guess-42", ATTACKER), 401)
            refused = await log_in(client, user.email, PASSWORD, ATTACKER)
            problem(refused, 429)
            waits.append(int(refused.headers["retry-after"]))
            await anyio.sleep(waits[-1] + 0.1)
        # Once the wait is over the right password is checked again, and clears the failures:
        # the next failure costs the first wait again.
        assert (await log_in(client, user.email, PASSWORD, ATTACKER)).status_code == 200
        problem(await log_in(client, user.email, "wrong-guess-43", ATTACKER), 401)
        again = await log_in(client, user.email, PASSWORD, ATTACKER)
        problem(again, 429)
    # 2 s, 4 s, then the 4 s cap; Retry-After rounds the time left up, and the wait started when
    # the failing attempt came in, so a slow answer may read a second less.
    assert waits[0] in (1, 2)
    assert waits[1] in (3, 4)
    assert waits[2] in (3, 4)
    assert again.headers["retry-after"] in ("1", "2")


async def test_parallel_guesses_cannot_slip_past_the_backoff(
    make_app: Callable[..., Litestar], committed_db: Database, settings: Settings, redis: Redis
) -> None:
    """Every attempt counts as a failure before its password is checked (and is taken back if it
    is right), so a burst sent at once gets no more tries than the same guesses one by one."""
    await clear_rate_limits(redis)
    async with committed_db.session_maker() as s:
        user = await make_user(s)
    burst = 8
    app = make_app(database=committed_db, settings=msgspec.structs.replace(settings, trusted_proxy_hops=1))
    async with serve(app) as client:
        answers = await asyncio.gather(
            *(log_in(client, user.email, f"parallel-guess-{n}", ATTACKER) for n in range(burst))
        )
        owner = await log_in(client, user.email, PASSWORD, OWNER)
    await clear_rate_limits(redis)
    free = settings.login_free_failures_per_source
    assert sorted(a.status_code for a in answers) == [401] * free + [429] * (burst - free)
    assert owner.status_code == 200, owner.text


async def test_a_successful_login_clears_only_its_own_addresses_failures(
    behind_proxy: Callable[..., Any], session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session)
    free = settings.login_free_failures_per_source
    async with behind_proxy() as client:
        for ip in (ATTACKER, OWNER):
            for _ in range(free - 1):
                problem(await log_in(client, user.email, "typo-password-1", ip), 401)
        assert (await log_in(client, user.email, PASSWORD, OWNER)).status_code == 200
        # The owner's address starts again from nothing ...
        for _ in range(free - 1):
            problem(await log_in(client, user.email, "typo-password-2", OWNER), 401)
        # ... the other address keeps its failures: one more and it waits.
        problem(await log_in(client, user.email, "typo-password-3", ATTACKER), 401)
        problem(await log_in(client, user.email, PASSWORD, ATTACKER), 429)


async def test_a_password_reset_forgets_every_failed_login(
    behind_proxy: Callable[..., Any], session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session)
    async with behind_proxy() as client:
        await fail_until_throttled(client, user.email, ATTACKER)
        await fail_until_throttled(client, user.email, OWNER)
        code = await new_code(session, settings, user, "reset_password")
        reset = await client.post(
            f"{API}/auth/password/reset",
            json={"email": user.email, "code": code, "new_password": NEW_PASSWORD},
            headers=source(OWNER),
        )
        assert reset.status_code == 204, reset.text
        for ip in (OWNER, ATTACKER):
            response = await log_in(client, user.email, NEW_PASSWORD, ip)
            assert response.status_code == 200, response.text


async def test_past_the_account_ceiling_failing_addresses_wait_the_cap_and_others_do_not(
    behind_proxy: Callable[..., Any], session: AsyncSession
) -> None:
    user = await make_user(session)
    botnet = [f"192.0.2.{n}" for n in range(1, 5)]
    async with behind_proxy(login_max_failures_per_account=3, login_backoff_max_seconds=600) as client:
        for ip in botnet:  # one guess each: no address alone gets near its own backoff
            problem(await log_in(client, user.email, "spread-guess-1", ip), 401)
        # The fourth failure for the account went over the ceiling: that address waits the cap.
        capped = await log_in(client, user.email, PASSWORD, botnet[-1])
        problem(capped, 429)
        assert 599 <= int(capped.headers["retry-after"]) <= 600
        # An address that failed before the ceiling may try again, and waits the cap if it fails.
        problem(await log_in(client, user.email, "spread-guess-2", botnet[0]), 401)
        problem(await log_in(client, user.email, PASSWORD, botnet[0]), 429)
        # The owner, from an address that has not failed, is not slowed down at all.
        owner = await log_in(client, user.email, PASSWORD, OWNER)
        assert owner.status_code == 200, owner.text


async def test_throttled_logins_do_not_tell_whether_the_account_exists(
    behind_proxy: Callable[..., Any], session: AsyncSession
) -> None:
    user = await make_user(session)
    async with behind_proxy() as client:
        known = await fail_until_throttled(client, user.email, ATTACKER)
        unknown = await fail_until_throttled(client, unique_email(), ATTACKER)
    # The same answer after the same number of failures; only the request id differs (and the
    # seconds left, by the moments between the two).
    assert known.pop("request_id") != unknown.pop("request_id")
    assert abs(known.pop("retry_after") - unknown.pop("retry_after")) <= 1
    assert known == unknown


# --- one-time codes -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/auth/otp/resend", "/auth/password/forgot"])
async def test_code_requests_from_one_address_do_not_use_up_the_owners(
    behind_proxy: Callable[..., Any], session: AsyncSession, settings: Settings, path: str
) -> None:
    user = await make_user(session, verified=path == "/auth/password/forgot")
    body = {"email": user.email}
    async with behind_proxy() as client:
        await until_refused(lambda: client.post(f"{API}{path}", json=body, headers=source(ATTACKER)), 202)
        owner = await client.post(f"{API}{path}", json=body, headers=source(OWNER))
        assert owner.status_code == 202, owner.text
    # A code mail for each request let through: the attacker's allowance, then the owner's.
    jobs = await session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.task_name == SEND_CODE, OutboxMessage.args[0].astext == user.email)
    )
    assert jobs == settings.otp_max_sends_per_source_email + 1


async def test_code_requests_for_one_email_are_bounded_across_addresses(
    behind_proxy: Callable[..., Any],
) -> None:
    body = {"email": unique_email()}
    async with behind_proxy(otp_max_sends_per_source_email=2, otp_max_sends_per_email=4) as client:
        for ip in (ATTACKER, ATTACKER, OWNER, OWNER):
            response = await client.post(f"{API}/auth/password/forgot", json=body, headers=source(ip))
            assert response.status_code == 202, response.text
        for ip in ("192.0.2.9", ATTACKER):
            problem(await client.post(f"{API}/auth/password/forgot", json=body, headers=source(ip)), 429)


async def test_code_guesses_from_one_address_do_not_block_the_owners_verification(
    behind_proxy: Callable[..., Any], session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session, verified=False)
    await new_code(session, settings, user, "verify_email")
    guess = {"email": user.email, "code": "000000"}
    async with behind_proxy() as client:
        await until_refused(
            lambda: client.post(f"{API}/auth/otp/verify", json=guess, headers=source(ATTACKER)), 400
        )
        # The guesses burned that code (OTP_MAX_ATTEMPTS); the owner asks for a new one and uses it.
        code = await new_code(session, settings, user, "verify_email")
        owner = await client.post(
            f"{API}/auth/otp/verify", json={"email": user.email, "code": code}, headers=source(OWNER)
        )
        assert owner.status_code == 200, owner.text
        assert owner.json()["is_verified"] is True


async def test_code_checks_for_one_email_are_bounded_across_addresses(
    behind_proxy: Callable[..., Any], session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session, verified=False)
    guess = {"email": user.email, "code": "000000"}
    limits = {"otp_max_verifications_per_source_email": 2, "otp_max_verifications_per_email": 3}
    async with behind_proxy(**limits) as client:
        for ip in (ATTACKER, ATTACKER, OWNER):
            problem(await client.post(f"{API}/auth/otp/verify", json=guess, headers=source(ip)), 400)
        code = await new_code(session, settings, user, "verify_email")
        right = {"email": user.email, "code": code}
        problem(await client.post(f"{API}/auth/otp/verify", json=right, headers=source("192.0.2.9")), 429)


# --- anonymous traffic per address, logged-in users per account ----------------------------------


async def search_by_photo(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    not_a_photo = {"image": ("photo.jpg", b"not a photo", "image/jpeg")}
    return await client.post(f"{API}/search/image", files=not_a_photo, headers=headers)


async def test_an_anonymous_flood_does_not_limit_a_logged_in_users_search_by_photo(
    behind_proxy: Callable[..., Any], session: AsyncSession
) -> None:
    user = await make_user(session)
    async with behind_proxy(search_image_per_minute=2) as client:
        tokens = (await log_in(client, user.email, PASSWORD, ATTACKER)).json()
        # Anonymous callers behind the user's address use up its allowance ...
        await until_refused(lambda: search_by_photo(client, source(ATTACKER)), 415)
        # ... and the user behind the same address searches on (415: the upload is checked).
        problem(await search_by_photo(client, source(ATTACKER, tokens)), 415)


async def test_a_logged_in_user_is_limited_per_account_wherever_they_are(
    behind_proxy: Callable[..., Any], session: AsyncSession
) -> None:
    user = await make_user(session)
    async with behind_proxy(search_image_per_user_per_minute=3) as client:
        tokens = (await log_in(client, user.email, PASSWORD, ATTACKER)).json()
        for _ in range(3):
            problem(await search_by_photo(client, source(ATTACKER, tokens)), 415)
        limited = await client.post(
            f"{API}/search/image",
            files={"image": ("p.jpg", image_bytes(), "image/jpeg")},
            headers=source(ATTACKER, tokens),
        )
        problem(limited, 429)
        assert int(limited.headers["retry-after"]) >= 1
        # The count follows the user to another address, and leaves that address's callers alone.
        problem(await search_by_photo(client, source(OWNER, tokens)), 429)
        problem(await search_by_photo(client, source(OWNER)), 415)


async def test_an_anonymous_flood_does_not_limit_a_logged_in_users_code_requests(
    behind_proxy: Callable[..., Any], session: AsyncSession
) -> None:
    user = await make_user(session)
    async with behind_proxy(otp_max_requests_per_ip=2) as client:
        tokens = (await log_in(client, user.email, PASSWORD, ATTACKER)).json()
        for _ in range(2):
            anonymous = {"email": unique_email()}
            response = await client.post(f"{API}/auth/otp/resend", json=anonymous, headers=source(ATTACKER))
            assert response.status_code == 202
        flood = {"email": unique_email()}
        problem(await client.post(f"{API}/auth/otp/resend", json=flood, headers=source(ATTACKER)), 429)
        own = await client.post(
            f"{API}/auth/password/forgot", json={"email": user.email}, headers=source(ATTACKER, tokens)
        )
        assert own.status_code == 202, own.text


# --- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        (
            {"LOGIN_BACKOFF_BASE_SECONDS": "60", "LOGIN_BACKOFF_MAX_SECONDS": "30"},
            "LOGIN_BACKOFF_BASE_SECONDS",
        ),
        ({"LOGIN_BACKOFF_MAX_SECONDS": "7200", "LOGIN_FAILURE_WINDOW_SECONDS": "3600"}, "LOGIN_BACKOFF_MAX"),
        ({"OTP_MAX_SENDS_PER_SOURCE_EMAIL": "5", "OTP_MAX_SENDS_PER_EMAIL": "4"}, "OTP_MAX_SENDS_PER_SOURCE"),
        (
            {"OTP_MAX_VERIFICATIONS_PER_SOURCE_EMAIL": "40", "OTP_MAX_VERIFICATIONS_PER_EMAIL": "30"},
            "OTP_MAX_VERIFICATIONS_PER_SOURCE_EMAIL",
        ),
        ({"LOGIN_FREE_FAILURES_PER_SOURCE": "0"}, "LOGIN_FREE_FAILURES_PER_SOURCE"),
        ({"SEARCH_IMAGE_PER_USER_PER_MINUTE": "0"}, "SEARCH_IMAGE_PER_USER_PER_MINUTE"),
    ],
)
def test_limits_that_do_not_hang_together_are_refused(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings({"APP_ENV": "test", **environ}, dotenv=None)


def test_the_default_limits_hang_together() -> None:
    settings = load_settings({"APP_ENV": "test"}, dotenv=None)
    assert settings.otp_max_sends_per_source_email < settings.otp_max_sends_per_email
    assert settings.login_backoff_max_seconds <= settings.login_failure_window_seconds
