"""Identity across processes: mail from the real worker, concurrent refreshes, SMTP delivery."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from aiosmtpd.controller import Controller
from redis.asyncio import Redis
from sqlalchemy import func, select

from core.adapters.mail import SmtpMailer, compose
from core.jobs import Job
from core.settings import Settings
from db.engine import Database
from db.models import OneTimeCode
from devstack.services import free_port
from tasks.runtime.dispatch import BrokerDispatcher
from tests.support.identity import PASSWORD, make_user, unique_email
from tests.support.stack import WorkerProcess
from tests.test_tasks_e2e import eventually

pytestmark = [pytest.mark.anyio, pytest.mark.worker]

API = "/api/v1"


def mail_to(mail_dir: Path, address: str, subject_part: str) -> list[EmailMessage]:
    found = []
    for path in mail_dir.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address and subject_part in str(message["Subject"]):
            found.append(message)
    return found


async def wait_for_mail(mail_dir: Path, address: str, subject_part: str) -> EmailMessage:
    async def check() -> EmailMessage | None:
        found = mail_to(mail_dir, address, subject_part)
        return found[0] if found else None

    message: EmailMessage = await eventually(check, within=30, step=0.1)
    return message


def code_in(message: EmailMessage) -> str:
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    html = message.get_body(preferencelist=("html",))
    assert html is not None, "the mail has an HTML part too"
    found = re.search(r"\b(\d{6})\b", text.get_content())
    assert found, text.get_content()
    return found.group(1)


async def test_registration_code_arrives_by_mail_from_the_worker(
    worker: WorkerProcess, live_client: httpx.AsyncClient, settings: Settings
) -> None:
    address = unique_email("newcomer")
    registered = await live_client.post(
        f"{API}/auth/register", json={"email": address, "password": PASSWORD, "full_name": "Nneka Eze"}
    )
    assert registered.status_code == 202, registered.text
    message = await wait_for_mail(settings.mail_dir, address, "verification code")
    assert "Nneka Eze" in message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]

    verified = await live_client.post(
        f"{API}/auth/otp/verify", json={"email": address, "code": code_in(message)}
    )
    assert verified.status_code == 200, verified.text
    assert (
        await live_client.post(f"{API}/auth/login", json={"email": address, "password": PASSWORD})
    ).status_code == 200


async def test_registering_a_taken_address_mails_its_owner_not_a_code(
    worker: WorkerProcess, live_client: httpx.AsyncClient, committed_db: Database, settings: Settings
) -> None:
    async with committed_db.session_maker() as session:
        user = await make_user(session)
    again = await live_client.post(
        f"{API}/auth/register", json={"email": user.email, "password": PASSWORD, "full_name": "Intruder"}
    )
    assert again.status_code == 202, again.text
    message = await wait_for_mail(settings.mail_dir, user.email, "tried to register")
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "sign in" in text
    assert "reset your password" in text
    assert re.search(r"\b\d{6}\b", text) is None
    assert mail_to(settings.mail_dir, user.email, "verification code") == []


async def test_password_reset_mail_is_produced_by_the_worker_and_its_code_works(
    worker: WorkerProcess, live_client: httpx.AsyncClient, committed_db: Database, settings: Settings
) -> None:
    async with committed_db.session_maker() as session:
        user = await make_user(session)
    forgot = await live_client.post(f"{API}/auth/password/forgot", json={"email": user.email})
    assert forgot.status_code == 202

    message = await wait_for_mail(settings.mail_dir, user.email, "password reset")
    new_password = "Kente-Weave-Blue-2026"
    reset = await live_client.post(
        f"{API}/auth/password/reset",
        json={"email": user.email, "code": code_in(message), "new_password": new_password},
    )
    assert reset.status_code == 204, reset.text
    login = await live_client.post(f"{API}/auth/login", json={"email": user.email, "password": new_password})
    assert login.status_code == 200


async def test_no_mail_for_an_unknown_address(
    worker: WorkerProcess, live_client: httpx.AsyncClient, settings: Settings, redis: Redis
) -> None:
    address = unique_email("ghost")
    assert (await live_client.post(f"{API}/auth/password/forgot", json={"email": address})).status_code == 202
    # A later mail on the same queue has been written, so the ghost's job has run by then.
    with anyio.fail_after(30):
        known = unique_email("known")
        await live_client.post(
            f"{API}/auth/register", json={"email": known, "password": PASSWORD, "full_name": "K"}
        )
        await wait_for_mail(settings.mail_dir, known, "verification code")
    assert mail_to(settings.mail_dir, address, "") == []


async def test_a_redelivered_mail_job_sends_one_code_once(
    worker: WorkerProcess, committed_db: Database, dispatcher: BrokerDispatcher, settings: Settings
) -> None:
    async with committed_db.session_maker() as session:
        user = await make_user(session, verified=False)
    job = Job(task_name="emails.identity.send_code", args=(user.email, "verify_email"))
    await dispatcher.send(job)
    await dispatcher.send(job)  # the same job again, as after a worker crash

    def finished() -> int:
        return worker.log_text().count(f'"task_id":"{job.job_id}"')

    await eventually(lambda: _async(finished() >= 2), within=30)
    assert len(mail_to(settings.mail_dir, user.email, "verification code")) == 1
    async with committed_db.session_maker() as session:
        codes = await session.scalar(
            select(func.count()).select_from(OneTimeCode).where(OneTimeCode.user_id == user.id)
        )
    assert codes == 1


async def test_two_concurrent_refreshes_of_one_token_exactly_one_succeeds(
    live_client: httpx.AsyncClient, committed_db: Database
) -> None:
    async with committed_db.session_maker() as session:
        user = await make_user(session)
    tokens = (
        await live_client.post(f"{API}/auth/login", json={"email": user.email, "password": PASSWORD})
    ).json()
    body = {"refresh_token": tokens["refresh_token"]}
    first, second = await asyncio.gather(
        live_client.post(f"{API}/auth/refresh", json=body), live_client.post(f"{API}/auth/refresh", json=body)
    )
    assert sorted([first.status_code, second.status_code]) == [200, 401]


async def test_smtp_backend_delivers_text_and_html(settings: Settings) -> None:
    received: list[Any] = []

    class Collect:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd's hook name
            received.append(envelope)
            return "250 OK"

    port = free_port()
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        smtp = msgspec.structs.replace(
            settings, mail_backend="smtp", smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False
        )
        message = compose(
            sender=settings.mail_from,
            to="ada@example.com",
            template="reset_password",
            message_key="reset-test",
            name="Ada <script>",
            code="123456",
            minutes="10",
        )
        await SmtpMailer(smtp).send(message)
    finally:
        controller.stop()
    assert len(received) == 1
    assert received[0].rcpt_tos == ["ada@example.com"]
    delivered = email.message_from_bytes(received[0].content, policy=email.policy.default)
    assert "123456" in str(delivered["Subject"])
    html = delivered.get_body(preferencelist=("html",))
    assert html is not None
    assert "Ada &lt;script&gt;" in html.get_content()  # values are escaped in the HTML part


async def _async(value: Any) -> Any:
    return value
