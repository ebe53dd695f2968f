"""Settings: every key checked before work starts; errors name the dotted key."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from pipeline.config import Config, DecodeParams, ExportParams, ExtractParams, ResolveParams, load_config
from pipeline.errors import ConfigError, PipelineError
from pipeline.steps import STEP_NAMES

PARAMS = Path(__file__).resolve().parent.parent / "params.yaml"


def _key_of_error(data: Any, overrides: dict[str, Any] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(data, overrides)
    assert str(info.value).startswith(f"{info.value.key}: ")
    return info.value.key


def test_defaults() -> None:
    config = load_config(None)
    assert config == load_config({}) == Config()
    assert (config.resolve, config.decode, config.extract, config.export) == (ResolveParams(), DecodeParams(), ExtractParams(), ExportParams())
    assert (config.resolve.max_bytes, config.resolve.max_line_chars, config.export.batch_size) == (5_000_000, 1_000_000, 500)
    assert (config.resolve.side, config.decode.timezone, config.zone) == ("ours", "Europe/Paris", ZoneInfo("Europe/Paris"))
    assert all(config.decode.enabled(step) for step in STEP_NAMES)


def test_shipped_params_file_is_valid() -> None:
    config = load_config(yaml.safe_load(PARAMS.read_text(encoding="utf-8")))
    assert set(config.decode.steps) == set(STEP_NAMES)


def test_values_read() -> None:
    config = load_config(
        {
            "resolve": {"side": "theirs", "max_bytes": 10, "max_line_chars": 5},
            "decode": {"timezone": "America/Montreal", "steps": {"fix_mojibake": False}},
            "extract": {"recover_tags_from_row": False},
            "export": {"author_name": "login", "default_author": "Rédaction", "batch_size": 3},
        }
    )
    assert config.resolve == ResolveParams("theirs", 10, 5)
    assert config.zone == ZoneInfo("America/Montreal")
    assert not config.decode.enabled("fix_mojibake")
    assert config.decode.enabled("decode_escapes"), "steps not given stay on"
    assert config.extract.recover_tags_from_row is False
    assert config.export == ExportParams(author_name="login", default_author="Rédaction", batch_size=3)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"resolv": {}}, "resolv"),
        ({"resolve": {"sides": "theirs"}}, "resolve.sides"),
        ({"decode": {"time_zone": "UTC"}}, "decode.time_zone"),
        ({"extract": {"recover_tags": True}}, "extract.recover_tags"),
        ({"export": {"batch": 1}}, "export.batch"),
    ],
)
def test_unknown_section_or_key_named(data: dict[str, Any], key: str) -> None:
    assert _key_of_error(data) == key


def test_unknown_key_error_lists_known_keys() -> None:
    with pytest.raises(ConfigError, match="side, max_bytes, max_line_chars"):
        load_config({"resolve": {"sides": "theirs"}})


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"resolve": {"side": "both"}}, "resolve.side"),
        ({"resolve": {"side": None}}, "resolve.side"),
        ({"resolve": {"side": ["ours"]}}, "resolve.side"),
        ({"resolve": {"max_bytes": -1}}, "resolve.max_bytes"),
        ({"resolve": {"max_bytes": 0}}, "resolve.max_bytes"),
        ({"resolve": {"max_bytes": "x"}}, "resolve.max_bytes"),
        ({"resolve": {"max_bytes": "5000"}}, "resolve.max_bytes"),
        ({"resolve": {"max_bytes": True}}, "resolve.max_bytes"),
        ({"resolve": {"max_bytes": 1.5}}, "resolve.max_bytes"),
        ({"resolve": {"max_line_chars": -3}}, "resolve.max_line_chars"),
        ({"decode": {"timezone": "Mars/Olympus_Mons"}}, "decode.timezone"),
        ({"decode": {"timezone": "Europe/paris "}}, "decode.timezone"),
        ({"decode": {"timezone": "../../etc/passwd"}}, "decode.timezone"),
        ({"decode": {"timezone": ""}}, "decode.timezone"),
        ({"decode": {"timezone": 1}}, "decode.timezone"),
        ({"decode": {"steps": {"straighten_quotes": True}}}, "decode.steps"),
        ({"decode": {"steps": {"fix_mojibake": "no"}}}, "decode.steps.fix_mojibake"),
        ({"decode": {"steps": ["fix_mojibake"]}}, "decode.steps"),
        ({"extract": {"recover_tags_from_row": "yes"}}, "extract.recover_tags_from_row"),
        ({"export": {"author_name": "email"}}, "export.author_name"),
        ({"export": {"default_author": 3}}, "export.default_author"),
        ({"export": {"batch_size": 0}}, "export.batch_size"),
        ({"run": {"read_ahead": -1}}, "run.read_ahead"),
        ({"run": {"read_ahead": "512"}}, "run.read_ahead"),
        ({"resolve": "ours"}, "resolve"),
        ({"decode": ["timezone"]}, "decode"),
    ],
)
def test_bad_value_named(data: dict[str, Any], key: str) -> None:
    assert _key_of_error(data) == key


def test_unknown_step_named_in_message() -> None:
    with pytest.raises(ConfigError, match="straighten_quotes"):
        load_config({"decode": {"steps": {"straighten_quotes": True}}})


@pytest.mark.parametrize("data", [[], "resolve: ours", 3])
def test_params_not_a_mapping(data: Any) -> None:
    assert _key_of_error(data) == "params"


def test_config_error_exit_code() -> None:
    with pytest.raises(PipelineError) as info:
        load_config({"resolve": {"side": "both"}})
    assert info.value.exit_code == 2


def test_overrides_applied() -> None:
    config = load_config({"resolve": {"side": "ours", "max_bytes": 10}}, {"resolve.side": "theirs", "decode.timezone": "UTC"})
    assert (config.resolve.side, config.resolve.max_bytes, config.decode.timezone) == ("theirs", 10, "UTC")


def test_override_creates_missing_section() -> None:
    assert load_config({}, {"export.batch_size": 7}).export.batch_size == 7


def test_overrides_do_not_mutate_the_parsed_params() -> None:
    data = {"resolve": {"side": "ours"}}
    load_config(data, {"resolve.side": "theirs"})
    assert data == {"resolve": {"side": "ours"}}


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"resolve.side": "both"}, "resolve.side"),
        ({"resolve.sides": "theirs"}, "resolve.sides"),
        ({"resolv.side": "theirs"}, "resolv"),
        ({"resolve.max_bytes": -1}, "resolve.max_bytes"),
    ],
)
def test_bad_override_named(overrides: dict[str, Any], key: str) -> None:
    assert _key_of_error({}, overrides) == key
