"""Failure notifications: the message of one run, where it goes, how it is delivered, the outbox.

A **report** (:class:`RunReport`) is what went wrong in one run: its link, job, partitions and one
:class:`Problem` per failed step, failed asset check or run-level failure, each naming its assets.
A **route** (:class:`Route`) is the channels one asset's problems go to: the global settings, with
the keys of the asset's ``ingestion/notify`` metadata replacing theirs. A **destination** is one
channel target (a webhook URL, a Slack incoming webhook, a list of e-mail recipients); each
destination gets **one message per run** holding the problems of every asset routed to it, never
one per check.

Channels (:func:`send`): a JSON POST with an optional HMAC-SHA256 signature of the body, a Slack
incoming webhook (``text`` + ``blocks``), e-mail over SMTP (STARTTLS optional, login optional).
Each delivery is tried ``INGESTION_NOTIFY_MAX_ATTEMPTS`` times with exponential backoff (HTTP
through the platform client: 429/5xx/timeouts; SMTP: connection and temporary errors).

The **outbox** (``platform.notification`` in the warehouse) records every message per run and
destination before it is sent: the unique ``(run_id, destination_key)`` is the delivered-set (a run
is never notified twice to the same place), a message that could not be delivered stays
``pending`` with its error and is retried at later sensor ticks with a growing delay, and after
:data:`MAX_ROUNDS` rounds it is kept as ``failed`` (a dead letter, payload included). Destinations
are stored as a hash and a redacted label, never as the URL (a Slack webhook URL is a secret): a
retry finds the target again among the destinations configured at that time.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from email.message import EmailMessage
from typing import Any, Literal
from urllib.parse import urlsplit

import sqlalchemy as sa

from ingestion_platform.lib.http import HttpClient, HttpError, HttpRetry
from ingestion_platform.lib.ledger import METADATA, jsonable
from ingestion_platform.lib.settings import run_setting
from ingestion_platform.lib.warehouse import Warehouse

log = logging.getLogger(__name__)

# -- settings (read at each sensor evaluation) ------------------------------------------------------
WEBSERVER_URL = run_setting(
    "INGESTION_WEBSERVER_URL", "http://127.0.0.1:3000", "base URL of the Dagster UI, for the run links of notifications"
)
WEBHOOK_URL = run_setting(
    "INGESTION_NOTIFY_WEBHOOK_URL", "", "webhook receiving a JSON POST per failed run", kind=str, secret=True
)
WEBHOOK_SECRET = run_setting(
    "INGESTION_NOTIFY_WEBHOOK_SECRET", "", "HMAC-SHA256 key signing the webhook body", kind=str, secret=True
)
SLACK_WEBHOOK_URL = run_setting(
    "INGESTION_NOTIFY_SLACK_WEBHOOK_URL", "", "Slack incoming webhook URL", kind=str, secret=True
)
SMTP_HOST = run_setting("INGESTION_SMTP_HOST", "", "SMTP server of the e-mail notifications", kind=str)
SMTP_PORT = run_setting("INGESTION_SMTP_PORT", 587, "SMTP port")
SMTP_USER = run_setting("INGESTION_SMTP_USER", "", "SMTP login (none: no AUTH)", kind=str)
SMTP_PASSWORD = run_setting("INGESTION_SMTP_PASSWORD", "", "SMTP password", kind=str, secret=True)
SMTP_FROM = run_setting("INGESTION_SMTP_FROM", "ingestion@localhost", "From address of the e-mail notifications")
SMTP_STARTTLS = run_setting("INGESTION_SMTP_STARTTLS", True, "upgrade the SMTP connection with STARTTLS")
EMAIL_TO = run_setting("INGESTION_NOTIFY_EMAIL_TO", [], "comma-separated recipients of the e-mail notifications")
MAX_ATTEMPTS = run_setting("INGESTION_NOTIFY_MAX_ATTEMPTS", 3, "delivery attempts per message and sensor tick")
TIMEOUT_S = run_setting("INGESTION_NOTIFY_TIMEOUT_S", 5.0, "connect/read timeout of one delivery attempt, seconds")
BACKOFF_S = run_setting("INGESTION_NOTIFY_BACKOFF_S", 1.0, "backoff base between delivery attempts, seconds")

#: ticks a message is retried at before it is kept as ``failed`` (about a day with the delays below)
MAX_ROUNDS = 24
#: delay before the next tick retries a message: ``RETRY_DELAY_S * 2**(rounds-1)``, at most ``RETRY_DELAY_MAX_S``
RETRY_DELAY_S = 60.0
RETRY_DELAY_MAX_S = 3600.0
#: a text field of a message (an error, a traceback) is cut at this many characters
MAX_TEXT = 1500
#: problems listed in the text of a message (e-mail, ``text``); the JSON ``problems`` has them all
MAX_LINES = 50
SIGNATURE_HEADER = "X-Ingestion-Signature"
DELIVERY_HEADER = "X-Ingestion-Delivery"
#: the asset metadata key of a per-asset route
METADATA_KEY = "ingestion/notify"
ROUTE_KEYS = ("webhook_url", "slack_webhook_url", "email_to")

Channel = Literal["webhook", "slack", "email"]


class NotifyConfigError(ValueError):
    """An ``ingestion/notify`` value that cannot be used; the message names the asset and the key."""


class DeliveryError(RuntimeError):
    """A message could not be delivered to a destination; the message never carries its secret URL."""


# -- reports ----------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing that went wrong in a run: a failed step, a failed check or the run itself."""

    kind: Literal["step_failure", "check_failed", "run_failure"]
    assets: tuple[str, ...]
    error: str
    partition: str | None = None
    step: str | None = None
    check: str | None = None
    severity: str | None = None

    def line(self) -> str:
        where = ", ".join(self.assets) or "(no asset)"
        if self.kind == "check_failed":
            head = f"check {where}:{self.check} failed ({self.severity})"
        elif self.kind == "step_failure":
            head = f"step {self.step} failed ({where})"
        else:
            head = f"run failed ({where})"
        if self.partition:
            head += f" [partition {self.partition}]"
        return f"{head}: {self.error}"


@dataclasses.dataclass(frozen=True)
class RunReport:
    """What went wrong in one run, as sent: ``problems`` are those of the destination's assets."""

    run_id: str
    job_name: str
    status: str
    run_url: str
    partitions: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def assets(self) -> list[str]:
        return sorted({a for p in self.problems for a in p.assets})

    def only(self, problems: Iterable[Problem]) -> RunReport:
        return dataclasses.replace(self, problems=tuple(problems))

    def title(self) -> str:
        checks = sum(p.kind == "check_failed" for p in self.problems)
        shown = ", ".join(self.assets[:3]) + (f" (+{len(self.assets) - 3})" if len(self.assets) > 3 else "")
        what = "failed" if self.status == "FAILURE" else f"{checks} failed check(s)"
        return f"[ingestion] run {self.run_id[:8]} {what}: {shown or self.job_name}"

    def text(self) -> str:
        lines = [
            self.title(),
            f"Run: {self.run_url}",
            f"Job: {self.job_name} (status {self.status})",
            f"Partitions: {', '.join(self.partitions) or '(not partitioned)'}",
            f"Assets: {', '.join(self.assets) or '(none)'}",
            "Errors:",
        ]
        lines += [f"- {p.line()}" for p in self.problems[:MAX_LINES]]
        if len(self.problems) > MAX_LINES:
            lines.append(f"- … and {len(self.problems) - MAX_LINES} more (the run's page has them all)")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "job_name": self.job_name,
            "status": self.status,
            "run_url": self.run_url,
            "partitions": list(self.partitions),
            "assets": self.assets,
            "problems": [{k: v for k, v in dataclasses.asdict(p).items() if v is not None} for p in self.problems],
            "title": self.title(),
            "text": self.text(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunReport:
        problems = tuple(Problem(**{**p, "assets": tuple(p.get("assets", ()))}) for p in data.get("problems", []))
        return cls(
            run_id=data["run_id"],
            job_name=data["job_name"],
            status=data["status"],
            run_url=data["run_url"],
            partitions=tuple(data.get("partitions", ())),
            problems=problems,
        )


def cut(text: str, limit: int = MAX_TEXT) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run_url(run_id: str) -> str:
    """The run's page in the Dagster UI: ``<INGESTION_WEBSERVER_URL>/runs/<run_id>``."""
    return f"{WEBSERVER_URL.read().rstrip('/')}/runs/{run_id}"


# -- routes and destinations ------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Destination:
    """One channel target. ``key`` (a hash) and ``label`` (redacted) are what is stored."""

    channel: Channel
    target: str  # a URL, or comma-separated recipients

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.channel}\n{self.target}".encode()).hexdigest()[:32]

    @property
    def label(self) -> str:
        if self.channel == "email":
            return f"email {self.target}"
        parts = urlsplit(self.target)
        host = parts.hostname or "?"
        # the host, and the key's start to tell two URLs of one host apart (the path may hold a token)
        return f"{self.channel} {parts.scheme}://{host}{f':{parts.port}' if parts.port else ''} #{self.key[:8]}"

    def __repr__(self) -> str:  # never the URL: a Slack webhook URL is a secret
        return f"Destination({self.label})"


@dataclasses.dataclass(frozen=True)
class Route:
    """The channels of one asset's problems; empty values are channels switched off."""

    webhook_url: str = ""
    slack_webhook_url: str = ""
    email_to: tuple[str, ...] = ()

    def destinations(self) -> list[Destination]:
        out: list[Destination] = []
        if self.webhook_url:
            out.append(Destination("webhook", self.webhook_url))
        if self.slack_webhook_url:
            out.append(Destination("slack", self.slack_webhook_url))
        if self.email_to:
            out.append(Destination("email", ",".join(sorted(set(self.email_to)))))
        return out

    def overridden(self, override: Mapping[str, Any]) -> Route:
        """This route with the keys of ``override`` (a parsed ``ingestion/notify``) replacing its own."""
        return dataclasses.replace(self, **override)


def global_route() -> Route:
    """The channels of the settings, read now."""
    return Route(WEBHOOK_URL.read(), SLACK_WEBHOOK_URL.read(), tuple(EMAIL_TO.read()))


def parse_override(value: Any, asset: str = "?") -> dict[str, Any]:
    """An ``ingestion/notify`` metadata value (a JSON object, or its text) -> the keys it replaces.

    Keys: ``webhook_url`` and ``slack_webhook_url`` (an http(s) URL, or ``""`` to switch that channel
    off for the asset), ``email_to`` (a list of addresses, or a comma-separated string; ``[]`` = off).
    """
    raw = getattr(value, "value", value)  # a JsonMetadataValue / TextMetadataValue, or the plain value
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise NotifyConfigError(f"{asset}: {METADATA_KEY} is not JSON: {exc}") from None
    if not isinstance(raw, Mapping):
        raise NotifyConfigError(f"{asset}: {METADATA_KEY} must be a JSON object with keys {', '.join(ROUTE_KEYS)}")
    unknown = sorted(set(raw) - set(ROUTE_KEYS))
    if unknown:
        raise NotifyConfigError(f"{asset}: {METADATA_KEY} has unknown key(s) {unknown}; allowed: {list(ROUTE_KEYS)}")
    out: dict[str, Any] = {}
    for key in ("webhook_url", "slack_webhook_url"):
        if key in raw:
            url = raw[key] if raw[key] is not None else ""
            if not isinstance(url, str) or (url and not url.startswith(("http://", "https://"))):
                raise NotifyConfigError(f"{asset}: {METADATA_KEY}.{key} must be an http(s) URL or empty")
            out[key] = url
    if "email_to" in raw:
        to = raw["email_to"] if raw["email_to"] is not None else []
        if isinstance(to, str):
            to = [part.strip() for part in to.split(",")]
        if not isinstance(to, list) or not all(isinstance(x, str) for x in to):
            raise NotifyConfigError(f"{asset}: {METADATA_KEY}.email_to must be a list of addresses")
        bad = [x for x in to if x and "@" not in x]
        if bad:
            raise NotifyConfigError(f"{asset}: {METADATA_KEY}.email_to has invalid address(es) {bad}")
        out["email_to"] = tuple(x.strip() for x in to if x.strip())
    return out


def messages_by_destination(
    report: RunReport, route_of: Callable[[str], Route], default: Route
) -> list[tuple[Destination, RunReport]]:
    """One message per destination, holding the problems of the assets routed to it.

    A problem without an asset (a run that failed before any step) follows ``default``; a problem of
    several assets goes to each of their destinations once.
    """
    routed: dict[Destination, list[Problem]] = {}
    for problem in report.problems:
        routes = [route_of(a) for a in problem.assets] or [default]
        targets = dict.fromkeys(d for r in routes for d in r.destinations())
        for destination in targets:
            routed.setdefault(destination, []).append(problem)
    return [(d, report.only(problems)) for d, problems in routed.items()]


# -- channels ---------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Delivery:
    """How to deliver, read from the settings at the sensor evaluation (``Delivery.from_settings()``)."""

    webhook_secret: str = ""
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = dataclasses.field(default="", repr=False)
    smtp_from: str = "ingestion@localhost"
    smtp_starttls: bool = True
    max_attempts: int = 3
    timeout_s: float = 5.0
    backoff_s: float = 1.0
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_settings(cls, **overrides: Any) -> Delivery:
        values = {
            "webhook_secret": WEBHOOK_SECRET.read(),
            "smtp_host": SMTP_HOST.read(),
            "smtp_port": SMTP_PORT.read(),
            "smtp_user": SMTP_USER.read(),
            "smtp_password": SMTP_PASSWORD.read(),
            "smtp_from": SMTP_FROM.read(),
            "smtp_starttls": SMTP_STARTTLS.read(),
            "max_attempts": max(1, MAX_ATTEMPTS.read()),
            "timeout_s": TIMEOUT_S.read(),
            "backoff_s": BACKOFF_S.read(),
        }
        values.update(overrides)
        return cls(**values)

    def backoff(self, attempt: int) -> float:
        return self.backoff_s * 2 ** (attempt - 1)


def sign(body: bytes, secret: str) -> str:
    """The signature header value of a webhook body: ``sha256=<hex HMAC-SHA256 of the raw body>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(report: RunReport, delivery_id: str) -> bytes:
    return json.dumps({"delivery_id": delivery_id, **report.as_json()}, sort_keys=True).encode()


def slack_body(report: RunReport) -> dict[str, Any]:
    problems = "\n".join(f"• {cut(p.line(), 500)}" for p in report.problems[:20])
    if len(report.problems) > 20:
        problems += f"\n… and {len(report.problems) - 20} more"
    facts = (
        f"*Job* {report.job_name} ({report.status})\n*Partitions* {', '.join(report.partitions) or '-'}\n"
        f"*Assets* {', '.join(report.assets) or '-'}"
    )
    return {
        "text": f"{report.title()} {report.run_url}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*<{report.run_url}|{report.title()}>*"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": facts}},
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(problems, 2900) or "-"}},
        ],
    }


def email_message(report: RunReport, sender: str, recipients: Sequence[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = report.title()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["X-Ingestion-Run-Id"] = report.run_id
    message.set_content(report.text() + "\n")
    return message


def send(destination: Destination, report: RunReport, delivery: Delivery, delivery_id: str) -> int:
    """Deliver ``report`` to ``destination``, retried up to ``delivery.max_attempts`` times; the attempts made.

    Raises ``DeliveryError`` (naming the destination's label, never its URL) when every attempt failed.
    """
    try:
        if destination.channel == "email":
            return _send_email(destination, report, delivery)
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: delivery_id}
        if destination.channel == "webhook":
            body = webhook_body(report, delivery_id)
            if delivery.webhook_secret:
                headers[SIGNATURE_HEADER] = sign(body, delivery.webhook_secret)
        else:
            body = json.dumps(slack_body(report)).encode()
        client = HttpClient(
            base_url="",
            connect_timeout_s=delivery.timeout_s,
            read_timeout_s=delivery.timeout_s,
            retry=HttpRetry(max_attempts=delivery.max_attempts, backoff_base_s=delivery.backoff_s),
            ok_statuses=(200, 201, 202, 204),
            max_concurrency=1,
            sleep=delivery.sleep,
        )
        with client:
            return client.post(destination.target, content=body, headers=headers).attempts
    except DeliveryError:
        raise
    except (HttpError, OSError, smtplib.SMTPException, ValueError) as exc:
        text = str(exc).replace(destination.target, destination.label)
        for part in _secret_parts(destination.target):
            text = text.replace(part, "***")
        raise DeliveryError(f"{destination.label}: {cut(text, 500)}") from None


def _secret_parts(url: str) -> list[str]:
    """The path of a URL (a Slack webhook's token lives there) as it may appear in an error."""
    if "//" not in url:
        return []
    rest = url.split("//", 1)[1]
    path = rest.split("/", 1)[1] if "/" in rest else ""
    return [p for p in (path.split("?", 1)[0],) if len(p) > 3]


_PERMANENT_SMTP = (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError, smtplib.SMTPRecipientsRefused)


def _send_email(destination: Destination, report: RunReport, delivery: Delivery) -> int:
    if not delivery.smtp_host:
        raise DeliveryError(f"{destination.label}: INGESTION_SMTP_HOST is not set")
    recipients = destination.target.split(",")
    message = email_message(report, delivery.smtp_from, recipients)
    for attempt in range(1, delivery.max_attempts + 1):
        try:
            with smtplib.SMTP(delivery.smtp_host, delivery.smtp_port, timeout=delivery.timeout_s) as smtp:
                smtp.ehlo()
                if delivery.smtp_starttls:
                    if not smtp.has_extn("starttls"):
                        raise smtplib.SMTPNotSupportedError(
                            f"{delivery.smtp_host}:{delivery.smtp_port} does not offer STARTTLS "
                            "(INGESTION_SMTP_STARTTLS=false for a local relay without TLS)"
                        )
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if delivery.smtp_user:
                    smtp.login(delivery.smtp_user, delivery.smtp_password)
                smtp.send_message(message, to_addrs=recipients)
            return attempt
        except _PERMANENT_SMTP:
            raise
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("%s attempt %d: %s: %s", destination.label, attempt, type(exc).__name__, exc)
            if attempt == delivery.max_attempts:
                raise DeliveryError(
                    f"{destination.label} via {delivery.smtp_host}:{delivery.smtp_port}: gave up after "
                    f"{attempt} attempts: {type(exc).__name__}: {cut(str(exc), 300)}"
                ) from None
            delivery.sleep(delivery.backoff(attempt))


# -- the outbox -------------------------------------------------------------------------------------
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

notification = sa.Table(
    "notification",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False, comment="Dagster run id"),
    sa.Column("destination_key", sa.String(64), nullable=False, comment="hash of channel + target"),
    sa.Column("channel", sa.String(16), nullable=False, comment="webhook, slack or email"),
    sa.Column("destination", sa.Text, nullable=False, comment="redacted label of the target (no secret)"),
    sa.Column("status", sa.String(16), nullable=False, comment="pending -> delivered | failed"),
    sa.Column("attempts", sa.Integer, nullable=False, default=0, comment="delivery attempts, all ticks"),
    sa.Column("rounds", sa.Integer, nullable=False, default=0, comment="sensor ticks that tried it"),
    sa.Column("last_error", sa.Text),
    sa.Column("payload", sa.JSON, nullable=False, comment="the message (RunReport.as_json)"),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("delivered_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("run_id", "destination_key", name="uq_notification_run_destination"),
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Outbox:
    """``platform.notification``: one row per run and destination (the delivered-set and dead letters)."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        warehouse.ensure_tables([notification])

    def enqueue(self, run_id: str, destination: Destination, report: RunReport) -> int | None:
        """Record the message; None when this run already has one for this destination."""
        n = notification
        values = {
            "run_id": run_id,
            "destination_key": destination.key,
            "channel": destination.channel,
            "destination": destination.label,
            "status": PENDING,
            "attempts": 0,
            "rounds": 0,
            "payload": jsonable(report.as_json()),
            "created_at": _now(),
            "next_attempt_at": None,
        }
        try:
            with self.warehouse.engine.begin() as conn:
                exists = conn.execute(
                    sa.select(n.c.id).where(n.c.run_id == run_id, n.c.destination_key == destination.key)
                ).first()
                if exists is not None:
                    return None
                return int(conn.execute(sa.insert(n).values(**values).returning(n.c.id)).scalar_one())
        except sa.exc.IntegrityError:  # another evaluation recorded it a moment ago
            return None

    def due(self, now: dt.datetime | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Pending messages whose retry delay has passed, oldest first."""
        n = notification
        ready = sa.or_(n.c.next_attempt_at.is_(None), n.c.next_attempt_at <= (now or _now()))
        return self.warehouse.fetch(sa.select(n).where(n.c.status == PENDING, ready).order_by(n.c.id).limit(limit))

    def rows(self, run_id: str | None = None) -> list[dict[str, Any]]:
        n = notification
        stmt = sa.select(n).order_by(n.c.id)
        if run_id is not None:
            stmt = stmt.where(n.c.run_id == run_id)
        return self.warehouse.fetch(stmt)

    def delivered(self, row_id: int, attempts: int) -> None:
        self._update(row_id, status=DELIVERED, attempts_add=attempts, delivered_at=_now(), last_error=None)

    def failed(self, row: Mapping[str, Any], attempts: int, error: str) -> str:
        """Record a failed round: ``pending`` again later, or ``failed`` after ``MAX_ROUNDS``."""
        rounds = int(row["rounds"]) + 1
        status = FAILED if rounds >= MAX_ROUNDS else PENDING
        delay = min(RETRY_DELAY_MAX_S, RETRY_DELAY_S * 2 ** (rounds - 1))
        later = _now() + dt.timedelta(seconds=delay) if status == PENDING else None
        self._update(row["id"], status=status, attempts_add=attempts, last_error=error, next_attempt_at=later)
        return status

    def _update(self, row_id: int, *, attempts_add: int, **values: Any) -> None:
        n = notification
        with self.warehouse.engine.begin() as conn:
            conn.execute(
                sa.update(n)
                .where(n.c.id == row_id)
                .values(attempts=n.c.attempts + attempts_add, rounds=n.c.rounds + 1, **values)
            )


@dataclasses.dataclass
class Attempted:
    """What one delivery round did, for the sensor's log and skip reason."""

    delivered: list[str] = dataclasses.field(default_factory=list)
    pending: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)
    tried: set[int] = dataclasses.field(default_factory=set)  # outbox rows tried this tick

    def summary(self) -> str:
        return f"{len(self.delivered)} delivered, {len(self.pending)} to retry, {len(self.failed)} given up"


def attempt(
    outbox: Outbox | None,
    row: Mapping[str, Any] | None,
    destination: Destination,
    report: RunReport,
    delivery: Delivery,
    done: Attempted,
) -> None:
    """Deliver one message and record the outcome (never raises: a channel down is logged and kept)."""
    delivery_id = f"{report.run_id}:{destination.key[:12]}"
    if row is not None:
        done.tried.add(int(row["id"]))
    try:
        attempts = send(destination, report, delivery, delivery_id)
    except Exception as exc:  # a channel that is down never breaks the sensor
        error = str(exc) if isinstance(exc, DeliveryError) else f"{destination.label}: {type(exc).__name__}"
        log.warning("notification of run %s not delivered: %s", report.run_id, error)
        status = PENDING
        if outbox is not None and row is not None:
            try:
                status = outbox.failed(row, delivery.max_attempts, error)
            except Exception as store_exc:
                log.error("notification outbox unavailable: %s", type(store_exc).__name__)
        (done.failed if status == FAILED else done.pending).append(f"{report.run_id} -> {error}")
        return
    done.delivered.append(f"{report.run_id} -> {destination.label}")
    if outbox is not None and row is not None:
        try:
            outbox.delivered(row["id"], attempts)
        except Exception as store_exc:
            log.error("notification outbox unavailable: %s", type(store_exc).__name__)
