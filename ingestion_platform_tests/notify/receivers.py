"""Local stand-ins for the notification channels: an HTTP receiver (webhook, Slack) and an SMTP server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from ingestion_platform_tests import local_http


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Records every POST; answers ``down_status`` while ``down`` is set (a channel that is down)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    refused: int = 0
    down: bool = False
    down_status: int = 503
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[Any]:
        return [r.json() for r in self.received]


@contextmanager
def http_receiver() -> Iterator[HttpReceiver]:
    state = HttpReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                if state.down:
                    state.refused += 1
                    status = state.down_status
                else:
                    state.received.append(Received(self.path, dict(self.headers), body))
                    status = 200
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: object) -> None:
            pass

    server, state.url = local_http.start(Handler)
    try:
        yield state
    finally:
        local_http.stop(server)


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    login: str | None


class _Handler:
    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        login = session.auth_data if session.authenticated else None
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, login))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def smtp_server(credentials: tuple[str, str] | None = None) -> Iterator[tuple[int, list[Mail]]]:
    """aiosmtpd on 127.0.0.1 without TLS (a local relay); with ``credentials``, AUTH is required."""
    handler = _Handler()
    kwargs: dict[str, Any] = {}
    if credentials is not None:

        def authenticator(server, session, envelope, mechanism, auth_data) -> AuthResult:
            ok = (auth_data.login.decode(), auth_data.password.decode()) == credentials
            return AuthResult(success=ok, handled=False, auth_data=auth_data.login.decode() if ok else None)

        kwargs = {"authenticator": authenticator, "auth_required": True, "auth_require_tls": False}
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port, handler.mails
    finally:
        controller.stop()
