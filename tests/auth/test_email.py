"""Email delivery: console, file and SMTP backends (a real SMTP server on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import socket
import ssl
import threading
from contextlib import contextmanager

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.auth.conftest import follow_link, free_port, magic_link, request_link
from vibetuner.models import EmailVerificationToken, UserModel
from vibetuner.services.email import (
    ConsoleBackend,
    EmailDeliveryError,
    FileBackend,
    Mailer,
    SmtpBackend,
)
from vibetuner.templating import template_environment
from vibetuner.web.context import add_template_dir


class Inbox:
    """An aiosmtpd handler that keeps what it receives, or refuses recipients."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted"


@contextmanager
def smtp_server(handler, **kwargs):
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def server_tls_context(tls_files) -> ssl.SSLContext:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_smtp_delivers_the_sign_in_link(app_with, vibetuner_settings):
    inbox = Inbox()
    with smtp_server(inbox) as port:
        async with app_with(
            vibetuner_settings,
            email_backend="smtp",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
            email_from="Example App <login@example.org>",
        ) as client:
            response = await request_link(client, "smtp@example.com")
            assert response.status_code == 200
            [message] = inbox.messages
            assert inbox.envelopes == [("login@example.org", ["smtp@example.com"])]
            assert message["To"] == "smtp@example.com"
            assert message["From"] == "Example App <login@example.org>"
            link = magic_link(message)
            followed = await follow_link(client, link)
            assert followed.status_code == 303
            assert (await client.get("/auth/me")).json()["email"] == "smtp@example.com"


async def test_smtp_login_with_starttls(app_with, vibetuner_settings, tls_files, monkeypatch):
    # The client trusts the test certificate through the standard SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))
    logins: list[tuple[str, str]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=auth_data.password == b"s3cret", handled=False)

    inbox = Inbox()
    with smtp_server(
        inbox,
        tls_context=server_tls_context(tls_files),
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    ) as port:
        async with app_with(
            vibetuner_settings,
            email_backend="smtp",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="starttls",
            smtp_username="mailer",
            smtp_password="s3cret",
        ) as client:
            assert (await request_link(client, "tls@example.com")).status_code == 200
    assert logins == [("mailer", "s3cret")]
    assert [m["To"] for m in inbox.messages] == ["tls@example.com"]


async def test_smtp_implicit_tls(tls_files, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))
    inbox = Inbox()
    with smtp_server(inbox, ssl_context=server_tls_context(tls_files)) as port:
        backend = SmtpBackend(host="127.0.0.1", port=port, security="tls", timeout=5)
        mailer = Mailer(backend, template_environment(), "app@example.org")
        await mailer.send_template(
            "magic_link",
            to="implicit@example.com",
            context={"app_name": "Demo", "link": "http://x/auth/magic-link/abc", "ttl_minutes": 5},
        )
    assert inbox.messages[0]["Subject"] == "Your sign-in link for Demo"


async def test_wrong_password_is_a_delivery_error(tls_files, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))

    def authenticator(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=False, handled=False)

    with smtp_server(
        Inbox(),
        tls_context=server_tls_context(tls_files),
        authenticator=authenticator,
        auth_required=True,
    ) as port:
        backend = SmtpBackend(
            host="127.0.0.1",
            port=port,
            security="starttls",
            username="u",
            password="bad",
            timeout=3,
        )
        mailer = Mailer(backend, template_environment(), "app@example.org")
        with pytest.raises(EmailDeliveryError) as failed:
            await mailer.send_template(
                "magic_link",
                to="x@example.com",
                context={"app_name": "A", "link": "http://x/l", "ttl_minutes": 1},
            )
    assert "535" in str(failed.value) or "Authentication" in str(failed.value)
    assert "bad" not in str(failed.value)


async def test_refused_message_gives_an_error_page_and_leaves_no_token(
    app_with, vibetuner_settings, caplog
):
    with smtp_server(Inbox(refuse=True)) as port:
        async with app_with(
            vibetuner_settings,
            email_backend="smtp",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_security="none",
        ) as client:
            page = await client.post(
                "/auth/magic-link",
                data={"email": "refused@example.com"},
                headers={"Accept": "text/html"},
            )
            api = await request_link(client, "refused@example.com")
            # Checked while the app (and its database client) is still open.
            assert await EmailVerificationToken.find_all().count() == 0
            assert await UserModel.find_all().count() == 0
    assert page.status_code == api.status_code == 502
    assert "could not be sent" in page.text
    assert "could not be sent" in api.json()["detail"]
    failures = [r for r in caplog.records if r.name == "vibetuner.auth" and r.levelname == "ERROR"]
    assert failures and all("magic-link/" not in r.getMessage() for r in failures)


async def test_unreachable_or_silent_server_times_out(app_with, vibetuner_settings):
    # A server that accepts the connection and never greets.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        async with app_with(
            vibetuner_settings,
            email_backend="smtp",
            smtp_host="127.0.0.1",
            smtp_port=listener.getsockname()[1],
            smtp_security="none",
            smtp_timeout=0.5,
        ) as client:
            response = await asyncio.wait_for(request_link(client, "slow@example.com"), 10)
            assert await EmailVerificationToken.find_all().count() == 0
        assert response.status_code == 502
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        listener.close()


async def test_unwritable_outbox_gives_an_error_page(app_with, vibetuner_settings, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the outbox should be")
    async with app_with(vibetuner_settings, email_file_dir=blocker / "outbox") as client:
        response = await request_link(client, "file@example.com")
        assert await EmailVerificationToken.find_all().count() == 0
    assert response.status_code == 502


async def test_console_backend_prints_the_link():
    stream = io.StringIO()
    mailer = Mailer(ConsoleBackend(stream), template_environment(), "app@example.org")
    await mailer.send_template(
        "magic_link",
        to="dev@example.com",
        context={
            "app_name": "Dev",
            "link": "http://127.0.0.1:8000/auth/magic-link/xyz",
            "ttl_minutes": 15,
        },
    )
    printed = stream.getvalue()
    assert "dev@example.com" in printed
    assert "http://127.0.0.1:8000/auth/magic-link/xyz" in printed


async def test_file_backend_writes_complete_eml_files(tmp_path):
    mailer = Mailer(FileBackend(tmp_path / "out"), template_environment(), "App <app@example.org>")
    context = {"app_name": "A", "link": "http://x/auth/magic-link/abc", "ttl_minutes": 3}
    await asyncio.gather(
        *(
            mailer.send_template("magic_link", to=f"u{n}@example.com", context=context)
            for n in range(5)
        )
    )
    files = sorted((tmp_path / "out").iterdir())
    assert len(files) == 5 and all(f.suffix == ".eml" for f in files)
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"].endswith("@example.org>")
    assert parsed.get_body(("html",)) is not None


async def test_app_templates_override_pages_and_emails(vibetuner_settings, tmp_path, outbox):
    import httpx

    from vibetuner.testing import default_app

    templates = tmp_path / "templates"
    (templates / "auth").mkdir(parents=True)
    (templates / "email").mkdir()
    (templates / "auth" / "login.html").write_text("<h1>Custom login for {{ app_name }}</h1>")
    (templates / "email" / "magic_link.txt").write_text("Custom text: {{ link }}\n")
    application = default_app(settings=vibetuner_settings)
    add_template_dir(application, templates)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            page = await client.get("/auth/login")
            await request_link(client, "custom@example.com")
    assert page.text == "<h1>Custom login for vibetuner</h1>"
    [message] = outbox()
    assert message.get_body(("plain",)).get_content().startswith("Custom text: http://testserver/")
    # Templates the app does not override still come from vibetuner.
    assert message["Subject"] == "Your sign-in link for vibetuner"
