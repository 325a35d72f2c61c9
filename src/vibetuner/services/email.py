"""Email delivery: message rendering from templates and three backends.

* ``console`` -- prints each message (development: the sign-in link shows in the terminal);
* ``file`` -- writes each message as an ``.eml`` file in ``EMAIL_FILE_DIR`` (tests, local tools);
* ``smtp`` -- sends through an SMTP server with aiosmtplib (STARTTLS, implicit TLS or
  plain, optional login, a timeout).

Every template is looked up in the app's template directories first, so an app
restyles an email by shipping ``email/<name>.html`` (and ``.txt``, ``.subject.txt``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

import jinja2

from vibetuner.config import Settings
from vibetuner.errors import ConfigurationError, EmailDeliveryError
from vibetuner.i18n import use_locale
from vibetuner.services.plugins import build_backend

if TYPE_CHECKING:
    from vibetuner.i18n import Catalogs

logger = logging.getLogger("vibetuner.email")


class EmailBackend(Protocol):
    """Something that delivers a complete message."""

    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` or raise :class:`EmailDeliveryError`."""
        ...


class ConsoleBackend:
    """Prints each message to a stream (standard output by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleBackend:
        """Printing to standard output."""
        return cls()

    async def send(self, message: EmailMessage) -> None:
        stream = self.stream or sys.stdout
        text = message.get_body(preferencelist=("plain",))
        body = text.get_content() if text is not None else ""
        stream.write(
            f"----- email to {message['To']} -----\nSubject: {message['Subject']}\n\n{body}\n"
            "----- end of email -----\n"
        )
        stream.flush()


class FileBackend:
    """Writes each message to ``directory`` as ``<time>-<id>.eml``.

    The file appears complete or not at all (written under a temporary name, then
    renamed), so a reader polling the directory never sees half a message.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @classmethod
    def from_settings(cls, settings: Settings) -> FileBackend:
        """Writing to ``EMAIL_FILE_DIR``."""
        return cls(settings.email_file_dir)

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._write, message.as_bytes())

    def _write(self, data: bytes) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            name = f"{formatdate_compact()}-{uuid.uuid4().hex[:12]}.eml"
            temporary = self.directory / f".{name}.tmp"
            temporary.write_bytes(data)
            os.replace(temporary, self.directory / name)
        except OSError as exc:
            raise EmailDeliveryError(
                f"cannot write the message to {self.directory}: {exc.strerror or exc}"
            ) from None


def formatdate_compact() -> str:
    """A sortable UTC timestamp with microseconds, for file names."""
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")


class SmtpBackend:
    """Sends through SMTP with aiosmtplib, one connection per message."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if security not in ("none", "starttls", "tls"):
            raise ConfigurationError(
                f"SMTP_SECURITY must be none, starttls or tls, not {security!r}"
            )
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpBackend:
        """The server of the ``SMTP_*`` settings."""
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username or None,
            password=password,
            timeout=settings.smtp_timeout,
        )

    async def send(self, message: EmailMessage) -> None:
        import aiosmtplib

        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.security == "tls",
                # False, not None: None would upgrade opportunistically on "none".
                start_tls=self.security == "starttls",
                timeout=self.timeout,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise EmailDeliveryError(
                f"SMTP server {self.host}:{self.port} did not accept the message: "
                f"{type(exc).__name__}: {_short(exc)}"
            ) from None


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


EMAIL_BACKENDS = {
    "console": "vibetuner.services.email:ConsoleBackend",
    "file": "vibetuner.services.email:FileBackend",
    "smtp": "vibetuner.services.email:SmtpBackend",
}


def backend_from_settings(settings: Settings) -> EmailBackend:
    """The backend ``EMAIL_BACKEND`` names: a built-in or a dotted path to a class."""

    backend: EmailBackend = build_backend(
        "EMAIL_BACKEND", settings.email_backend, EMAIL_BACKENDS, settings
    )
    return backend


class Mailer:
    """Renders a message from templates and hands it to a backend.

    ``send_template("magic_link", to=..., context=...)`` renders
    ``email/magic_link.subject.txt``, ``email/magic_link.txt`` and
    ``email/magic_link.html`` (the HTML part is optional).
    """

    def __init__(
        self,
        backend: EmailBackend,
        environment: jinja2.Environment,
        sender: str,
        catalogs: Catalogs | None = None,
    ) -> None:
        if not parseaddr(sender)[1]:
            raise ConfigurationError(f"EMAIL_FROM is not an email address: {sender!r}")
        self.backend = backend
        self.environment = environment
        self.sender = sender
        self.catalogs = catalogs

    def render(self, name: str, *, to: str, context: dict[str, Any]) -> EmailMessage:
        """Build the message ``name`` for ``to`` (text part, plus HTML when a template exists)."""
        subject = self.environment.get_template(f"email/{name}.subject.txt").render(context)
        text = self.environment.get_template(f"email/{name}.txt").render(context)
        message = EmailMessage()
        message["Subject"] = " ".join(subject.split())
        message["From"] = self.sender
        message["To"] = to
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = make_msgid(domain=_domain(self.sender))
        message.set_content(text)
        try:
            html_template = self.environment.get_template(f"email/{name}.html")
        except jinja2.TemplateNotFound:
            return message
        message.add_alternative(html_template.render(context), subtype="html")
        return message

    async def send_template(
        self, name: str, *, to: str, context: dict[str, Any], locale: str | None = None
    ) -> None:
        """Render (in ``locale``, the recipient's language, when given) and deliver.

        Raises :class:`EmailDeliveryError` when delivery fails.
        """
        if locale is not None and self.catalogs is not None:
            with use_locale(self.catalogs, locale):
                message = self.render(name, to=to, context=context)
        else:
            message = self.render(name, to=to, context=context)
        await self.backend.send(message)


def _domain(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"
