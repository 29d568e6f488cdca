"""A fake Tableau REST server built from the tableauserverclient fixtures of ../shared/tableau.

Sign-in answers ``auth_sign_in.xml`` (or ``auth_sign_in_error.xml`` with HTTP 401) for a personal access
token or a connected-app JWT (verified with PyJWT: HS256, kid, iss, aud). One PAT holds one session: a
new sign-in with it ends the previous session. The views list is ``view_get.xml`` with the flights view
added; ``/views/{id}/data`` exports the view as Tableau does (UTF-8 BOM, CRLF, formatted numbers), with
``vf_<field>=<value>`` matched exactly and case-sensitively, anything else silently ignored.
"""

from __future__ import annotations

import csv
import io
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree as ET

import jwt

FLIGHTS_VIEW_ID = "9b1c6a3e-1f2d-4c0b-a8e7-0f1e2d3c4b5a"


class FakeTableau:
    def __init__(
        self,
        fixtures: Path,
        rows: list[dict[str, str]],
        *,
        pat: tuple[str, str] = ("etl", "pat-secret"),
        jwt_app: tuple[str, str, str] = ("client-1", "kid-1", "jwt-secret"),
    ) -> None:
        self.fixtures = fixtures
        self.rows = rows
        self.pat = pat
        self.jwt_app = jwt_app
        self.sessions: dict[str, str] = {}  # token -> who
        self.requests: list[tuple[str, str]] = []
        self.signins: list[str] = []
        self.fail_export = False
        sign_in = (fixtures / "auth_sign_in.xml").read_text()
        self.site_id = re.search(r'site id="([^"]+)"', sign_in)[1]
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/xml") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                path = urlsplit(self.path).path
                server.requests.append(("POST", self.path))
                if path.endswith("/auth/signin"):
                    return self._send(*server.sign_in(body))
                if path.endswith("/auth/signout"):
                    server.sessions.pop(self.headers.get("X-Tableau-Auth", ""), None)
                    return self._send(204, b"")
                return self._send(404, b"")

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                server.requests.append(("GET", self.path))
                if self.headers.get("X-Tableau-Auth") not in server.sessions:
                    return self._send(401, (server.fixtures / "auth_sign_in_error.xml").read_bytes())
                if re.fullmatch(rf"/api/[\d.]+/sites/{server.site_id}/views", parts.path):
                    return self._send(200, server.views_xml())
                match = re.fullmatch(rf"/api/[\d.]+/sites/{server.site_id}/views/([^/]+)/data", parts.path)
                if match and match[1] == FLIGHTS_VIEW_ID:
                    if server.fail_export:
                        return self._send(500, b"<error/>")
                    return self._send(200, server.export(parse_qs(parts.query)), "text/csv; charset=utf-8")
                return self._send(404, b"")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeTableau:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def sign_in(self, body: bytes) -> tuple[int, bytes]:
        credentials = ET.fromstring(body).find("credentials")
        attrs = credentials.attrib if credentials is not None else {}
        who = None
        if (
            attrs.get("personalAccessTokenName") == self.pat[0]
            and attrs.get("personalAccessTokenSecret") == self.pat[1]
        ):
            who = f"pat:{self.pat[0]}"
            for token, owner in list(self.sessions.items()):  # one PAT, one session
                if owner == who:
                    del self.sessions[token]
        elif "jwt" in attrs:
            client, kid, secret = self.jwt_app
            try:
                header = jwt.get_unverified_header(attrs["jwt"])
                claims = jwt.decode(attrs["jwt"], secret, algorithms=["HS256"], audience="tableau", issuer=client)
                who = f"jwt:{claims['sub']}" if header.get("kid") == kid else None
            except jwt.PyJWTError:
                who = None
        self.signins.append(who or "refused")
        if who is None:
            return 401, (self.fixtures / "auth_sign_in_error.xml").read_bytes()
        text = (self.fixtures / "auth_sign_in.xml").read_text()
        old = re.search(r'token="([^"]+)"', text)[1]
        token = uuid.uuid4().hex
        self.sessions[token] = who
        return 200, text.replace(old, token).encode()

    def views_xml(self) -> bytes:
        text = (self.fixtures / "view_get.xml").read_text()
        flights = (
            f'<view id="{FLIGHTS_VIEW_ID}" name="Flights" contentUrl="Travel/sheets/Flights">'
            '<workbook id="3cc6cd06-89ce-4fdc-b935-5294135d6d42" /><owner id="5de011f8-5aa9-4d5b-b991-f462c8dd6bb7" />'
            '<project id="5241e88d-d384-4fd7-9c2f-648b5247efc5" /></view>'
        )
        text = text.replace("</views>", flights + "</views>").replace('totalAvailable="2"', 'totalAvailable="3"')
        return text.encode()

    def export(self, query: dict[str, list[str]]) -> bytes:
        rows = self.rows
        columns = list(rows[0]) if rows else []
        for name, values in query.items():
            if name.startswith("vf_") and name[3:] in columns:  # exact, case-sensitive; others ignored
                rows = [r for r in rows if r[name[3:]] == values[0]]
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
        return ("\ufeff" + out.getvalue()).encode()
