"""Warehouse fixtures: SQLite always; PostgreSQL too, required when ``CI`` is set.

PostgreSQL tests run against ``INGESTION_TEST_DATABASE_URL`` (default the local server's ``test``
database): each test gets a fresh database created from it and dropped afterwards, so tests never
see each other's schemas.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ingestion_platform.lib import warehouse as warehouse_module
from ingestion_platform.lib.raw_store import RawStore
from ingestion_platform.lib.warehouse import Warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]
# The recorded data lives beside the repository; a git worktree elsewhere (e.g. ../wt/<branch>) points at it
# with INGESTION_SHARED_DIR.
SHARED = Path(os.environ.get("INGESTION_SHARED_DIR") or REPO_ROOT.parent / "shared")
PG_DEFAULT = "postgresql://root@127.0.0.1:5432/test"


def cli_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a Dagster or operator CLI subprocess. Those commands read ``.env`` from their working
    directory, over the environment, so tests run them outside the repository (where a developer's
    ``make .env`` points the sources at the samples), e.g. in their ``DAGSTER_HOME``; the repository goes
    first on ``PYTHONPATH`` so that the code under test is the one imported."""
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)}


def require_shared(subdir: str) -> Path:
    """``../shared/<subdir>``: skipped with a reason when absent, a failure in CI."""
    path = SHARED / subdir
    if not path.exists():
        reason = f"{path} not found (real recorded data lives beside the repository)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def _admin_url() -> sa.URL:
    url = sa.make_url(os.environ.get("INGESTION_TEST_DATABASE_URL") or PG_DEFAULT)
    return url.set(drivername="postgresql+psycopg2")


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    engine = sa.create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        reason = f"PostgreSQL not reachable at {_admin_url().render_as_string()}: {exc.orig}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin: sa.Engine) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    name = f"ip_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = _admin_url().set(database=name).render_as_string(hide_password=False)
    yield url
    _forget(url)
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'wh' / 'warehouse.db'}"
    yield url
    _forget(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture
def warehouse(warehouse_url: str) -> Warehouse:
    return warehouse_module.get_warehouse(warehouse_url)


@pytest.fixture
def raw_store(tmp_path: Path) -> RawStore:
    return RawStore(tmp_path / "data")


def _forget(url: str) -> None:
    """Dispose the process-wide engine for ``url`` so its database can be dropped."""
    key = warehouse_module._normalise_url(url).render_as_string(hide_password=False)
    instance = warehouse_module._INSTANCES.pop(key, None)
    if instance is not None:
        instance.engine.dispose()


@pytest.fixture
def sleeps() -> list[float]:
    """The backoff sleeps an HTTP client asked for (pass ``sleep=sleeps.append``): no real waiting."""
    return []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The browser tests (minutes of waiting on dagster dev) and the production topology's test first: on
    pytest-xdist workers they then run beside the rest of the suite instead of after it. The order stays
    deterministic, as xdist needs."""
    slow = ("browser", "prod")
    items.sort(key=lambda item: 0 if any(item.get_closest_marker(m) for m in slow) else 1)
