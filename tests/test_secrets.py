"""No published secret signs anything: not a token, not a webhook, on any instance.

Every string the repository publishes where a secret could come from (the literals of
``core/settings.py``, ``.env.example``, the k8s secret template, and the defaults earlier
versions shipped) is tried as a signing key against an app built with the run's generated
secrets; all are refused. A local data directory gets secrets of its own from ``up``.
"""

from __future__ import annotations

import ast
import json
import re
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from core.adapters.payments import sign
from core.settings import SECRETS_FILE, Settings, SettingsError, load_settings
from devstack.secrets import GENERATED, ensure_secrets
from tests.support.identity import bearer, make_user
from tests.support.stack import ROOT

API = "/api/v1"

# Defaults of earlier versions: published for good in the history.
FORMER_DEFAULTS = (
    "dev-only-secret-key-change-me-0123456789abcdef",
    "dev-only-paystack-sandbox-secret-0123456789",
)


def published_strings() -> set[str]:
    tree = ast.parse((ROOT / "core" / "settings.py").read_text())
    found = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if "=" in line:
            value = line.lstrip("# ").split("=", 1)[1].strip()
            # A key list (kid=secret,kid2=secret2) publishes each of its secrets too.
            found |= {value, *(part.split("=", 1)[-1] for part in value.split(","))}
    template = (ROOT / "k8s" / "secret.template.yaml").read_text()
    found |= set(re.findall(r':\s*"([^"]*)"', template))
    return {s for s in found | set(FORMER_DEFAULTS) if s.strip()}


def forged(settings: Settings, user_id: str, key: str, kid: str) -> str:
    now = int(datetime.now(UTC).timestamp())
    claims = {
        "sub": user_id,
        "role": "staff",
        "jti": "forged",
        "iat": now,
        "exp": now + 600,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid})


@pytest.mark.anyio
async def test_a_token_or_webhook_signed_with_any_published_string_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, settings: Settings
) -> None:
    staff = await make_user(session, role="staff")
    kid, real_key = settings.jwt_keys()[0]
    # The forging is right: the instance's own key gets in.
    genuine = forged(settings, str(staff.id), real_key, kid)
    assert (await client.get(f"{API}/staff/users", headers=bearer(genuine))).status_code == 200

    candidates = published_strings()
    assert len(candidates) > 50  # the scan found the literals
    assert set(FORMER_DEFAULTS) <= candidates
    let_in = []
    body = json.dumps({"event": "charge.success", "data": {"reference": "forged", "amount": 1}}).encode()
    for candidate in sorted(candidates):
        for key_id in {kid, "k0"}:
            token = forged(settings, str(staff.id), candidate, key_id)
            answer = await client.get(f"{API}/staff/users", headers=bearer(token))
            if answer.status_code != 401:
                let_in.append(("token", candidate, answer.status_code))
        hook = await client.post(
            f"{API}/webhooks/paystack",
            content=body,
            headers={"x-paystack-signature": sign(body, candidate), "content-type": "application/json"},
        )
        if hook.status_code != 401:
            let_in.append(("webhook", candidate, hook.status_code))
    assert let_in == []


def test_unset_secrets_are_random_to_each_process_not_a_written_default() -> None:
    first = load_settings({"APP_ENV": "dev"}, dotenv=None)
    second = load_settings({"APP_ENV": "dev"}, dotenv=None)
    assert first.secret_key != second.secret_key
    assert first.paystack_secret_key != second.paystack_secret_key
    assert len(first.secret_key.reveal()) >= 32


@pytest.mark.parametrize("variable", ["SECRET_KEY", "PAYSTACK_SECRET_KEY", "JWT_SIGNING_KEYS"])
@pytest.mark.parametrize("environment", ["dev", "test", "production"])
def test_published_placeholders_are_refused_everywhere(variable: str, environment: str) -> None:
    value = {"JWT_SIGNING_KEYS": f"k1={FORMER_DEFAULTS[0]}"}.get(variable, FORMER_DEFAULTS[0])
    env = {
        "APP_ENV": environment,
        "DATABASE_URL": "postgresql://db/app",
        "REDIS_URL": "redis://cache:6379/0",
        "SECRET_KEY": "a-real-secret-from-the-vault-0123456789",
        "PAYSTACK_SECRET_KEY": "sk_live_from_the_vault_0123456789",
        variable: value,
    }
    with pytest.raises(SettingsError, match=variable):
        load_settings(env, dotenv=None)
    for placeholder in ("change-me", "REPLACE-with-64-hex-characters"):
        with pytest.raises(SettingsError, match="SECRET_KEY"):
            load_settings({"APP_ENV": environment, "SECRET_KEY": placeholder}, dotenv=None)


def test_up_generates_secrets_for_a_new_data_directory_and_keeps_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    path = ensure_secrets(data_dir)
    assert path == data_dir / SECRETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = path.read_text()
    values = dict(line.split("=", 1) for line in written.splitlines() if not line.startswith("#"))
    assert set(values) == set(GENERATED)
    assert all(len(value) >= 60 for value in values.values())
    assert ensure_secrets(data_dir).read_text() == written  # never replaced
    assert ensure_secrets(tmp_path / "other").read_text() != written  # each directory its own

    # Every process on the data directory reads them (a variable that is set still wins).
    for name in ("SECRET_KEY", "PAYSTACK_SECRET_KEY", "JWT_SIGNING_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APP_ENV", "dev")
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    loaded = load_settings(dotenv=tmp_path / "no.env")
    assert loaded.secret_key.reveal() == values["SECRET_KEY"]
    assert loaded.paystack_secret_key.reveal() == values["PAYSTACK_SECRET_KEY"]
    monkeypatch.setenv("SECRET_KEY", "an-operator-chosen-secret-0123456789abcdef")
    assert load_settings(dotenv=tmp_path / "no.env").secret_key.reveal().startswith("an-operator")


def test_the_data_directory_secrets_are_never_committed() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".data/secrets.env"], cwd=ROOT, check=False)
    assert ignored.returncode == 0
