"""The notification sensors on real Dagster runs in process, against a local HTTP receiver and aiosmtpd.

Each test materialises assets on a temporary instance (SQLite, run-sharded like the local one), then
evaluates the sensors on that instance as the daemon would: ``notify_run_failures`` with the run's
failure event, ``notify_failed_checks`` tick after tick with its cursor.
"""

from __future__ import annotations

import email
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ingestion_platform.definitions import defs
from ingestion_platform.defs.events.assets import ics_feeds
from ingestion_platform.defs.events.resources import IcsFeeds
from ingestion_platform.defs.platform.notifications import notify_failed_checks, notify_run_failures
from ingestion_platform.defs.pmu.assets import participants, programme
from ingestion_platform.lib import notify
from ingestion_platform.lib.notify import Outbox
from ingestion_platform.lib.raw_store import RawStoreResource
from ingestion_platform.lib.warehouse import WarehouseResource, get_warehouse
from ingestion_platform_tests.notify.receivers import HttpReceiver, http_receiver, smtp_server
from ingestion_platform_tests.pmu_helpers import SAMPLE_DAY, SAMPLE_DIR, copy_day, run_pmu

DAILY = dg.DailyPartitionsDefinition(start_date="2025-01-01")
UI = "http://ui.example:3000"
EVENTS_SAMPLE = Path(__file__).resolve().parents[2] / "ingestion_platform" / "defs" / "events" / "sample"


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def channels(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HttpReceiver, HttpReceiver, list]]:
    """The global channels: a webhook (signed), a Slack webhook and e-mail, all local."""
    with http_receiver() as hook, http_receiver() as slack, smtp_server() as (port, mails):
        env = {
            "INGESTION_WEBSERVER_URL": UI,
            "INGESTION_NOTIFY_WEBHOOK_URL": f"{hook.url}/global",
            "INGESTION_NOTIFY_WEBHOOK_SECRET": "hook-secret",
            "INGESTION_NOTIFY_SLACK_WEBHOOK_URL": f"{slack.url}/services/T1/B1/slacktoken",
            "INGESTION_SMTP_HOST": "127.0.0.1",
            "INGESTION_SMTP_PORT": str(port),
            "INGESTION_SMTP_STARTTLS": "false",
            "INGESTION_SMTP_FROM": "etl@example.org",
            "INGESTION_NOTIFY_EMAIL_TO": "ops@example.org",
            "INGESTION_NOTIFY_BACKOFF_S": "0",
            "INGESTION_NOTIFY_TIMEOUT_S": "3",
        }
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        yield hook, slack, mails


def _resources(url: str) -> dict:
    return {"warehouse": WarehouseResource(database_url=url)}


def _failure_sensor(instance: dg.DagsterInstance, run_id: str, repo: dg.RepositoryDefinition, url: str) -> str:
    """Evaluate ``notify_run_failures`` on the failed run, as the daemon does."""
    run = instance.get_run_by_id(run_id)
    [failure] = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(
        sensor_name="notify_run_failures",
        dagster_event=failure.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
        resources=_resources(url),
        repository_def=repo,
    ).for_run_failure()
    result = notify_run_failures(context)
    assert isinstance(result, dg.SkipReason)
    return result.skip_message


class Ticks:
    """``notify_failed_checks`` evaluated tick after tick, keeping its cursor like the daemon."""

    def __init__(self, instance: dg.DagsterInstance, repo: dg.RepositoryDefinition, url: str) -> None:
        self.instance, self.repo, self.url, self.cursor = instance, repo, url, None

    def tick(self) -> str:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, repository_def=self.repo, resources=_resources(self.url)
        )
        result = notify_failed_checks(context)
        self.cursor = result.cursor
        return str(result.skip_reason.skip_message)


def _signed(received) -> bool:
    expected = "sha256=" + hmac.new(b"hook-secret", received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(received.headers[notify.SIGNATURE_HEADER], expected)


# -- a tiny failing asset and assets with their own routes -------------------------------------------
@dg.asset(partitions_def=DAILY, key=["tiny", "breaks"])
def breaks() -> None:
    raise ValueError("upstream file missing: /drop/2025-03-14.csv")


def _routed_assets(team_hook: str) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=["tiny", "ours"],
        partitions_def=DAILY,
        check_specs=[dg.AssetCheckSpec("has_rows", asset=["tiny", "ours"])],
    )
    def ours():
        yield dg.MaterializeResult(
            check_results=[
                dg.AssetCheckResult(
                    check_name="has_rows",
                    passed=False,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"failing_rows": 1, "checked_rows": 1},
                )
            ]
        )

    @dg.asset(
        key=["tiny", "theirs"],
        partitions_def=DAILY,
        metadata={notify.METADATA_KEY: {"webhook_url": team_hook, "email_to": ["team@example.org"]}},
        check_specs=[dg.AssetCheckSpec("unique", asset=["tiny", "theirs"])],
    )
    def theirs():
        yield dg.MaterializeResult(
            check_results=[dg.AssetCheckResult(check_name="unique", passed=False, metadata={"failing_rows": 2})]
        )

    return [ours, theirs]


def test_a_failed_run_sends_one_message_per_channel(channels, instance: dg.DagsterInstance, warehouse_url: str) -> None:
    hook, slack, mails = channels
    repo = dg.Definitions(assets=[breaks]).get_repository_def()
    ticks = Ticks(instance, repo, warehouse_url)
    ticks.tick()  # the check sensor starts from now
    result = dg.materialize([breaks], instance=instance, partition_key="2025-03-14", raise_on_error=False)
    assert not result.success

    said = _failure_sensor(instance, result.run_id, repo, warehouse_url)
    assert said.endswith("3 delivered, 0 to retry, 0 given up")
    [got] = hook.received
    body = got.json()
    assert _signed(got)
    assert body["run_url"] == f"{UI}/runs/{result.run_id}"
    assert body["status"] == "FAILURE" and body["partitions"] == ["2025-03-14"]
    assert body["assets"] == ["tiny/breaks"]
    [problem] = body["problems"]
    assert problem["kind"] == "step_failure" and problem["step"] == "tiny__breaks"
    assert "ValueError: upstream file missing: /drop/2025-03-14.csv" in problem["error"]
    [slack_message] = slack.bodies()
    assert f"{UI}/runs/{result.run_id}" in slack_message["text"]
    [mail] = mails
    text = email.message_from_bytes(mail.content).get_payload(decode=True).decode()
    assert f"{UI}/runs/{result.run_id}" in text and "tiny/breaks" in text and "upstream file missing" in text

    # The daemon evaluating it again (a retried tick), and the check sensor's ticks: nothing more.
    _failure_sensor(instance, result.run_id, repo, warehouse_url)
    assert "0 with failed checks" in ticks.tick()
    assert (len(hook.received), len(slack.received), len(mails)) == (1, 1, 1)
    rows = Outbox(get_warehouse(warehouse_url)).rows(result.run_id)
    assert sorted(r["channel"] for r in rows) == ["email", "slack", "webhook"]
    assert {r["status"] for r in rows} == {"delivered"}
    assert all("slacktoken" not in r["destination"] for r in rows)


def test_failed_checks_of_a_run_are_one_message_routed_per_asset(
    channels, instance: dg.DagsterInstance, sqlite_url: str
) -> None:
    hook, slack, mails = channels
    with http_receiver() as team:
        assets = _routed_assets(f"{team.url}/team")
        repo = dg.Definitions(assets=assets).get_repository_def()
        ticks = Ticks(instance, repo, sqlite_url)
        ticks.tick()
        result = dg.materialize(assets, instance=instance, partition_key="2025-03-14")
        assert result.success  # failed checks that do not block: a green run with red checks
        assert "1 with failed checks; 5 delivered" in ticks.tick()
        assert "0 finished run(s)" in ticks.tick()

        # The global webhook and Slack get tiny/ours; tiny/theirs replaces webhook and e-mail: its own
        # webhook and recipients, the global Slack (not overridden) for both, in one message.
        [global_hook] = hook.bodies()
        assert global_hook["assets"] == ["tiny/ours"]
        assert global_hook["problems"][0]["check"] == "has_rows" and global_hook["problems"][0]["severity"] == "WARN"
        [team_hook] = team.bodies()
        assert team_hook["assets"] == ["tiny/theirs"] and team_hook["problems"][0]["severity"] == "ERROR"
        assert team_hook["run_url"] == f"{UI}/runs/{result.run_id}" and team_hook["partitions"] == ["2025-03-14"]
        [both] = slack.bodies()
        assert "tiny/ours" in both["text"] or "tiny/ours" in str(both["blocks"])
        assert "tiny/theirs" in str(both["blocks"]) and "2 failed check(s)" in both["text"]
        assert sorted(m.rcpt_tos[0] for m in mails) == ["ops@example.org", "team@example.org"]
        assert _signed(team.received[0])


def test_a_channel_down_is_retried_at_the_next_tick_and_delivered_once(
    channels, instance: dg.DagsterInstance, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_url = warehouse_url  # SQLite, then PostgreSQL
    hook, slack, mails = channels
    monkeypatch.setattr(notify, "RETRY_DELAY_S", 0.0)  # the next tick may retry at once
    hook.down = True
    assets = _routed_assets(f"{hook.url}/team")
    repo = dg.Definitions(assets=assets).get_repository_def()
    ticks = Ticks(instance, repo, sqlite_url)
    ticks.tick()
    result = dg.materialize(assets, instance=instance, partition_key="2025-03-14")

    said = ticks.tick()  # the sensor still succeeds; both webhooks are down
    assert "3 delivered, 2 to retry" in said
    assert hook.refused == 2 * 3 and hook.received == []  # bounded: 3 attempts per message
    rows = Outbox(get_warehouse(sqlite_url)).rows(result.run_id)
    webhook_rows = [r for r in rows if r["channel"] == "webhook"]
    assert [r["status"] for r in webhook_rows] == ["pending", "pending"]
    assert all("HTTP 503" in r["last_error"] for r in webhook_rows)
    assert webhook_rows[0]["payload"]["run_id"] == result.run_id  # nothing lost

    hook.down = False
    assert "2 delivered, 0 to retry" in ticks.tick()
    assert sorted(b["assets"][0] for b in hook.bodies()) == ["tiny/ours", "tiny/theirs"]
    assert "0 delivered, 0 to retry" in ticks.tick()
    assert len(hook.received) == 2 and len(slack.received) == 1 and len(mails) == 2
    statuses = [r["status"] for r in Outbox(get_warehouse(sqlite_url)).rows(result.run_id)]
    assert statuses == ["delivered"] * 5


def test_a_run_marked_failed_that_then_succeeded_is_reported_once_by_the_check_sensor(
    channels, instance: dg.DagsterInstance, sqlite_url: str
) -> None:
    """Run monitoring may mark a run failed (its process not found) that then finishes: the failure
    event is there, the run ended green. The check sensor, which sees the success, reports it alone."""
    hook, _slack, _mails = channels
    assets = _routed_assets(f"{hook.url}/team")
    repo = dg.Definitions(assets=assets).get_repository_def()
    ticks = Ticks(instance, repo, sqlite_url)
    ticks.tick()
    result = dg.materialize(assets, instance=instance, partition_key="2025-03-14")
    run = instance.get_run_by_id(result.run_id)
    spurious = dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_FAILURE.value,
        job_name=run.job_name,
        message="Detected run worker status UNKNOWN: 'no run worker process recorded yet'.",
    )
    context = dg.build_run_status_sensor_context(
        sensor_name="notify_run_failures",
        dagster_event=spurious,
        dagster_instance=instance,
        dagster_run=run,
        resources=_resources(sqlite_url),
        repository_def=repo,
    ).for_run_failure()
    assert notify_run_failures(context).skip_message.endswith("ended SUCCESS: notify_failed_checks reports it")
    assert hook.received == []
    assert "1 with failed checks; 5 delivered" in ticks.tick()
    assert len(hook.received) == 2  # its two webhook destinations, once each


def test_a_message_is_given_up_after_the_last_round_and_kept(
    channels, instance: dg.DagsterInstance, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook, _slack, _mails = channels
    monkeypatch.setattr(notify, "RETRY_DELAY_S", 0.0)
    monkeypatch.setattr(notify, "MAX_ROUNDS", 2)
    monkeypatch.setenv("INGESTION_NOTIFY_MAX_ATTEMPTS", "1")
    hook.down = True
    repo = dg.Definitions(assets=[breaks]).get_repository_def()
    result = dg.materialize([breaks], instance=instance, partition_key="2025-03-15", raise_on_error=False)
    assert _failure_sensor(instance, result.run_id, repo, sqlite_url).endswith("2 delivered, 1 to retry, 0 given up")
    ticks = Ticks(instance, repo, sqlite_url)
    ticks.tick()
    assert "0 delivered, 0 to retry, 1 given up" in ticks.tick()
    [row] = [r for r in Outbox(get_warehouse(sqlite_url)).rows(result.run_id) if r["channel"] == "webhook"]
    assert row["status"] == "failed" and row["rounds"] == 2 and "HTTP 503" in row["last_error"]
    assert row["payload"]["problems"][0]["step"] == "tiny__breaks"
    assert "0 delivered, 0 to retry, 0 given up" in ticks.tick()


def test_no_channel_configured_sends_nothing_and_breaks_nothing(
    instance: dg.DagsterInstance, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("INGESTION_NOTIFY_WEBHOOK_URL", "INGESTION_NOTIFY_SLACK_WEBHOOK_URL", "INGESTION_NOTIFY_EMAIL_TO"):
        monkeypatch.delenv(name, raising=False)
    repo = dg.Definitions(assets=[breaks]).get_repository_def()
    result = dg.materialize([breaks], instance=instance, partition_key="2025-03-14", raise_on_error=False)
    assert _failure_sensor(instance, result.run_id, repo, sqlite_url).endswith("0 delivered, 0 to retry, 0 given up")
    assert Outbox(get_warehouse(sqlite_url)).rows() == []


def test_a_bad_setting_is_logged_not_a_broken_sensor(
    channels, instance: dg.DagsterInstance, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INGESTION_SMTP_PORT", "twenty-five")
    repo = dg.Definitions(assets=[breaks]).get_repository_def()
    result = dg.materialize([breaks], instance=instance, partition_key="2025-03-14", raise_on_error=False)
    said = _failure_sensor(instance, result.run_id, repo, sqlite_url)
    assert "INGESTION_SMTP_PORT='twenty-five' is not an integer" in said


def test_runs_of_another_code_location_are_not_notified(
    channels, instance: dg.DagsterInstance, sqlite_url: str
) -> None:
    hook, _slack, _mails = channels

    @dg.asset(key=["elsewhere", "breaks"])
    def elsewhere() -> None:
        raise ValueError("not ours")

    repo = dg.Definitions(assets=[breaks]).get_repository_def()  # this code location: tiny/breaks only
    ticks = Ticks(instance, repo, sqlite_url)
    ticks.tick()
    other = dg.materialize([elsewhere], instance=instance, raise_on_error=False)
    assert _failure_sensor(instance, other.run_id, repo, sqlite_url).endswith("is not a run of this code location")
    ours = dg.materialize([breaks], instance=instance, partition_key="2025-03-14", raise_on_error=False)
    assert _failure_sensor(instance, ours.run_id, repo, sqlite_url).endswith("3 delivered, 0 to retry, 0 given up")
    assert [b["run_id"] for b in hook.bodies()] == [ours.run_id]


# -- the platform's own assets: PMU on real-shaped data ----------------------------------------------
def _pmu(instance: dg.DagsterInstance, url: str, tmp_path: Path, base_url: str, **kwargs) -> dg.ExecuteInProcessResult:
    """PMU programme + participants (with their checks) from ``base_url``, one run on ``instance``."""
    kwargs.setdefault("selection", [programme, participants])
    return run_pmu(database_url=url, data_dir=tmp_path / "data", base_url=base_url, instance=instance, **kwargs)


def test_pmu_warnings_of_a_green_run_are_one_message(
    channels, instance: dg.DagsterInstance, sqlite_url: str, tmp_path: Path
) -> None:
    """A day with nothing published: programme and participants materialise 0 rows and their
    ``day_has_rows`` warnings fail; the run is green. One message per channel lists both."""
    hook, slack, mails = channels
    repo = defs().get_repository_def()  # the code location: its sensors and asset metadata
    ticks = Ticks(instance, repo, sqlite_url)
    ticks.tick()
    result = _pmu(instance, sqlite_url, tmp_path, f"file://{SAMPLE_DIR}", partition_key="2025-03-20")
    assert result.success
    assert "1 with failed checks; 3 delivered" in ticks.tick()
    [body] = hook.bodies()
    assert body["status"] == "SUCCESS" and body["partitions"] == ["2025-03-20"]
    assert body["assets"] == ["pmu/participants", "pmu/programme"]
    failed = {(p["assets"][0], p["check"], p["severity"], p["partition"]) for p in body["problems"]}
    assert failed == {
        ("pmu/programme", "day_has_rows", "WARN", "2025-03-20"),
        ("pmu/participants", "day_has_rows", "WARN", "2025-03-20"),
    }
    assert "programme (not published)" in next(p["error"] for p in body["problems"] if p["assets"] == ["pmu/programme"])
    assert len(slack.received) == 1 and len(mails) == 1
    assert "0 finished run(s)" in ticks.tick()


def test_pmu_blocking_check_failure_is_one_message_with_the_step_and_the_check(
    channels, instance: dg.DagsterInstance, sqlite_url: str, tmp_path: Path
) -> None:
    """An unparseable programme: the blocking ``source_loaded`` check fails the step and the run. The
    failure sensor sends the step's error and the failed check together; the check sensor stays quiet."""
    hook, slack, mails = channels
    replay = tmp_path / "replay"
    copy_day(SAMPLE_DIR, replay)
    (replay / "rest/client/1/programme/14032025.json").write_text('{"programme": {"reunions": "none"}}')
    repo = defs().get_repository_def()
    ticks = Ticks(instance, repo, sqlite_url)
    ticks.tick()
    result = _pmu(instance, sqlite_url, tmp_path, f"file://{replay}")
    assert not result.success
    assert _failure_sensor(instance, result.run_id, repo, sqlite_url).endswith("3 delivered, 0 to retry, 0 given up")
    assert "0 finished run(s)" in ticks.tick()  # a failed run is not the check sensor's
    [body] = hook.bodies()
    assert body["run_url"] == f"{UI}/runs/{result.run_id}" and body["partitions"] == [SAMPLE_DAY]
    kinds = {(p["kind"], p.get("check")) for p in body["problems"]}
    assert ("step_failure", None) in kinds and ("check_failed", "source_loaded") in kinds
    step = next(p for p in body["problems"] if p["kind"] == "step_failure")
    assert step["assets"] == ["pmu/programme"] and "source_loaded" in step["error"]
    check = next(p for p in body["problems"] if p.get("check") == "source_loaded")
    assert check["severity"] == "ERROR" and "nothing loaded" in check["error"]
    assert len(slack.received) == 1 and len(mails) == 1


def test_pmu_source_down_names_the_request_not_dagsters_wrapper(
    channels, instance: dg.DagsterInstance, sqlite_url: str, tmp_path: Path
) -> None:
    hook, _slack, _mails = channels
    repo = defs().get_repository_def()
    result = _pmu(instance, sqlite_url, tmp_path, "http://127.0.0.1:9", selection=[programme])
    assert not result.success
    _failure_sensor(instance, result.run_id, repo, sqlite_url)
    [problem] = hook.bodies()[0]["problems"]
    assert problem["error"].startswith("HttpError: GET http://127.0.0.1:9/rest/client/1/programme/14032025: ")
    assert "gave up after 6 attempts" in problem["error"]


def test_events_ranged_run_with_a_missing_feed_is_one_message(
    channels, instance: dg.DagsterInstance, sqlite_url: str, tmp_path: Path
) -> None:
    """The shipped iCalendar sample plus a configured feed that does not exist, over three days in one
    run: ``source_loaded`` fails for the days (blocking: the run fails). One message, the range named."""
    hook, slack, mails = channels
    feeds = [
        {"name": "bibliotheques", "url": str(EVENTS_SAMPLE / "ics" / "bibliotheques.ics")},
        {"name": "gone", "url": str(tmp_path / "missing.ics")},
    ]
    result = dg.materialize(
        [ics_feeds],
        instance=instance,
        raise_on_error=False,
        tags={"dagster/asset_partition_range_start": "2025-03-13", "dagster/asset_partition_range_end": "2025-03-15"},
        resources={
            "ics_feeds": IcsFeeds(feeds_json=json.dumps(feeds), max_attempts=1),
            "warehouse": WarehouseResource(database_url=sqlite_url),
            "raw_store": RawStoreResource(data_dir=str(tmp_path / "data")),
        },
    )
    assert not result.success
    repo = defs().get_repository_def()
    assert _failure_sensor(instance, result.run_id, repo, sqlite_url).endswith("3 delivered, 0 to retry, 0 given up")
    [body] = hook.bodies()
    assert body["partitions"] == ["2025-03-13...2025-03-15"] and body["assets"] == ["events/ics"]
    failed = [p for p in body["problems"] if p.get("check") == "source_loaded"]
    assert sorted(p["partition"] for p in failed) == ["2025-03-13", "2025-03-14", "2025-03-15"]
    assert all("feed_gone" in p["error"] for p in failed)
    assert any(p["kind"] == "step_failure" for p in body["problems"])
    assert len(slack.received) == 1 and len(mails) == 1


def test_the_code_location_registers_both_sensors_on_every_job() -> None:
    repo = defs().get_repository_def()
    sensors = {s.name: s for s in repo.sensor_defs}
    assert {"notify_run_failures", "notify_failed_checks"} <= set(sensors)
    # No monitored jobs: the failure sensor watches every job of the code location (__ASSET_JOB too).
    assert sensors["notify_run_failures"].sensor_type.value == "RUN_STATUS"
    assert sensors["notify_run_failures"].default_status == sensors["pmu_late_rapports_sensor"].default_status
