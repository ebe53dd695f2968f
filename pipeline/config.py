"""Settings: ``params.yaml`` loaded into frozen dataclasses, one section per DVC stage.

Every key is checked before any work starts: an unknown key or a bad value raises
ConfigError naming the key (``decode.timezone``), which the CLI turns into exit code 2.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.cleanup import CLEANUP_STEP_NAMES
from pipeline.errors import ConfigError
from pipeline.steps import STEP_NAMES

Side = Literal["ours", "theirs"]
AuthorName = Literal["display_name", "login", "none"]
Target = Literal["jekyll", "hugo"]
EmptyPosts = Literal["draft", "omit"]
Engine = Literal["local", "dask"]


@dataclass(frozen=True)
class ResolveParams:
    side: Side = "ours"
    max_bytes: int = 5_000_000
    max_line_chars: int = 1_000_000


@dataclass(frozen=True)
class DecodeParams:
    timezone: str = "Europe/Paris"
    steps: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(STEP_NAMES, True))

    def enabled(self, step: str) -> bool:
        return self.steps.get(step, True)


@dataclass(frozen=True)
class ExtractParams:
    recover_tags_from_row: bool = True


@dataclass(frozen=True)
class ExportParams:
    target: Target = "jekyll"
    # URL forms the old blog served, kept as redirects for every post ({year} {month} {day} {slug}).
    old_url_patterns: list[str] = field(default_factory=lambda: ["/{year}/{month}/{slug}.html"])
    site_hosts: list[str] = field(default_factory=list)  # besides the hosts of the export rows' URLs
    empty_posts: EmptyPosts = "draft"
    cleanup: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(CLEANUP_STEP_NAMES, True))
    author_name: AuthorName = "display_name"
    default_author: str = ""
    batch_size: int = 500


@dataclass(frozen=True)
class RunParams:
    """How ``pipeline run`` schedules the work (no DVC stage: outputs do not depend on it)."""

    workers: int = 0  # processes for the per-post work; 0 means one per core, 1 runs serially
    read_ahead: int = 512  # inputs the kernel is asked to fetch ahead of the readers (io.reading_ahead); 0: none
    cache_dir: str = ""  # per-file result cache for fast reruns; empty: no cache
    engine: Engine = "local"  # local: a process pool on this machine; dask: a Dask cluster (docs/DASK.md)
    scheduler: str = ""  # engine dask: address of a running scheduler (tcp://host:8786); empty: a local cluster


@dataclass(frozen=True)
class Config:
    run: RunParams = field(default_factory=RunParams)
    resolve: ResolveParams = field(default_factory=ResolveParams)
    decode: DecodeParams = field(default_factory=DecodeParams)
    extract: ExtractParams = field(default_factory=ExtractParams)
    export: ExportParams = field(default_factory=ExportParams)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.decode.timezone)


def load_config(data: Any, overrides: dict[str, Any] | None = None) -> Config:
    """Build a Config from parsed YAML (a mapping of sections), applying ``section.key`` overrides.

    >>> load_config({"resolve": {"side": "theirs"}}).resolve.side
    'theirs'
    >>> load_config({"resolve": {"sides": "theirs"}})
    Traceback (most recent call last):
    pipeline.errors.ConfigError: resolve.sides: unknown key; known keys: side, max_bytes, max_line_chars
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("params", "the params file must be a mapping of stage sections")
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        data.setdefault(section, {})
        if isinstance(data[section], dict):
            data[section][key] = value
    config: Config = _build(Config, data, "")
    try:
        ZoneInfo(config.decode.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("decode.timezone", f"unknown time zone {config.decode.timezone!r}; use an IANA name such as Europe/Paris") from None
    unknown_cleanup = sorted(set(config.export.cleanup) - set(CLEANUP_STEP_NAMES))
    if unknown_cleanup:
        raise ConfigError("export.cleanup", f"unknown step {unknown_cleanup[0]!r}; known steps: {', '.join(CLEANUP_STEP_NAMES)}")
    unknown_steps = sorted(set(config.decode.steps) - set(STEP_NAMES))
    if unknown_steps:
        raise ConfigError("decode.steps", f"unknown step {unknown_steps[0]!r}; known steps: {', '.join(STEP_NAMES)}")
    for key in ("max_bytes", "max_line_chars"):
        if getattr(config.resolve, key) <= 0:
            raise ConfigError(f"resolve.{key}", "must be a positive integer")
    if config.run.workers < 0:
        raise ConfigError("run.workers", "must be 0 (one per core) or a positive number of processes")
    if config.run.read_ahead < 0:
        raise ConfigError("run.read_ahead", "must be 0 (no read-ahead) or a positive number of inputs")
    if config.run.scheduler and config.run.engine != "dask":
        raise ConfigError("run.scheduler", "is only for run.engine: dask; set the engine or empty the scheduler")
    for pattern in config.export.old_url_patterns:
        try:
            pattern.format(year="2000", month="01", day="01", slug="x")
        except (KeyError, IndexError, ValueError):
            raise ConfigError("export.old_url_patterns", f"{pattern!r} may use only {{year}} {{month}} {{day}} {{slug}}") from None
    if config.export.batch_size <= 0:
        raise ConfigError("export.batch_size", "must be a positive integer")
    return config


def _build(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(prefix.rstrip(".") or "params", f"must be a mapping, not {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise ConfigError(f"{prefix}{key}", f"unknown key; known keys: {', '.join(fields)}")
    values = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, f"{prefix}{name}.")  # type: ignore[arg-type]
        else:
            values[name] = _check(hint, value, f"{prefix}{name}")
    if cls is DecodeParams and "steps" in values:
        values["steps"] = {**dict.fromkeys(STEP_NAMES, True), **values["steps"]}
    if cls is ExportParams and "cleanup" in values:
        values["cleanup"] = {**dict.fromkeys(CLEANUP_STEP_NAMES, True), **values["cleanup"]}
    return cls(**values)


def _check(hint: Any, value: Any, key: str) -> Any:
    origin = get_origin(hint)
    if origin is Literal:
        if value not in get_args(hint):
            raise ConfigError(key, f"{value!r} is not one of {', '.join(map(str, get_args(hint)))}")
        return value
    if origin is list:
        (item_type,) = get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(key, f"must be a list, not {type(value).__name__}")
        return [_check(item_type, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        _, value_type = get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(key, f"must be a mapping, not {type(value).__name__}")
        return {str(k): _check(value_type, v, f"{key}.{k}") for k, v in value.items()}
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, not {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer, not {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, not {value!r}")
        return value
    if isinstance(hint, types.UnionType):  # pragma: no cover - no such params yet
        raise ConfigError(key, "union types are not supported in params")
    raise ConfigError(key, f"unsupported type {hint!r}")
