"""The deployment files beside ``make prod-up``: the Helm values and the compose file are valid.

* ``deploy/docker-compose.yaml``: YAML; ``docker compose config -q`` when the compose plugin is
  installed; every service runs a command this project installs, with files that exist; the Celery
  worker config is a valid config of dagster-celery's executor and carries ``lib.scale_out``'s settings;
  the environment names settings of ``.env.example`` (every setting the platform reads).
* ``deploy/helm/values.yaml``: YAML, and every key it uses is a key of Dagster's official chart, version
  1.13.27 (the tree below, written from the chart's schema, ``helm/dagster/schema`` in the Dagster
  repository at that release); the custom run coordinator's config is valid for the class it names.
  ``helm lint`` is not run: helm is not installed on the CI machines.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import ingestion_platform.definitions as definitions
from ingestion_platform.lib import scale_out
from ingestion_platform.lib.run_coordinator import SourceTaggedRunCoordinator

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yaml"
VALUES = DEPLOY / "helm" / "values.yaml"

# The keys of the chart's values this project may use (a subset of the chart's), per object. A value
# of ``None`` is a free-form object (Kubernetes objects, env lists, the run coordinator's config).
_IMAGE = {"repository": None, "tag": None, "pullPolicy": None}
_ENV_SOURCES = {"env": None, "envConfigMaps": None, "envSecrets": None}
_POD = {"nodeSelector": None, "affinity": None, "tolerations": None, "resources": None, "annotations": None,
        "volumes": None, "volumeMounts": None, "labels": None}  # fmt: skip
CHART_1_13_27: dict[str, Any] = {
    "global": {"postgresqlSecretName": None, "dagsterHome": None, "serviceAccountName": None},
    "dagsterWebserver": {"replicaCount": None, "image": _IMAGE, "service": {"type": None, "port": None},
                         "workspace": None, **_ENV_SOURCES, **_POD},
    "dagster-user-deployments": {
        "enabled": None, "enableSubchart": None,
        "deployments": [{"name": None, "image": _IMAGE, "dagsterApiGrpcArgs": None, "codeServerArgs": None,
                         "port": None, "includeConfigInLaunchedRuns": {"enabled": None}, **_ENV_SOURCES, **_POD}],
    },
    "runLauncher": {"type": None, "config": {"k8sRunLauncher": {**_ENV_SOURCES, "envVars": None, "jobNamespace": None,
                                                                 "volumes": None, "volumeMounts": None}}},
    "postgresql": {"enabled": None, "image": _IMAGE, "postgresqlHost": None, "postgresqlUsername": None,
                   "postgresqlPassword": None, "postgresqlDatabase": None, "postgresqlParams": None,
                   "service": {"port": None}},
    "rabbitmq": {"enabled": None, "rabbitmq": {"username": None, "password": None}, "service": {"port": None}},
    "dagsterDaemon": {
        "enabled": None, "image": _IMAGE, **_ENV_SOURCES, **_POD,
        "runCoordinator": {"enabled": None, "type": None, "config": {
            "queuedRunCoordinator": {"maxConcurrentRuns": None, "tagConcurrencyLimits": None},
            "customRunCoordinator": {"module": None, "class": None, "config": None}}},
        "runMonitoring": {"enabled": None, "startTimeoutSeconds": None, "pollIntervalSeconds": None,
                          "maxResumeRunAttempts": None, "cancelTimeoutSeconds": None},
        "runRetries": {"enabled": None, "maxRetries": None, "retryOnAssetOrOpFailure": None},
    },
    "telemetry": {"enabled": None},
}  # fmt: skip


def _unknown_keys(value: Any, schema: Any, path: str = "") -> list[str]:
    if schema is None:
        return []
    if isinstance(schema, list):
        assert isinstance(value, list), f"{path}: a list in the chart"
        return [k for i, item in enumerate(value) for k in _unknown_keys(item, schema[0], f"{path}[{i}]")]
    assert isinstance(value, dict), f"{path}: an object in the chart, not {value!r}"
    out = []
    for key, item in value.items():
        where = f"{path}.{key}" if path else key
        out += [where] if key not in schema else _unknown_keys(item, schema[key], where)
    return out


def test_helm_values_use_only_keys_of_the_chart() -> None:
    values = yaml.safe_load(VALUES.read_text())
    assert _unknown_keys(values, CHART_1_13_27) == []
    # the tree is a real constraint: a misspelt key is reported
    assert _unknown_keys({"dagsterDaemon": {"runMonitor": {}}}, CHART_1_13_27) == ["dagsterDaemon.runMonitor"]


def test_helm_values_run_the_platform() -> None:
    values = yaml.safe_load(VALUES.read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", definitions.__name__]
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env["INGESTION_AUTOMATION"] == "running"
    assert env["INGESTION_EXECUTOR"] in definitions.MODES
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    custom = coordinator["config"]["customRunCoordinator"]
    assert coordinator["type"] == "CustomRunCoordinator"
    assert (custom["module"], custom["class"]) == (SourceTaggedRunCoordinator.__module__, "SourceTaggedRunCoordinator")
    from dagster._config import validate_config

    assert validate_config(SourceTaggedRunCoordinator.config_type(), custom["config"]).success
    # the same limit as deploy/dagster.yaml
    instance = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert custom["config"]["tag_concurrency_limits"] == instance["concurrency"]["runs"]["tag_concurrency_limits"]


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_file_is_valid_for_docker_compose() -> None:
    compose = _compose()
    assert {"postgres", "rabbitmq", "code-server", "webserver", "daemon", "celery-worker"} <= set(compose["services"])
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        return  # the structure below is still checked; `docker compose config` needs the compose plugin
    done = subprocess.run([docker, "compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_compose_services_run_commands_and_files_of_the_project() -> None:
    services = _compose()["services"]
    installed = Path(sys.executable).parent
    for name, service in services.items():
        if "build" not in service:
            continue
        command = service["command"]
        assert (installed / command[0]).exists(), f"{name}: {command[0]} is not installed by the project"
        for arg in command:
            if arg.startswith("deploy/"):
                assert (REPO / arg).is_file(), f"{name}: {arg} missing"
    declared = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (REPO / ".env.example").read_text(), re.MULTILINE))
    environment = services["webserver"]["environment"]
    assert set(environment) <= declared, set(environment) - declared
    assert environment["INGESTION_EXECUTOR"] == "celery"
    workspace = yaml.safe_load((DEPLOY / "compose-workspace.yaml").read_text())
    (server,) = workspace["load_from"]
    assert server["grpc_server"]["port"] == int(services["code-server"]["command"][-1])


def test_compose_celery_worker_config_is_the_executor_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster_celery.cli import get_validated_config

    path = DEPLOY / "celery-worker.yaml"
    config = get_validated_config(str(path))
    assert config["config_source"] == {**scale_out.CELERY_APP_SETTINGS, "worker_concurrency": 1}
    assert config["broker"].startswith("amqp://")
    written = scale_out.worker_config(config["broker"], 1)
    assert yaml.safe_load(path.read_text()) == written  # the file make prod-up writes, with the compose broker
