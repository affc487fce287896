"""Identity mail: verification and password-reset codes (queue ``emails``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from taskiq import Context, TaskiqDepends

from core.adapters.mail import compose
from core.logging import get_logger
from db.models.one_time_code import CodePurpose
from db.services.identity.codes import issue_code
from db.services.identity.users import UserService
from tasks.runtime.broker import queue_task
from tasks.runtime.resources import Resources

log = get_logger(__name__)

_TEMPLATES: dict[str, str] = {"verify_email": "verify_email", "reset_password": "reset_password"}


@queue_task("emails", "identity.send_code")
async def send_code(
    email: str, purpose: CodePurpose, resources: Resources, context: Annotated[Context, TaskiqDepends()]
) -> str:
    """Email a one-time code for ``purpose`` if the address has an account that needs one.

    Idempotent: the code is derived from the job id and its row records when it was sent, so a
    redelivered job neither makes a second code nor sends the first one twice (unless the
    worker died between handing the mail over and committing).
    """
    job_id = UUID(context.message.labels.get("job_id") or context.message.task_id)
    settings = resources.settings
    async with resources.uow() as session:
        user = await UserService(session=session).by_email(email)
        if user is None:
            return "no_account"
        if purpose == "verify_email" and user.is_verified:
            return "already_verified"
        code, row = await issue_code(session, settings, user, purpose, job_id)
        if row.sent_at is not None:
            return "already_sent"
        message = compose(
            sender=settings.mail_from,
            to=user.email,
            template=_TEMPLATES[purpose],
            message_key=f"{purpose}-{job_id}",
            name=user.full_name,
            code=code,
            minutes=str(settings.otp_ttl_seconds // 60),
        )
        await resources.mailer.send(message)
        row.sent_at = datetime.now(UTC)
    log.info("code sent", purpose=purpose, user_id=str(user.id))
    return "sent"


@queue_task("emails", "identity.send_account_exists")
async def send_account_exists(
    email: str, resources: Resources, context: Annotated[Context, TaskiqDepends()]
) -> str:
    """Tell the owner of ``email`` that someone tried to register with it (registration answers
    the same for new and existing emails, so the owner learns it here, not the caller).

    A redelivered job composes the same message id, which the file mailer writes to the same file.
    """
    job_id = context.message.labels.get("job_id") or context.message.task_id
    settings = resources.settings
    async with resources.uow() as session:
        user = await UserService(session=session).by_email(email)
        if user is None:
            return "no_account"
        message = compose(
            sender=settings.mail_from,
            to=user.email,
            template="account_exists",
            message_key=f"account-exists-{job_id}",
            name=user.full_name,
        )
    await resources.mailer.send(message)
    log.info("account-exists notice sent", user_id=str(user.id))
    return "sent"
