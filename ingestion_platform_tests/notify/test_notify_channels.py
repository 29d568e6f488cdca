"""The channels against local servers: webhook (HMAC signature), Slack incoming webhook, SMTP (aiosmtpd)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import hashlib
import hmac

import pytest

from ingestion_platform.lib import notify
from ingestion_platform.lib.notify import Delivery, DeliveryError, Destination, Problem, Route, RunReport
from ingestion_platform_tests.notify.receivers import free_port, http_receiver, smtp_server

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

REPORT = RunReport(
    run_id="0f1e2d3c-aaaa-bbbb-cccc-000000000001",
    job_name="__ASSET_JOB",
    status="FAILURE",
    run_url="http://ui.example:3000/runs/0f1e2d3c-aaaa-bbbb-cccc-000000000001",
    partitions=("2025-03-14",),
    problems=(
        Problem("step_failure", ("pmu/programme",), "Failure: boom", "2025-03-14", step="pmu__programme"),
        Problem(
            "check_failed",
            ("pmu/programme",),
            "1 failing of 1 checked",
            "2025-03-14",
            check="source_loaded",
            severity="ERROR",
        ),
    ),
)


def _delivery(**kwargs) -> Delivery:
    sleeps: list[float] = []
    return Delivery(**{"max_attempts": 3, "timeout_s": 2.0, "backoff_s": 0.01, "sleep": sleeps.append, **kwargs})


def test_webhook_posts_the_report_with_a_verifiable_signature() -> None:
    with http_receiver() as receiver:
        url = f"{receiver.url}/hooks/ingestion"
        attempts = notify.send(Destination("webhook", url), REPORT, _delivery(webhook_secret="s3cret"), "d-1")
    assert attempts == 1
    [got] = receiver.received
    assert got.path == "/hooks/ingestion"
    body = got.json()
    assert body["run_url"] == REPORT.run_url and body["partitions"] == ["2025-03-14"]
    assert body["assets"] == ["pmu/programme"] and body["delivery_id"] == "d-1"
    assert [p["kind"] for p in body["problems"]] == ["step_failure", "check_failed"]
    assert "Failure: boom" in body["text"] and REPORT.run_url in body["text"]
    # The receiver recomputes the HMAC of the raw body with the shared secret.
    expected = "sha256=" + hmac.new(b"s3cret", got.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(got.headers[notify.SIGNATURE_HEADER], expected)
    wrong = "sha256=" + hmac.new(b"other", got.body, hashlib.sha256).hexdigest()
    assert got.headers[notify.SIGNATURE_HEADER] != wrong
    assert got.headers[notify.DELIVERY_HEADER] == "d-1"


def test_webhook_without_a_secret_is_not_signed() -> None:
    with http_receiver() as receiver:
        notify.send(Destination("webhook", receiver.url), REPORT, _delivery(), "d-2")
    assert notify.SIGNATURE_HEADER not in receiver.received[0].headers


def test_slack_gets_text_and_blocks() -> None:
    with http_receiver() as receiver:
        notify.send(Destination("slack", f"{receiver.url}/services/T0/B0/tokenXYZ"), REPORT, _delivery(), "d-3")
    body = receiver.received[0].json()
    assert REPORT.run_url in body["text"] and "failed" in body["text"]
    blocks = "\n".join(b["text"]["text"] for b in body["blocks"])
    assert "2025-03-14" in blocks and "pmu/programme" in blocks and "source_loaded" in blocks
    assert f"<{REPORT.run_url}|" in blocks


def test_a_channel_that_is_down_is_retried_then_reported_without_its_secret() -> None:
    with http_receiver() as receiver:
        receiver.down = True
        destination = Destination("slack", f"{receiver.url}/services/T0/B0/tokenXYZ")
        with pytest.raises(DeliveryError) as raised:
            notify.send(destination, REPORT, _delivery(max_attempts=3), "d-4")
        assert receiver.refused == 3  # bounded: exactly max_attempts tries
        assert "tokenXYZ" not in str(raised.value) and "gave up after 3 attempts" in str(raised.value)
        assert str(raised.value).startswith("slack http://127.0.0.1:")
        receiver.down = False
        notify.send(destination, REPORT, _delivery(), "d-4")
    assert len(receiver.received) == 1


def test_email_over_a_local_relay_without_starttls() -> None:
    with smtp_server() as (port, mails):
        delivery = _delivery(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False, smtp_from="etl@example.org")
        notify.send(Destination("email", "a@example.org,b@example.org"), REPORT, delivery, "d-5")
    [mail] = mails
    assert mail.mail_from == "etl@example.org" and mail.rcpt_tos == ["a@example.org", "b@example.org"]
    message = email.message_from_bytes(mail.content)
    assert message["Subject"] == REPORT.title() and message["X-Ingestion-Run-Id"] == REPORT.run_id
    text = message.get_payload(decode=True).decode()
    assert REPORT.run_url in text and "Partitions: 2025-03-14" in text and "Failure: boom" in text
    assert "check pmu/programme:source_loaded failed (ERROR)" in text


def test_email_logs_in_when_a_user_is_set() -> None:
    with smtp_server(credentials=("etl", "pw-123")) as (port, mails):
        good = _delivery(
            smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False, smtp_user="etl", smtp_password="pw-123"
        )
        notify.send(Destination("email", "ops@example.org"), REPORT, good, "d-6")
        bad = _delivery(
            smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False, smtp_user="etl", smtp_password="wrong"
        )
        with pytest.raises(DeliveryError, match=r"email ops@example\.org"):
            notify.send(Destination("email", "ops@example.org"), REPORT, bad, "d-7")
    assert [m.login for m in mails] == ["etl"]


def test_starttls_asked_of_a_server_without_it_is_refused_not_sent_in_clear() -> None:
    with smtp_server() as (port, mails):
        delivery = _delivery(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=True)
        with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
            notify.send(Destination("email", "ops@example.org"), REPORT, delivery, "d-8")
    assert mails == []


def test_an_smtp_server_that_is_down_is_retried() -> None:
    sleeps: list[float] = []
    delivery = _delivery(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_starttls=False, sleep=sleeps.append)
    with pytest.raises(DeliveryError, match="gave up after 3 attempts"):
        notify.send(Destination("email", "ops@example.org"), REPORT, delivery, "d-9")
    assert sleeps == [0.01, 0.02]  # exponential backoff between the attempts


def test_routes_replace_the_global_channels_key_by_key() -> None:
    default = Route("https://hooks.example/global", "https://slack.example/x", ("ops@example.org",))
    override = notify.parse_override({"email_to": ["team@example.org"], "slack_webhook_url": ""}, "a")
    route = default.overridden(override)
    assert route == Route("https://hooks.example/global", "", ("team@example.org",))
    assert [d.channel for d in route.destinations()] == ["webhook", "email"]
    assert notify.parse_override('{"email_to": "x@example.org, y@example.org"}')["email_to"] == (
        "x@example.org",
        "y@example.org",
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{not json", "is not JSON"),
        ('["a"]', "must be a JSON object"),
        ({"webhook": "https://x"}, r"unknown key\(s\) \['webhook'\]"),
        ({"webhook_url": "ftp://x"}, "webhook_url must be an http"),
        ({"email_to": ["not-an-address"]}, "invalid address"),
    ],
)
def test_bad_overrides_name_the_asset_and_the_key(value, message: str) -> None:
    with pytest.raises(notify.NotifyConfigError, match=rf"^pipelines/x: ingestion/notify.*{message}"):
        notify.parse_override(value, "pipelines/x")


def test_destinations_never_show_their_url() -> None:
    slack = Destination("slack", "https://hooks.slack.com/services/T000/B000/secretpart")
    assert "secretpart" not in repr(slack) and "secretpart" not in slack.label
    assert slack.label == f"slack https://hooks.slack.com #{slack.key[:8]}"


def test_the_outbox_is_a_delivered_set_with_growing_retry_delays(warehouse) -> None:
    outbox = notify.Outbox(warehouse)
    hook = Destination("webhook", "https://hooks.example/a/secret-path")
    row_id = outbox.enqueue(REPORT.run_id, hook, REPORT)
    assert row_id is not None
    assert outbox.enqueue(REPORT.run_id, hook, REPORT) is None  # the same run, the same place: once
    assert outbox.enqueue(REPORT.run_id, Destination("email", "ops@example.org"), REPORT) is not None
    [row] = [r for r in outbox.rows(REPORT.run_id) if r["id"] == row_id]
    assert "secret-path" not in str(row) and row["payload"]["run_id"] == REPORT.run_id

    start = dt.datetime.now(dt.UTC)
    assert outbox.failed(row, 3, "webhook: HTTP 503") == notify.PENDING
    assert row_id not in {r["id"] for r in outbox.due(start + dt.timedelta(seconds=59))}
    [row] = [r for r in outbox.due(start + dt.timedelta(seconds=61)) if r["id"] == row_id]
    assert (row["rounds"], row["attempts"], row["last_error"]) == (1, 3, "webhook: HTTP 503")
    outbox.failed(row, 3, "webhook: HTTP 503")  # the second round waits twice as long
    assert row_id not in {r["id"] for r in outbox.due(start + dt.timedelta(seconds=119))}
    assert row_id in {r["id"] for r in outbox.due(start + dt.timedelta(seconds=125))}
    outbox.delivered(row_id, 1)
    assert row_id not in {r["id"] for r in outbox.due(start + dt.timedelta(days=2))}
    [done] = [r for r in outbox.rows(REPORT.run_id) if r["id"] == row_id]
    assert (done["status"], done["attempts"], done["last_error"]) == ("delivered", 7, None)


def test_a_long_report_lists_the_first_problems_and_counts_the_rest() -> None:
    many = tuple(
        Problem("check_failed", (f"pmu/a{i}",), "1 failing", "2025-03-14", check="c", severity="WARN")
        for i in range(notify.MAX_LINES + 7)
    )
    report = dataclasses.replace(REPORT, status="SUCCESS", problems=many)  # a green run, red checks
    assert report.text().count("\n- check ") == notify.MAX_LINES
    assert report.text().endswith("… and 7 more (the run's page has them all)")
    assert len(report.as_json()["problems"]) == notify.MAX_LINES + 7
    assert report.title().endswith(f"{notify.MAX_LINES + 7} failed check(s): pmu/a0, pmu/a1, pmu/a10 (+54)")
