"""Settings: declared once (environment variable, default, meaning), read when they are used.

Every setting the platform reads from the environment is declared through this module, and this
module is the only one that reads them. There are three kinds of declaration:

``setting(env, default, description, secret=False)``
    A field of a ``SourceSettings`` resource. The field defaults to ``None``, meaning "not set in
    the resource config". ``resolved()`` returns a copy of the resource with every setting filled,
    read at that moment: the explicit resource config wins, else the environment variable (cast to
    the field's type; a bad value raises ``SettingError`` naming the variable), else the default.
    Dagster calls it when it initialises the resource for a run or a sensor evaluation, so the
    object an asset receives already holds the run's values; building the definitions reads
    nothing. A ``secret`` is never copied into a field: it lives in the resolved copy's private
    state only (no repr, no config, no metadata). Passing ``dg.EnvVar`` in code still works for it.

``run_setting(env, default, description)``
    A setting read by plain code (a sensor, the warehouse): call ``.read()`` where it is used.

``definition_setting(env, default, description)``
    Read now, at import. Only for what shapes the definitions: partition start dates, partition
    end offsets, the backfill policy's days per run.

``all_settings()`` lists every declaration (the ``.env.example`` test and the README use it).
``http_settings(prefix)`` is the HTTP client settings of a family of sources, written once:
``PMU_MAX_ATTEMPTS``, ``EVENTS_MAX_ATTEMPTS`` ...
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Self

import dagster as dg
from pydantic import Field, PrivateAttr

from ingestion_platform.lib.http import HttpClient, HttpRetry

ReadAt = Literal["run", "definitions"]
_TYPES = (str, int, float, bool, list)
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


class SettingError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """One declared setting. ``read()`` returns its value from the environment, else the default."""

    env: str
    default: Any
    description: str
    kind: type = str  # str, int, float, bool or list (comma-separated strings)
    secret: bool = False
    read_at: ReadAt = "run"
    owners: tuple[str, ...] = ()

    def read(self, environ: Mapping[str, str] | None = None) -> Any:
        """The environment's value (an empty variable counts as unset), cast; else the default."""
        raw = (os.environ if environ is None else environ).get(self.env)
        if raw is None or not raw.strip():
            return self.default
        return _cast(self, raw)

    def __repr__(self) -> str:
        return f"Setting({self.env}, default={self.default!r}, {self.kind.__name__}, read at {self.read_at})"


def _cast(declared: Setting, raw: str) -> Any:
    text = raw.strip()
    shown = "<secret>" if declared.secret else repr(raw)
    kind = declared.kind
    try:
        if kind is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        what = {bool: "a boolean (true/false)", int: "an integer", float: "a number"}[kind]
        raise SettingError(f"{declared.env}={shown} is not {what}") from None
    if kind is list:
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


# -- the registry ---------------------------------------------------------------------------------
_REGISTRY: dict[str, Setting] = {}


def _register(declared: Setting) -> Setting:
    known = _REGISTRY.get(declared.env)
    if known is None:
        _REGISTRY[declared.env] = declared
        return declared

    def identity(s: Setting) -> tuple:
        return s.default, s.kind, s.secret, s.read_at

    if identity(known) != identity(declared):
        raise SettingError(
            f"{declared.env} declared twice differently: {known!r} by {', '.join(known.owners)}, "
            f"{declared!r} by {', '.join(declared.owners)}"
        )
    merged = dataclasses.replace(known, owners=tuple(dict.fromkeys(known.owners + declared.owners)))
    _REGISTRY[declared.env] = merged
    return merged


def all_settings() -> list[Setting]:
    """Every setting declared so far (import the definitions first to see them all), by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def _kind_of(default: Any, kind: type | None) -> type:
    if kind is None:
        if default is None:
            raise TypeError("a setting without a default needs an explicit type")
        kind = list if isinstance(default, (list, tuple)) else type(default)
    if kind not in _TYPES:
        raise TypeError(f"unsupported setting type {kind!r}: use one of {_TYPES}")
    return kind


def _owner(depth: int = 2) -> str:
    """The module that called the declaring function."""
    return str(sys._getframe(depth).f_globals.get("__name__", "?"))


def run_setting(env: str, default: Any, description: str, *, kind: type | None = None, secret: bool = False) -> Setting:
    """Declare a setting read at run (or sensor evaluation) time: call ``.read()`` where it is used.

    ``kind`` defaults to the type of ``default``.
    """
    declared = Setting(env, default, description, _kind_of(default, kind), secret, "run", (_owner(),))
    return _register(declared)


def definition_setting(env: str, default: Any, description: str = "", *, kind: type | None = None) -> Any:
    """Declare and read now a setting that shapes the definitions (partitions, backfill policy).

    Anything else must be read at run time (``setting`` or ``run_setting``).
    """
    declared = Setting(env, default, description, _kind_of(default, kind), False, "definitions", (_owner(),))
    return _register(declared).read()


# -- resources ------------------------------------------------------------------------------------
def setting(env: str, default: Any, description: str, *, secret: bool = False) -> Any:
    """A ``SourceSettings`` field read from ``env`` at run time unless set in the resource config.

    Use as ``max_attempts: int | None = setting("PMU_MAX_ATTEMPTS", 6, "attempts per request")``.
    """
    shown = "unset" if default is None or default == [] else repr(default)
    text = f"{description} ({env}, {'secret, read at run time' if secret else f'default {shown}'})"
    extra = {"env": env, "default": default, "secret": secret, "about": description}
    return Field(None, description=text, repr=not secret, json_schema_extra=extra)


def _field_type(annotation: Any) -> type:
    """``int | None`` -> int, ``list[str] | None`` -> list."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    origin = typing.get_origin(annotation) or annotation
    if origin not in _TYPES:
        raise TypeError(f"unsupported setting annotation {annotation!r}")
    return origin


class SourceSettings(dg.ConfigurableResource):
    """Base of the resources whose fields are settings (see the module docstring).

    Classes defined inside a function (tests) work the same but are not registered.
    """

    _resolved: bool = PrivateAttr(default=False)
    _secrets: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        declared = {}
        for name, info in cls.model_fields.items():
            extra = info.json_schema_extra
            if not isinstance(extra, dict) or "env" not in extra:
                continue
            owner = f"{cls.__module__}.{cls.__qualname__}.{name}"
            env, about, secret = str(extra["env"]), str(extra["about"]), bool(extra["secret"])
            one = Setting(env, extra["default"], about, _field_type(info.annotation), secret, "run", (owner,))
            declared[name] = one if "<locals>" in cls.__qualname__ else _register(one)
        cls.__source_settings__ = declared

    @classmethod
    def declared_settings(cls) -> dict[str, Setting]:
        """Field name -> its declaration (environment variable, default, description)."""
        return dict(getattr(cls, "__source_settings__", {}))

    def resolved(self) -> Self:
        """This resource with every setting filled, read now: config > environment > default.

        Call it at run time; Dagster does when it initialises the resource for a run or a sensor.
        Secrets go to the copy's private state (``secret(name)``), never into a field.
        """
        if self._resolved:
            return self
        values: dict[str, Any] = {}
        secrets: dict[str, Any] = {}
        for name, declared in self.declared_settings().items():
            explicit = getattr(self, name)
            if explicit is None:
                value = declared.read()
            elif hasattr(explicit, "env_var_name"):  # dg.EnvVar used outside a run: Dagster has not read it
                value = dataclasses.replace(declared, env=explicit.env_var_name).read()
            else:
                value = explicit
            if isinstance(value, list):
                value = list(value)
            if declared.secret:
                secrets[name] = value
                values[name] = None
            else:
                values[name] = value
        out = self.model_copy(update=values)
        out._secrets = secrets
        out._resolved = True
        out.check_resolved()
        return out

    def check_resolved(self) -> None:
        """Override to reject resolved values that cannot work (raise ``SettingError``)."""

    def secret(self, name: str) -> Any:
        """The resolved value of a secret setting (read now if this copy is not resolved yet)."""
        return self.resolved()._secrets[name]

    def create_resource(self, context: dg.InitResourceContext) -> Self:
        # What assets and sensors receive: the run's values, read when the resource is initialised.
        return self.resolved()


@functools.cache
def http_settings(prefix: str, *, concurrency: int = 4) -> type[SourceSettings]:
    """The HTTP settings of a family of sources, read from ``{prefix}MAX_ATTEMPTS`` etc.

    One base class per prefix (cached); ``concurrency`` is the family's default ``max_concurrency``.
    """

    class HttpSettings(SourceSettings):
        max_concurrency: int | None = setting(f"{prefix}MAX_CONCURRENCY", concurrency, "concurrent requests")
        connect_timeout_s: float | None = setting(f"{prefix}CONNECT_TIMEOUT_S", 10.0, "connect timeout, seconds")
        read_timeout_s: float | None = setting(f"{prefix}READ_TIMEOUT_S", 30.0, "read timeout per request, seconds")
        max_attempts: int | None = setting(
            f"{prefix}MAX_ATTEMPTS", 6, "attempts per request, the first included (429, 5xx, timeouts, bad bodies)"
        )
        backoff_base_s: float | None = setting(
            f"{prefix}BACKOFF_BASE_S", 0.5, "exponential backoff base, seconds (full jitter; Retry-After wins)"
        )

        def http_client(self, base_url: str, headers: Mapping[str, str] | None = None) -> HttpClient:
            """A retrying, concurrent client with this family's resolved settings."""
            s = self.resolved()
            return HttpClient(
                base_url=base_url,
                headers=dict(headers or {}),
                connect_timeout_s=s.connect_timeout_s,
                read_timeout_s=s.read_timeout_s,
                retry=HttpRetry(max_attempts=s.max_attempts, backoff_base_s=s.backoff_base_s),
                max_concurrency=s.max_concurrency,
            )

    HttpSettings.__name__ = HttpSettings.__qualname__ = f"{prefix.strip('_').title()}HttpSettings"
    return HttpSettings


# -- automation -----------------------------------------------------------------------------------
def _automation_running() -> bool:
    value = definition_setting(
        "INGESTION_AUTOMATION",
        "stopped",
        "Default state of every schedule and sensor: stopped (local, the embedded default) or running "
        "(production; deploy/ sets it). A state set in the UI wins over this default.",
    )
    text = str(value).strip().lower()
    if text not in ("stopped", "running"):
        raise ValueError(f"INGESTION_AUTOMATION must be 'stopped' or 'running', not {value!r}")
    return text == "running"


def schedule_status() -> dg.DefaultScheduleStatus:
    """The default status of the platform's schedules (``INGESTION_AUTOMATION``)."""
    return dg.DefaultScheduleStatus.RUNNING if _automation_running() else dg.DefaultScheduleStatus.STOPPED


def sensor_status() -> dg.DefaultSensorStatus:
    """The default status of the platform's sensors (``INGESTION_AUTOMATION``)."""
    return dg.DefaultSensorStatus.RUNNING if _automation_running() else dg.DefaultSensorStatus.STOPPED
