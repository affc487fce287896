"""Identity endpoints on the real database and Redis: every path, good and bad."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.tokens import hash_refresh_token
from core.settings import Settings
from db.models import AuditEvent, OneTimeCode, OutboxMessage, RefreshToken, User
from tests.conftest import clear_rate_limits
from tests.support.http import problem
from tests.support.identity import PASSWORD, bearer, login, make_user, new_code, unique_email

pytestmark = pytest.mark.anyio

API = "/api/v1"


async def audit_types(session: AsyncSession, user_id: Any) -> list[str]:
    rows = await session.scalars(
        select(AuditEvent.event_type).where(AuditEvent.user_id == user_id).order_by(AuditEvent.id)
    )
    return list(rows)


# --- registration --------------------------------------------------------------------------


async def test_register_creates_an_unverified_user_and_queues_the_code_email(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    email = unique_email("Ada")
    response = await client.post(
        f"{API}/auth/register",
        json={"email": f"  {email.upper()} ", "password": PASSWORD, "full_name": "Ada Obi", "role": "vendor"},
    )
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"
    assert "password" not in response.text
    user = await session.scalar(select(User).where(User.email == email.lower()))
    assert user is not None
    assert (user.role, user.is_verified, user.full_name) == ("vendor", False, "Ada Obi")
    job = await session.scalar(
        select(OutboxMessage).where(OutboxMessage.task_name == "emails.identity.send_code")
    )
    assert job is not None
    assert job.args == [email.lower(), "verify_email"]
    assert await audit_types(session, user.id) == ["registered"]


async def test_register_defaults_to_client(client: httpx.AsyncClient, session: AsyncSession) -> None:
    email = unique_email()
    response = await client.post(
        f"{API}/auth/register", json={"email": email, "password": PASSWORD, "full_name": "Kemi"}
    )
    assert response.status_code == 202
    assert await session.scalar(select(User.role).where(User.email == email)) == "client"


async def test_register_answers_the_same_for_an_existing_email_and_mails_its_owner(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session)
    fresh = await client.post(
        f"{API}/auth/register", json={"email": unique_email(), "password": PASSWORD, "full_name": "X"}
    )
    taken = await client.post(
        f"{API}/auth/register", json={"email": user.email.upper(), "password": PASSWORD, "full_name": "X"}
    )
    assert (taken.status_code, taken.json()) == (fresh.status_code, fresh.json())
    assert taken.status_code == 202
    jobs = list(
        await session.scalars(select(OutboxMessage).where(OutboxMessage.args[0].astext == user.email))
    )
    assert [(job.task_name, job.args) for job in jobs] == [
        ("emails.identity.send_account_exists", [user.email])
    ]
    assert await session.scalar(select(func.count()).select_from(User).where(User.email == user.email)) == 1


async def test_register_notices_to_an_existing_owner_are_capped_silently(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session)
    body = {"email": user.email, "password": PASSWORD, "full_name": "X"}
    for _ in range(settings.otp_max_sends_per_email + 2):
        assert (await client.post(f"{API}/auth/register", json=body)).status_code == 202
    notices = await session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.task_name == "emails.identity.send_account_exists")
        .where(OutboxMessage.args[0].astext == user.email)
    )
    assert notices == settings.otp_max_sends_per_email


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"password": "short-1"}, "password"),
        ({"password": "password123"}, "password"),
        ({"password": "qwertyuiop"}, "password"),
        ({"email": "not-an-email"}, "email"),
        ({"role": "staff"}, "role"),
        ({"full_name": "   "}, "full_name"),
    ],
)
async def test_register_rejects_bad_fields_with_422(
    client: httpx.AsyncClient, payload: dict[str, str], field: str
) -> None:
    body = {"email": unique_email(), "password": PASSWORD, "full_name": "Ada", **payload}
    errors = problem(await client.post(f"{API}/auth/register", json=body), 422)["errors"]
    assert [e["field"] for e in errors] == [field], errors


async def test_register_password_containing_the_email_is_weak(client: httpx.AsyncClient) -> None:
    email = unique_email("chiamaka")
    local = email.split("@")[0]
    body = {"email": email, "password": f"{local}1", "full_name": "Chiamaka"}
    assert (
        problem(await client.post(f"{API}/auth/register", json=body), 422)["errors"][0]["field"] == "password"
    )


async def test_register_missing_fields_is_422(client: httpx.AsyncClient) -> None:
    errors = problem(await client.post(f"{API}/auth/register", json={"email": unique_email()}), 422)["errors"]
    assert errors
    assert {"password", "full_name"} & {e["field"] for e in errors}


# --- email verification ------------------------------------------------------------------


async def test_verify_with_the_emailed_code(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session, verified=False)
    code = await new_code(session, settings, user, "verify_email")
    response = await client.post(f"{API}/auth/otp/verify", json={"email": user.email, "code": code})
    assert response.status_code == 200, response.text
    assert response.json()["is_verified"] is True
    # A code works once.
    again = await client.post(f"{API}/auth/otp/verify", json={"email": user.email, "code": code})
    problem(again, 400)


async def test_wrong_code_is_400_and_five_wrong_tries_burn_the_code(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session, verified=False)
    code = await new_code(session, settings, user, "verify_email")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(settings.otp_max_attempts):
        body = problem(
            await client.post(f"{API}/auth/otp/verify", json={"email": user.email, "code": wrong}), 400
        )
        assert body["title"] == "Invalid code"
    burned = await client.post(f"{API}/auth/otp/verify", json={"email": user.email, "code": code})
    problem(burned, 400)
    row = await session.scalar(select(OneTimeCode).where(OneTimeCode.user_id == user.id))
    assert row is not None
    assert row.attempts == settings.otp_max_attempts
    assert row.invalidated_at is not None
    assert "one_time_code_burned" in await audit_types(session, user.id)


async def test_expired_code_is_rejected(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session, verified=False)
    code = await new_code(session, settings, user, "verify_email")
    await session.execute(
        update(OneTimeCode)
        .where(OneTimeCode.user_id == user.id)
        .values(expires_at=datetime.now(UTC) - timedelta(1))
    )
    await session.commit()
    problem(await client.post(f"{API}/auth/otp/verify", json={"email": user.email, "code": code}), 400)


async def test_a_new_code_invalidates_the_older_one(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session, verified=False)
    first = await new_code(session, settings, user, "verify_email")
    second = await new_code(session, settings, user, "verify_email")
    if first != second:
        problem(await client.post(f"{API}/auth/otp/verify", json={"email": user.email, "code": first}), 400)
    ok = await client.post(f"{API}/auth/otp/verify", json={"email": user.email, "code": second})
    assert ok.status_code == 200, ok.text


async def test_unknown_email_gets_the_same_answer_as_a_wrong_code(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session, verified=False)
    await new_code(session, settings, user, "verify_email")
    known = problem(
        await client.post(f"{API}/auth/otp/verify", json={"email": user.email, "code": "123456"}), 400
    )
    unknown = problem(
        await client.post(f"{API}/auth/otp/verify", json={"email": unique_email(), "code": "123456"}), 400
    )
    assert {k: v for k, v in known.items() if k != "request_id"} == {
        k: v for k, v in unknown.items() if k != "request_id"
    }


async def test_code_must_be_six_digits(client: httpx.AsyncClient) -> None:
    body = {"email": unique_email(), "code": "12ab56"}
    assert (
        problem(await client.post(f"{API}/auth/otp/verify", json=body), 422)["errors"][0]["field"] == "code"
    )


# --- resend and forgot: same answer for known and unknown emails --------------------------


@pytest.mark.parametrize("path", ["/auth/otp/resend", "/auth/password/forgot"])
async def test_resend_and_forgot_do_not_reveal_accounts(
    client: httpx.AsyncClient, session: AsyncSession, path: str
) -> None:
    user = await make_user(session, verified=False)
    known = await client.post(f"{API}{path}", json={"email": user.email})
    unknown = await client.post(f"{API}{path}", json={"email": unique_email()})
    assert known.status_code == unknown.status_code == 202
    assert known.content == unknown.content
    assert dict(known.headers).keys() == dict(unknown.headers).keys()
    # The same work on both paths: one queued mail job each; the worker decides who gets mail.
    jobs = await session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.task_name == "emails.identity.send_code")
    )
    assert jobs == 2


@pytest.mark.parametrize("path", ["/auth/otp/resend", "/auth/password/forgot"])
async def test_code_requests_are_rate_limited_per_address_and_email(
    client: httpx.AsyncClient, settings: Settings, path: str
) -> None:
    email = unique_email()
    for _ in range(settings.otp_max_sends_per_source_email):
        assert (await client.post(f"{API}{path}", json={"email": email})).status_code == 202
    limited = await client.post(f"{API}{path}", json={"email": email})
    problem(limited, 429)
    assert int(limited.headers["retry-after"]) > 0


# --- login ----------------------------------------------------------------------------------


async def test_login_returns_a_token_pair_with_the_claims(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session, role="vendor")
    tokens = await login(client, user.email.upper())
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == settings.access_token_ttl_seconds
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == "HS256"
    assert header["kid"]
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["sub"] == str(user.id)
    assert claims["role"] == "vendor"
    assert claims["iss"] == settings.jwt_issuer
    assert claims["aud"] == settings.jwt_audience
    assert claims["exp"] - claims["iat"] == settings.access_token_ttl_seconds
    assert claims["jti"]
    assert "login_succeeded" in await audit_types(session, user.id)


async def test_wrong_password_and_unknown_email_look_the_same(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session)
    wrong = problem(
        await client.post(f"{API}/auth/login", json={"email": user.email, "password": "nope-nope"}), 401
    )
    unknown = problem(
        await client.post(f"{API}/auth/login", json={"email": unique_email(), "password": "nope-nope"}), 401
    )
    assert wrong["detail"] == unknown["detail"]
    assert wrong["type"] == unknown["type"]
    assert "login_failed" in await audit_types(session, user.id)


async def test_unverified_user_gets_403_with_the_right_password_only(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session, verified=False)
    problem(
        await client.post(f"{API}/auth/login", json={"email": user.email, "password": "wrong-password"}), 401
    )
    body = problem(
        await client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD}), 403
    )
    assert body["title"] == "Email not verified"


async def test_an_address_that_keeps_failing_must_wait(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session)
    for _ in range(settings.login_free_failures_per_source):
        problem(
            await client.post(f"{API}/auth/login", json={"email": user.email, "password": "bad-guess-1"}), 401
        )
    waiting = await client.post(f"{API}/auth/login", json={"email": user.email, "password": "bad-guess-1"})
    assert problem(waiting, 429)["type"].endswith("login_throttled")
    assert 1 <= int(waiting.headers["retry-after"]) <= settings.login_backoff_base_seconds
    # The address waits whatever it sends: the right password is not even checked.
    problem(await client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD}), 429)
    assert "login_throttled" in await audit_types(session, user.id)


async def test_login_is_rate_limited_per_ip(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    for _ in range(settings.login_max_attempts_per_ip):
        await client.post(f"{API}/auth/login", json={"email": unique_email(), "password": "whatever-1"})
    problem(await client.post(f"{API}/auth/login", json={"email": unique_email(), "password": "x"}), 429)


async def test_a_successful_login_clears_earlier_failures(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session)
    for _ in range(settings.login_free_failures_per_source - 1):
        problem(
            await client.post(f"{API}/auth/login", json={"email": user.email, "password": "bad-guess-2"}), 401
        )
    await login(client, user.email)
    for _ in range(settings.login_free_failures_per_source - 1):
        problem(
            await client.post(f"{API}/auth/login", json={"email": user.email, "password": "bad-guess-2"}), 401
        )
    await login(client, user.email)


# --- refresh, logout, sessions -------------------------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session)
    first = await login(client, user.email)
    second = (await client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})).json()
    assert second["refresh_token"] != first["refresh_token"]
    third = await client.post(f"{API}/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert third.status_code == 200
    newest = third.json()["refresh_token"]

    # The first token, already rotated, comes back: theft is assumed, the family ends.
    reused = await client.post(f"{API}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    problem(reused, 401)
    problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": newest}), 401)
    assert "refresh_token_reused" in await audit_types(session, user.id)
    # The access token from the pair still works until it expires (stateless, 15 minutes).
    assert (await client.get(f"{API}/me", headers=bearer(third.json()))).status_code == 200


async def test_refresh_rejects_unknown_expired_and_malformed_tokens(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": "x" * 43}), 401)
    problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": "short"}), 422)
    problem(await client.post(f"{API}/auth/refresh", json={}), 422)
    user = await make_user(session)
    tokens = await login(client, user.email)
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == hash_refresh_token(tokens["refresh_token"]))
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    await session.commit()
    problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)


async def test_logout_ends_the_session_and_is_idempotent(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session)
    tokens = await login(client, user.email)
    assert (
        await client.post(f"{API}/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 204
    problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)
    again = await client.post(f"{API}/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert again.status_code == 204
    assert (await client.post(f"{API}/auth/logout", json={"refresh_token": "y" * 43})).status_code == 204


async def test_sessions_are_listed_and_only_your_own_can_be_ended(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    ada, bola = await make_user(session), await make_user(session)
    ada_phone = await login(client, ada.email)
    ada_laptop = await login(client, ada.email)
    bola_tokens = await login(client, bola.email)

    listed = (await client.get(f"{API}/me/sessions", headers=bearer(ada_laptop))).json()["items"]
    assert len(listed) == 2
    bola_session = (await client.get(f"{API}/me/sessions", headers=bearer(bola_tokens))).json()["items"][0]

    # Ada cannot end (or learn of) Bola's session: 404, not 403.
    problem(await client.delete(f"{API}/me/sessions/{bola_session['id']}", headers=bearer(ada_laptop)), 404)
    assert (
        await client.post(f"{API}/auth/refresh", json={"refresh_token": bola_tokens["refresh_token"]})
    ).status_code == 200

    laptop_family = await session.scalar(
        select(RefreshToken.family_id).where(
            RefreshToken.token_hash == hash_refresh_token(ada_laptop["refresh_token"])
        )
    )
    phone_family = next(s["id"] for s in listed if s["id"] != str(laptop_family))
    assert (
        await client.delete(f"{API}/me/sessions/{phone_family}", headers=bearer(ada_laptop))
    ).status_code == 204
    problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": ada_phone["refresh_token"]}), 401)
    assert len((await client.get(f"{API}/me/sessions", headers=bearer(ada_laptop))).json()["items"]) == 1


# --- password reset -----------------------------------------------------------------------


async def test_password_reset_sets_the_password_and_ends_every_session(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session)
    tokens = await login(client, user.email)
    code = await new_code(session, settings, user, "reset_password")
    new_password = "Ankara-Print-Dress-77"

    weak = await client.post(
        f"{API}/auth/password/reset", json={"email": user.email, "code": code, "new_password": "password1234"}
    )
    assert problem(weak, 422)["errors"][0]["field"] == "new_password"
    # The weak attempt did not use up the code.
    done = await client.post(
        f"{API}/auth/password/reset", json={"email": user.email, "code": code, "new_password": new_password}
    )
    assert done.status_code == 204, done.text
    problem(await client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)
    problem(await client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD}), 401)
    await login(client, user.email, new_password)
    assert "password_reset" in await audit_types(session, user.id)


async def test_password_reset_with_a_wrong_code_is_400(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    user = await make_user(session)
    body = {"email": user.email, "code": "999999", "new_password": "Ankara-Print-Dress-77"}
    problem(await client.post(f"{API}/auth/password/reset", json=body), 400)
    await login(client, user.email)  # unchanged


# --- /me --------------------------------------------------------------------------------------


async def test_me_needs_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/me")
    problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_me_reads_and_updates_the_profile(client: httpx.AsyncClient, session: AsyncSession) -> None:
    user = await make_user(session)
    auth = bearer(await login(client, user.email))
    me = (await client.get(f"{API}/me", headers=auth)).json()
    assert me["id"] == str(user.id)
    assert me["email"] == user.email

    updated = await client.patch(
        f"{API}/me", headers=auth, json={"full_name": " Adaeze Obi ", "phone": "+234 803 555 0101"}
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["full_name"] == "Adaeze Obi"
    assert updated.json()["phone"] == "+234 803 555 0101"
    cleared = await client.patch(f"{API}/me", headers=auth, json={"phone": None})
    assert cleared.json()["phone"] is None
    assert cleared.json()["full_name"] == "Adaeze Obi"

    problem(await client.patch(f"{API}/me", headers=auth, json={"phone": "call me"}), 422)
    problem(await client.patch(f"{API}/me", headers=auth, json={"full_name": ""}), 422)
    problem(await client.patch(f"{API}/me", headers=auth, json={"email": "new@example.com"}), 422)


# --- tokens under attack -------------------------------------------------------------------


def _forge(settings: Settings, user: User, *, key: str | None = None, **overrides: Any) -> str:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "sub": str(user.id),
        "role": user.role,
        "jti": "forged",
        "iat": now,
        "exp": now + 600,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    claims.update(overrides)
    kid, secret = settings.jwt_keys()[0]
    return jwt.encode(claims, key or secret, algorithm="HS256", headers={"kid": kid})


async def test_tokens_that_must_be_refused(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session)
    assert (await client.get(f"{API}/me", headers=bearer(_forge(settings, user)))).status_code == 200

    now = int(datetime.now(UTC).timestamp())
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT","kid":"k0"}').decode()
    payload = jwt.utils.base64url_encode(
        f'{{"sub":"{user.id}","role":"staff","jti":"x","iat":{now},"exp":{now + 600},'
        f'"iss":"{settings.jwt_issuer}","aud":"{settings.jwt_audience}"}}'.encode()
    ).decode()
    refused = {
        "other key": _forge(settings, user, key="an-attacker-key-that-is-long-enough-000"),
        "alg none": f"{header}.{payload}.",
        "expired": _forge(settings, user, iat=now - 3600, exp=now - 1800),
        "wrong audience": _forge(settings, user, aud="someone-else"),
        "wrong issuer": _forge(settings, user, iss="evil"),
        "no role": _forge(settings, user, role=None),
        "garbage": "not.a.jwt",
    }
    for name, token in refused.items():
        response = await client.get(f"{API}/me", headers=bearer(token))
        assert response.status_code == 401, name
    problem(await client.get(f"{API}/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401)


async def test_rotated_keys_keep_old_tokens_valid(
    make_app: Any, session: AsyncSession, settings: Settings, redis: Redis
) -> None:
    import msgspec

    from tests.support.http import serve

    user = await make_user(session)
    old_key = settings.jwt_keys()[0]
    rotated = msgspec.structs.replace(
        settings,
        jwt_signing_keys=type(settings.secret_key)(
            f"k9=a-brand-new-signing-key-0123456789abc,{old_key[0]}={old_key[1]}"
        ),
    )
    old_token = _forge(settings, user)
    async with serve(make_app(settings=rotated)) as client:
        assert (await client.get(f"{API}/me", headers=bearer(old_token))).status_code == 200
        fresh = await login(client, user.email)
        assert jwt.get_unverified_header(fresh["access_token"])["kid"] == "k9"
    async with serve(make_app(settings=settings)) as client:  # a process that does not know k9 yet
        assert (await client.get(f"{API}/me", headers=bearer(fresh))).status_code == 401
    await clear_rate_limits(redis)


# --- roles and staff ----------------------------------------------------------------------


async def test_staff_endpoints_need_the_staff_role(client: httpx.AsyncClient, session: AsyncSession) -> None:
    problem(await client.get(f"{API}/staff/users"), 401)
    for role in ("client", "vendor"):
        user = await make_user(session, role=role)
        problem(await client.get(f"{API}/staff/users", headers=bearer(await login(client, user.email))), 403)
    staff = await make_user(session, role="staff")
    assert (
        await client.get(f"{API}/staff/users", headers=bearer(await login(client, staff.email)))
    ).status_code == 200


async def test_staff_change_a_role_which_ends_the_users_sessions(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    staff = await make_user(session, role="staff")
    shopper = await make_user(session)
    shopper_tokens = await login(client, shopper.email)
    staff_auth = bearer(await login(client, staff.email))

    response = await client.patch(
        f"{API}/staff/users/{shopper.id}/role", headers=staff_auth, json={"role": "vendor"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "vendor"
    problem(
        await client.post(f"{API}/auth/refresh", json={"refresh_token": shopper_tokens["refresh_token"]}), 401
    )
    relogged = await login(client, shopper.email)
    assert jwt.decode(relogged["access_token"], options={"verify_signature": False})["role"] == "vendor"

    events = (
        await client.get(f"{API}/staff/audit-events", headers=staff_auth, params={"user_id": str(shopper.id)})
    ).json()
    change = next(e for e in events["items"] if e["event_type"] == "role_changed")
    assert change["actor_id"] == str(staff.id)
    assert change["details"] == {"old": "client", "new": "vendor"}
    assert change["request_id"]
    assert change["ip"]

    problem(
        await client.patch(
            f"{API}/staff/users/{shopper.id}/role", headers=staff_auth, json={"role": "admin"}
        ),
        422,
    )
    missing = "0195f000-0000-7000-8000-000000000000"
    problem(
        await client.patch(f"{API}/staff/users/{missing}/role", headers=staff_auth, json={"role": "client"}),
        404,
    )


async def test_staff_lists_are_keyset_paginated(client: httpx.AsyncClient, session: AsyncSession) -> None:
    staff = await make_user(session, role="staff")
    for _ in range(5):
        await make_user(session, role="vendor")
    auth = bearer(await login(client, staff.email))
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"role": "vendor", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"{API}/staff/users", headers=auth, params=params)).json()
        seen += [u["id"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    vendors = await session.scalar(select(func.count()).select_from(User).where(User.role == "vendor"))
    assert len(seen) == len(set(seen)) == vendors
    assert seen == sorted(seen, reverse=True)  # newest first (UUIDv7 order)

    problem(await client.get(f"{API}/staff/users", headers=auth, params={"cursor": "!!bogus"}), 422)
    problem(await client.get(f"{API}/staff/users", headers=auth, params={"limit": 0}), 422)
    problem(await client.get(f"{API}/staff/users", headers=auth, params={"limit": 101}), 422)
