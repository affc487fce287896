"""Outgoing mail: compose from templates (plain text + HTML), deliver through a backend.

Backends: ``file`` writes RFC 5322 ``.eml`` files into ``MAIL_DIR`` (dev and tests), ``smtp``
delivers through an SMTP server with aiosmtplib (production). A message id derived from the
job that sends it makes redelivered jobs overwrite the same file rather than add another.
"""

from __future__ import annotations

import html
import os
import tempfile
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from string import Template
from typing import Protocol

import aiosmtplib
import anyio

from core.settings import Settings

TEMPLATES = Path(__file__).parent / "mail_templates"


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


def render(template: str, **values: str) -> tuple[str, str, str]:
    """(subject, text, html) of ``template`` with ``values`` (escaped in the HTML part).

    Raises:
        KeyError: a placeholder of the template has no value.
    """
    text_source = (TEMPLATES / f"{template}.txt").read_text(encoding="utf-8")
    subject_line, _, text_body = text_source.partition("\n\n")
    subject = Template(subject_line.removeprefix("Subject: ")).substitute(values)
    text = Template(text_body).substitute(values)
    escaped = {k: html.escape(v) for k, v in values.items()}
    html_body = Template((TEMPLATES / f"{template}.html").read_text(encoding="utf-8")).substitute(escaped)
    return subject, text, html_body


def compose(*, sender: str, to: str, template: str, message_key: str, **values: str) -> EmailMessage:
    subject, text, html_body = render(template, **values)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(usegmt=True)
    # Derived from the key alone: a job that sends the same message again (a redelivery) makes
    # the same Message-ID, which the file mailer turns into the same file and mail clients
    # recognise as the same message.
    safe_key = "".join(c if c.isalnum() or c in "-._" else "_" for c in message_key)
    message["Message-ID"] = f"<{safe_key}@fashionistar.dev>"
    message.set_content(text)
    message.add_alternative(html_body, subtype="html")
    return message


class FileMailer:
    """Writes each message to ``<dir>/<message-key>.eml`` (atomically)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def send(self, message: EmailMessage) -> None:
        await anyio.to_thread.run_sync(self._write, message)

    def _write(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        key = str(message["Message-ID"]).strip("<>").split("@", 1)[0]
        safe = "".join(c if c.isalnum() or c in "-._" else "_" for c in key)
        fd, tmp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(message.as_bytes())
        Path(tmp).replace(self.directory / f"{safe}.eml")


class SmtpMailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        s = self.settings
        await aiosmtplib.send(
            message,
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.reveal() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout_seconds,
        )


def build_mailer(settings: Settings) -> Mailer:
    if settings.mail_backend == "smtp":
        return SmtpMailer(settings)
    return FileMailer(settings.mail_dir)
