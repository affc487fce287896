"""Function-level authorisation, enumerated from the app's own routes.

Every route must have a rule in ``tests/support/access.py``; then every route is called without
a token and with a client's, a vendor's and a staff member's token, and must answer as its rule
says: 401 without a token where a login is needed, 403 for the wrong role, and neither where
the caller is allowed (whatever else the placeholder ids and missing bodies lead to). Every one of
those responses, errors included, carries the security headers and a request id.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import httpx
import pytest
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from core.settings import Settings
from tests.support.access import POLICY, Rule, ServedRoute, concrete_path, served_routes
from tests.support.catalog import make_store
from tests.support.http import problem
from tests.support.identity import bearer, login, make_user

pytestmark = pytest.mark.anyio

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}
ROLES = ("client", "vendor", "staff")


def test_every_route_has_an_access_rule(settings: Settings) -> None:
    assert settings.payment_provider == "sandbox"  # so the sandbox route is served and checked too
    served = {route.key for route in served_routes(create_app(settings))}
    assert served - POLICY.keys() == set(), "routes without an access rule in tests/support/access.py"
    assert POLICY.keys() - served == set(), "rules for routes the app does not serve"


def test_every_route_with_an_id_says_how_its_objects_are_scoped(settings: Settings) -> None:
    for route in served_routes(create_app(settings)):
        rule = POLICY[route.key]
        has_id = "{" in route.path
        assert (rule.objects is not None) == has_id, f"{route.key}: objects={rule.objects!r}"


def test_every_guard_is_a_coroutine(settings: Settings) -> None:
    """Litestar runs a plain function guard in a worker thread: a hand-off per request."""
    for route in served_routes(create_app(settings)):
        for guard in route.handler.resolve_guards():
            assert inspect.iscoroutinefunction(getattr(guard, "func", guard)), (route.key, guard)


def test_guards_match_the_rules(settings: Settings) -> None:
    """The declared roles are the ones the guards ask for (a cheap check before the probes)."""
    for route in served_routes(create_app(settings)):
        rule = POLICY[route.key]
        guards = [getattr(guard, "func", guard) for guard in route.handler.resolve_guards()]
        names = {getattr(guard, "__qualname__", "") for guard in guards}
        needs_login = "requires_user" in names or any(n.startswith("requires_role") for n in names)
        if rule.access in ("public", "signed"):
            assert not needs_login, route.key
        else:
            assert needs_login, f"{route.key} is {rule.access} but has no login guard"


async def _identities(client: httpx.AsyncClient, session: AsyncSession) -> dict[str, dict[str, str]]:
    identities: dict[str, dict[str, str]] = {"anonymous": {}}
    for role in ROLES:
        user = await make_user(session, role=role)
        if role == "vendor":
            await make_store(session, user)
        identities[role] = bearer(await login(client, user.email))
    return identities


def _allowed(rule: Rule, who: str) -> bool:
    if rule.access == "public":
        return True
    if rule.access == "user":
        return who != "anonymous"
    return who == rule.access


def _check_headers(route: ServedRoute, response: httpx.Response) -> None:
    where = f"{route.method} {route.path} -> {response.status_code}"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, f"{where}: {name}"
    assert response.headers.get("strict-transport-security", "").startswith("max-age="), where
    assert response.headers.get("content-security-policy", "").startswith("default-src 'none'"), where
    assert response.headers.get("x-request-id"), where
    # The docs UI answers unknown pages under /schema with Litestar's own HTML page.
    if response.status_code >= 400 and route.method != "HEAD" and not route.path.startswith("/schema"):
        assert response.headers["content-type"].startswith("application/problem+json"), where


async def test_every_route_answers_each_role_as_its_rule_says(
    client: httpx.AsyncClient, session: AsyncSession, make_app: Callable[..., Litestar]
) -> None:
    identities = await _identities(client, session)
    wrong: list[str] = []
    for route in served_routes(make_app()):
        rule = POLICY[route.key]
        path = concrete_path(route.path)
        for who, headers in identities.items():
            response = await client.request(route.method, path, headers=headers, json=rule.probe_body)
            _check_headers(route, response)
            status = response.status_code
            if rule.access == "signed":
                expected_ok = status == 401  # no signature, whoever calls
            elif _allowed(rule, who):
                expected_ok = status not in (401, 403)
            elif who == "anonymous":
                expected_ok = (
                    status == 401 and "bearer" in response.headers.get("www-authenticate", "").lower()
                )
            else:
                expected_ok = status == 403
            if not expected_ok:
                wrong.append(f"{route.method} {route.path} as {who}: {status} {response.text[:200]}")
    assert wrong == [], "\n".join(wrong)


async def test_a_bad_token_is_401_on_every_route(
    client: httpx.AsyncClient, make_app: Callable[..., Litestar]
) -> None:
    """A malformed or forged token is refused even where none is needed, so a client never mistakes
    a broken session for an anonymous one."""
    wrong = []
    for route in served_routes(make_app()):
        if not route.path.startswith("/api/"):
            continue
        for header in ("Bearer not-a-token", "Basic dXNlcjpwYXNz"):
            response = await client.request(
                route.method, concrete_path(route.path), headers={"Authorization": header}
            )
            _check_headers(route, response)
            if response.status_code != 401:
                wrong.append(f"{route.method} {route.path} with {header!r}: {response.status_code}")
    assert wrong == [], "\n".join(wrong)


# Power taken away (old role, staff route, body): the holder's old token must open nothing.
TAKEN_AWAY = [
    ("vendor", "users/{user}/role", {"role": "client"}),
    ("staff", "users/{user}/role", {"role": "client"}),
    ("vendor", "users/{user}/status", {"status": "suspended"}),
    ("staff", "users/{user}/status", {"status": "suspended"}),
    ("client", "users/{user}/status", {"status": "suspended"}),
    ("vendor", "vendors/{store}/status", {"status": "suspended"}),
]


@pytest.mark.parametrize(("role", "change", "body"), TAKEN_AWAY)
async def test_after_power_is_taken_away_every_route_of_the_old_role_refuses_the_old_token(
    client: httpx.AsyncClient,
    session: AsyncSession,
    make_app: Callable[..., Litestar],
    role: str,
    change: str,
    body: dict[str, str],
) -> None:
    """Demoted, suspended, or their store suspended: from the next request on, every route their
    old role or any user could call answers 401 to the token they held (nothing waits for it to
    expire)."""
    holder = await make_user(session, role=role)
    store = await make_store(session, holder) if role == "vendor" else None
    old = bearer(await login(client, holder.email))
    staff = bearer(await login(client, (await make_user(session, role="staff")).email))
    path = change.format(user=holder.id, store=store.id if store else "")
    done = await client.patch(f"/api/v1/staff/{path}", json=body, headers=staff)
    assert done.status_code == 200, done.text

    # Probed at once: "within a second" holds because nothing waits at all (test_revocation
    # covers another process and a lost announcement).
    probed, wrong = 0, []
    for route in served_routes(make_app()):
        rule = POLICY[route.key]
        if rule.access not in (role, "user"):
            continue
        response = await client.request(
            route.method, concrete_path(route.path), headers=old, json=rule.probe_body
        )
        probed += 1
        _check_headers(route, response)
        if response.status_code != 401:
            wrong.append(f"{route.method} {route.path}: {response.status_code} {response.text[:200]}")
    assert probed > 10
    assert wrong == [], "\n".join(wrong)
    problem(await client.get("/api/v1/me", headers=old), 401)
