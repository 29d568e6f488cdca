"""Settings: one convention (``lib.settings``), read at run time, every one listed in ``.env.example``."""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import dagster as dg
import pytest

from ingestion_platform.definitions import defs
from ingestion_platform.defs.events import schedules as events_schedules
from ingestion_platform.defs.events.resources import EventbriteApi, IcsFeeds, MontrealOpenData
from ingestion_platform.defs.pmu import schedules as pmu_schedules
from ingestion_platform.defs.pmu.resources import PmuApi
from ingestion_platform.lib.settings import (
    Setting,
    SettingError,
    SourceSettings,
    all_settings,
    definition_setting,
    run_setting,
    setting,
)
from ingestion_platform.lib.warehouse import Warehouse
from ingestion_platform_tests import local_http

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = REPO_ROOT / ".env.example"
PACKAGE = "ingestion_platform."
NAME = r"([A-Z][A-Z0-9_]*)"
READS = [
    re.compile(rf"os\.environ\.get\(\s*[\"']{NAME}[\"']"),
    re.compile(rf"os\.environ\[\s*[\"']{NAME}[\"']\s*\]"),
    re.compile(rf"os\.getenv\(\s*[\"']{NAME}[\"']"),
    re.compile(rf"EnvVar(?:\.int)?\(\s*[\"']{NAME}[\"']"),
    re.compile(rf"\b(?:run_setting|definition_setting|setting)\(\s*[\"']{NAME}[\"']"),
]
YAML_ENV = re.compile(rf"^\s*env:\s*{NAME}\s*$", re.MULTILINE)
ENTRY = re.compile(rf"^#?\s*{NAME}=")


# -- every setting is in .env.example ------------------------------------------------------------
@functools.cache
def _platform_settings() -> list[Setting]:
    defs()  # imports every module of defs/, so every declaration is registered
    return [s for s in all_settings() if any(o.startswith(PACKAGE) for o in s.owners)]


def _scanned_names() -> dict[str, str]:
    """Environment variable names read in the source tree -> a file that reads it."""
    found: dict[str, str] = {}
    sources = [*(REPO_ROOT / "ingestion_platform").rglob("*.py"), *(REPO_ROOT / "benchmarks").rglob("*.py")]
    sources.append(REPO_ROOT / "ingestion_platform_tests" / "conftest.py")
    for path in sources:
        text = path.read_text(encoding="utf-8")
        for pattern in READS:
            for name in pattern.findall(text):
                found.setdefault(name, str(path.relative_to(REPO_ROOT)))
    for path in [*REPO_ROOT.glob("*.yaml"), *(REPO_ROOT / "deploy").glob("*.yaml")]:
        for name in YAML_ENV.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name, str(path.relative_to(REPO_ROOT)))
    return found


def _env_example_entries(text: str) -> dict[str, int]:
    """Setting name -> line number, for ``NAME=value`` and commented ``# NAME=value`` lines."""
    return {m.group(1): i for i, line in enumerate(text.splitlines()) if (m := ENTRY.match(line))}


def _missing(text: str, names: set[str]) -> list[str]:
    return sorted(names - set(_env_example_entries(text)))


def test_the_scan_sees_the_known_reads() -> None:
    scanned = _scanned_names()
    # One of each pattern kind: os.environ.get, a yaml env key, setting(...), run_setting(...).
    assert {"INGESTION_DATA_DIR", "DAGSTER_PG_URL", "PMU_API_BASE_URL", "EVENTS_REFRESH_DAYS"} <= set(scanned)


def test_env_example_lists_every_setting_the_code_reads() -> None:
    registered = {s.env for s in _platform_settings()}
    read = registered | set(_scanned_names()) | {"DAGSTER_HOME"}
    missing = _missing(ENV_EXAMPLE.read_text(encoding="utf-8"), read)
    assert not missing, f".env.example lacks {missing}: add each with a one-line comment"


def test_the_env_example_check_fails_when_one_is_missing() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    without = "\n".join(line for line in text.splitlines() if not line.startswith("PMU_DAYS_PER_RUN="))
    assert _missing(without, {"PMU_DAYS_PER_RUN", "PMU_MAX_ATTEMPTS"}) == ["PMU_DAYS_PER_RUN"]


def test_every_env_example_entry_has_a_one_line_comment() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    for name, i in _env_example_entries("\n".join(lines)).items():
        above = lines[i - 1] if i else ""
        assert above.startswith("#") and not ENTRY.match(above), f"{name} needs a comment line above it"


def test_readme_configuration_table_lists_every_registered_setting() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = sorted(s.env for s in _platform_settings() if f"`{s.env}`" not in table)
    assert not missing, f"README configuration table lacks {missing}"


# -- the convention ------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _no_platform_settings_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shell's PMU_* / EVENTS_* ... must not change what these tests see."""
    for declared in _platform_settings():
        if declared.read_at == "run":
            monkeypatch.delenv(declared.env, raising=False)


class _Demo(SourceSettings):
    attempts: int | None = setting("SETTINGS_TEST_ATTEMPTS", 6, "attempts")
    ratio: float | None = setting("SETTINGS_TEST_RATIO", 0.5, "a ratio")
    url: str | None = setting("SETTINGS_TEST_URL", "https://example.org", "a URL")
    ids: list[str] | None = setting("SETTINGS_TEST_IDS", [], "ids")
    enabled: bool | None = setting("SETTINGS_TEST_ENABLED", False, "a switch")
    password: str | None = setting("SETTINGS_TEST_PASSWORD", None, "a secret", secret=True)
    label: str = "plain field"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for declared in _Demo.declared_settings().values():
        monkeypatch.delenv(declared.env, raising=False)
    return monkeypatch


def test_explicit_config_wins_then_environment_then_default(clean_env: pytest.MonkeyPatch) -> None:
    defaults = _Demo().resolved()
    assert (defaults.attempts, defaults.ratio, defaults.ids, defaults.enabled) == (6, 0.5, [], False)
    assert (defaults.url, defaults.label) == ("https://example.org", "plain field")

    clean_env.setenv("SETTINGS_TEST_ATTEMPTS", " 9 ")
    clean_env.setenv("SETTINGS_TEST_RATIO", "2")
    clean_env.setenv("SETTINGS_TEST_IDS", "a, b,,c ")
    clean_env.setenv("SETTINGS_TEST_ENABLED", "yes")
    clean_env.setenv("SETTINGS_TEST_URL", "")  # empty = not set
    from_env = _Demo().resolved()
    assert (from_env.attempts, from_env.ratio, from_env.ids, from_env.enabled) == (9, 2.0, ["a", "b", "c"], True)
    assert from_env.url == "https://example.org"

    explicit = _Demo(attempts=2, ratio=0.1, ids=["z"], enabled=False, url="https://other.example").resolved()
    assert (explicit.attempts, explicit.ratio, explicit.ids, explicit.enabled) == (2, 0.1, ["z"], False)
    assert explicit.url == "https://other.example"


def test_settings_are_read_at_run_time_not_when_the_resource_is_built(clean_env: pytest.MonkeyPatch) -> None:
    resource = _Demo()
    clean_env.setenv("SETTINGS_TEST_ATTEMPTS", "3")
    assert resource.resolved().attempts == 3
    assert resource.attempts is None  # the resource itself still says "not set"

    seen = {}

    @dg.asset
    def uses_it(demo: _Demo) -> None:
        seen["attempts"] = demo.attempts  # Dagster hands the asset the resolved copy

    clean_env.setenv("SETTINGS_TEST_ATTEMPTS", "4")
    assert dg.materialize([uses_it], resources={"demo": resource}).success
    assert seen == {"attempts": 4}


def test_a_bad_environment_value_names_the_variable(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SETTINGS_TEST_ATTEMPTS", "abc")
    with pytest.raises(SettingError, match=r"^SETTINGS_TEST_ATTEMPTS='abc' is not an integer$"):
        _Demo().resolved()
    clean_env.delenv("SETTINGS_TEST_ATTEMPTS")
    clean_env.setenv("SETTINGS_TEST_ENABLED", "maybe")
    with pytest.raises(SettingError, match=r"SETTINGS_TEST_ENABLED='maybe' is not a boolean"):
        _Demo().resolved()


def test_real_resources_name_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMU_MAX_ATTEMPTS", "abc")
    with pytest.raises(SettingError, match=r"PMU_MAX_ATTEMPTS='abc' is not an integer"):
        PmuApi().resolved()
    monkeypatch.setenv("EVENTS_READ_TIMEOUT_S", "soon")
    with pytest.raises(SettingError, match=r"EVENTS_READ_TIMEOUT_S='soon' is not a number"):
        MontrealOpenData().client()
    monkeypatch.setenv("EVENTS_REFRESH_DAYS", "x")
    with pytest.raises(SettingError, match=r"EVENTS_REFRESH_DAYS='x' is not an integer"):
        events_schedules.refresh_range(dt.datetime(2026, 3, 8, 10, tzinfo=dt.UTC))


def test_secrets_stay_out_of_repr_config_and_errors(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SETTINGS_TEST_PASSWORD", "hunter2-secret")
    resource = _Demo()
    snapshot = resource.resolved()
    assert snapshot.secret("password") == "hunter2-secret"
    for shown in (repr(resource), repr(snapshot), str(resource.model_dump()), str(snapshot.model_dump())):
        assert "hunter2" not in shown
    assert snapshot.password is None  # never copied into a field
    # Even when given explicitly, the resolved copy keeps it out of its fields.
    explicit = _Demo(password="hunter2-explicit").resolved()
    assert explicit.password is None and "hunter2" not in repr(explicit)
    assert explicit.secret("password") == "hunter2-explicit"
    # A secret that fails to cast is not echoed.
    bad = Setting("SETTINGS_TEST_PIN", 0, "a pin", int, secret=True)
    with pytest.raises(SettingError) as raised:
        bad.read({"SETTINGS_TEST_PIN": "12x4-secret"})
    assert "12x4" not in str(raised.value) and "SETTINGS_TEST_PIN" in str(raised.value)


def test_a_secret_can_come_from_an_envvar_in_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVENTBRITE_TOKEN", raising=False)
    monkeypatch.setenv("SETTINGS_TEST_OTHER_TOKEN", "tok-from-envvar")
    api = EventbriteApi(token=dg.EnvVar("SETTINGS_TEST_OTHER_TOKEN"))
    assert api.resolved().secret("token") == "tok-from-envvar"
    seen = {}

    @dg.asset
    def reads_token(eventbrite_api: EventbriteApi) -> None:
        seen["token"] = eventbrite_api.secret("token")

    with dg.instance_for_test() as instance:
        result = dg.materialize([reads_token], resources={"eventbrite_api": api}, instance=instance)
        assert result.success
        stored = [dg.serialize_value(e) for e in instance.all_logs(result.run_id)]
        stored.append(dg.serialize_value(instance.get_run_by_id(result.run_id)))
    assert seen == {"token": "tok-from-envvar"}
    assert all("tok-from-envvar" not in line for line in stored)


def test_the_token_read_at_run_time_is_sent_but_in_no_run_record(
    monkeypatch: pytest.MonkeyPatch, recording_server
) -> None:
    url, seen = recording_server
    api = EventbriteApi(api_url=f"{url}/v3", organization_ids=["42"], max_attempts=1)
    monkeypatch.setenv("EVENTBRITE_TOKEN", "tok-run-time-secret")  # after the resource is built

    @dg.asset
    def describes(eventbrite_api: EventbriteApi) -> dg.MaterializeResult:
        with eventbrite_api.client() as client:
            for org in eventbrite_api.organization_ids:
                eventbrite_api.events_page(client, org, {})
        return dg.MaterializeResult(metadata={"provider": eventbrite_api.provider, "api": repr(eventbrite_api)})

    with dg.instance_for_test() as instance:
        result = dg.materialize([describes], resources={"eventbrite_api": api}, instance=instance)
        assert result.success
        stored = [dg.serialize_value(e) for e in instance.all_logs(result.run_id)]
        stored.append(dg.serialize_value(instance.get_run_by_id(result.run_id)))
    assert seen == [("/v3/organizations/42/events/", "Bearer tok-run-time-secret")]
    assert any("eventbrite 127.0.0.1" in line for line in stored)
    assert all("tok-run-time-secret" not in line for line in stored)


def test_run_and_definition_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    later = run_setting("SETTINGS_TEST_LATER", 5, "read when used")
    monkeypatch.setenv("SETTINGS_TEST_LATER", "8")
    assert later.read() == 8 and later.read_at == "run"
    monkeypatch.setenv("SETTINGS_TEST_SHAPE", "2020-01-01")
    assert definition_setting("SETTINGS_TEST_SHAPE", "2013-03-01", "first partition") == "2020-01-01"
    registered = {s.env: s for s in all_settings()}
    assert registered["SETTINGS_TEST_SHAPE"].read_at == "definitions"
    with pytest.raises(SettingError, match="declared twice differently"):
        run_setting("SETTINGS_TEST_LATER", 6, "another default")


def test_schedules_and_sensor_read_their_settings_when_evaluated(monkeypatch: pytest.MonkeyPatch) -> None:
    now = dt.datetime(2026, 3, 8, 10, tzinfo=dt.UTC)
    monkeypatch.delenv("EVENTS_REFRESH_DAYS", raising=False)
    assert events_schedules.refresh_range(now) == ("2026-03-07", "2026-04-06")
    monkeypatch.setenv("EVENTS_REFRESH_DAYS", "10")
    assert events_schedules.refresh_range(now) == ("2026-03-07", "2026-03-17")
    monkeypatch.setenv("PMU_LATE_RAPPORTS_DAYS", "5")
    monkeypatch.setenv("PMU_LATE_RAPPORTS_EVERY_H", "0.5")
    assert pmu_schedules.LATE_RAPPORTS_DAYS.read() == 5
    assert pmu_schedules.LATE_RAPPORTS_EVERY_H.read() == 0.5


def test_warehouse_work_mem_is_read_when_a_warehouse_is_created(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("INGESTION_PG_WORK_MEM", "64MB'; DROP TABLE x; --")
    wh = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    assert wh.pg_work_mem == "64MBDROPTABLEx"  # sanitised: it is spliced into SET LOCAL
    wh.engine.dispose()
    monkeypatch.setenv("INGESTION_PG_WORK_MEM", "';")
    wh = Warehouse(f"sqlite:///{tmp_path / 'w.db'}")
    assert wh.pg_work_mem == "256MB"
    wh.engine.dispose()


def test_http_settings_written_once_with_each_familys_names(monkeypatch: pytest.MonkeyPatch) -> None:
    names = ("max_concurrency", "connect_timeout_s", "read_timeout_s", "max_attempts", "backoff_base_s")
    pmu, events = PmuApi.declared_settings(), EventbriteApi.declared_settings()
    assert [pmu[n].env for n in names] == [f"PMU_{n.upper()}" for n in names]
    for cls in (EventbriteApi, MontrealOpenData, IcsFeeds):
        assert [cls.declared_settings()[n].env for n in names] == [f"EVENTS_{n.upper()}" for n in names]
    assert (pmu["max_concurrency"].default, events["max_concurrency"].default) == (8, 4)
    assert PmuApi.__mro__[1].__name__ == "PmuHttpSettings"

    monkeypatch.setenv("PMU_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("PMU_BACKOFF_BASE_S", "0.25")
    with PmuApi(read_timeout_s=3.0).client() as client:
        assert (client.retry.max_attempts, client.retry.backoff_base_s, client.read_timeout_s) == (2, 0.25, 3.0)
        assert client.max_concurrency == 8


def test_providers_never_carry_credentials() -> None:
    assert PmuApi(base_url="https://user:pw@pmu.example:8443/api?key=abc").provider == "https://pmu.example:8443/api"
    assert PmuApi(base_url="file:///srv/replay").provider == "replay file:///srv/replay"
    assert EventbriteApi(api_url="https://u:p@eb.example/v3").provider == "eventbrite eb.example"
    assert MontrealOpenData(ckan_url="https://u:p@ckan.example:8080").provider == "ckan ckan.example:8080"


# -- Eventbrite organization ids are one path segment -------------------------------------------------
@pytest.fixture
def recording_server() -> Iterator[tuple[str, list[tuple[str, str | None]]]]:
    seen: list[tuple[str, str | None]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path.split("?", 1)[0], self.headers.get("Authorization")))
            body = json.dumps({"events": [], "pagination": {"has_more_items": False}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server, url = local_http.start(Handler)
    try:
        yield url, seen
    finally:
        local_http.stop(server)


def test_organization_id_is_encoded_as_one_path_segment(recording_server) -> None:
    url, seen = recording_server
    org = "../../v3/users/me/owned_events/x"
    api = EventbriteApi(api_url=f"{url}/v3", token="tok-1", organization_ids=[org], max_attempts=1)
    with api.client() as client:
        assert api.events_page(client, org, {}).status == 200
    assert seen == [("/v3/organizations/..%2F..%2Fv3%2Fusers%2Fme%2Fowned_events%2Fx/events/", "Bearer tok-1")]


@pytest.mark.parametrize("org", ["", ".", ".."])
def test_organization_ids_that_are_dot_segments_are_refused(org: str, recording_server) -> None:
    url, seen = recording_server
    api = EventbriteApi(api_url=f"{url}/v3", token="tok-1", max_attempts=1)
    with api.client() as client, pytest.raises(SettingError, match="cannot be a URL path segment"):
        api.events_page(client, org, {})
    with pytest.raises(SettingError, match="EVENTBRITE_ORGANIZATION_IDS"):
        EventbriteApi(organization_ids=["42", org]).resolved()
    assert seen == []


# -- building the definitions reads no run-time setting --------------------------------------------------
_PROBE = r"""
import json, os, sys
from collections.abc import MutableMapping
from pathlib import Path

PROJECT = str(Path("ingestion_platform").resolve())
PLUMBING = ("_collections_abc.py", "<frozen _collections_abc>", "/os.py", "<frozen os>")


class Recording(MutableMapping):
    # os.environ that remembers the names project code looks up itself (not Dagster's or httpx's).
    def __init__(self, real):
        self.real, self.read = real, set()

    def _note(self, key):
        # Who asked: the first caller outside Mapping.get / os.getenv.
        frame = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename.endswith(PLUMBING):
            frame = frame.f_back
        if frame is not None and frame.f_code.co_filename.startswith(PROJECT):
            self.read.add(key)

    def __getitem__(self, key):
        self._note(key)
        return self.real[key]

    def __contains__(self, key):
        self._note(key)
        return key in self.real

    def __setitem__(self, key, value):
        self.real[key] = value

    def __delitem__(self, key):
        del self.real[key]

    def __iter__(self):
        return iter(self.real)

    def __len__(self):
        return len(self.real)

    def copy(self):
        return dict(self.real)


recording = os.environ = Recording(os.environ)
from ingestion_platform.definitions import defs

d = defs()
d.validate_loadable(d)
read_while_building = sorted(recording.read)

from ingestion_platform.lib.settings import SettingError, SourceSettings, all_settings

errors = {}
for key, resource in sorted((d.resources or {}).items()):
    if isinstance(resource, SourceSettings):
        try:
            resource.resolved()
            errors[key] = None
        except SettingError as exc:
            errors[key] = str(exc)
ours = [s for s in all_settings() if any(o.startswith("ingestion_platform.") for o in s.owners)]
run_time = sorted(s.env for s in ours if s.read_at == "run")
print(json.dumps({"read": read_while_building, "errors": errors, "run_time": run_time}))
"""


def test_building_the_definitions_reads_no_run_time_setting(tmp_path: Path) -> None:
    # The sync API's own settings (ingestion_platform.api) are no part of the definitions: whether this
    # process registered them depends on which tests ran in it first.
    api = "ingestion_platform.api"
    run_time = [s for s in _platform_settings() if s.read_at == "run" and not all(o.startswith(api) for o in s.owners)]
    assert len(run_time) > 20
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DAGSTER_HOME": str(tmp_path)}
    env.update({s.env: "garbage" for s in run_time})
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(probe["run_time"]) == {s.env for s in run_time}
    read_early = sorted(set(probe["read"]) & set(probe["run_time"]))
    assert not read_early, f"run-time settings read while building the definitions: {read_early}"
    # The project does read the settings that shape the definitions then (partition starts ...).
    assert "PMU_START_DATE" in probe["read"]
    # Resolving, as a run does, fails on the first garbage number and names it.
    assert probe["errors"]["pmu_api"] == "PMU_MAX_CONCURRENCY='garbage' is not an integer"
    assert probe["errors"]["eventbrite_api"] == "EVENTS_MAX_CONCURRENCY='garbage' is not an integer"
    assert probe["errors"]["montreal_open_data"].endswith("'garbage' is not an integer")
    assert probe["errors"]["ics_feeds"] == "EVENTS_MAX_CONCURRENCY='garbage' is not an integer"
