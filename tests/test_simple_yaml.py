"""The simple-YAML fast paths (``pipeline.simple_yaml``) against PyYAML itself.

Whenever a fast path answers, PyYAML must give the same: the same mapping and repeated
keys when reading (libyaml, the loader the pipeline uses), the same text when writing
(libyaml's emitter). Generated inputs lean on what YAML gives meaning to: indicators,
quotes, escapes, breaks of every kind, YAML 1.1's special words and numbers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import markdown, simple_yaml
from pipeline.config import load_config
from pipeline.runner import run_pipeline
from pipeline.simple_yaml import Reader, Resolution, Writer
from tests.conftest import corpus_or_skip

STRICT = Reader(markdown._StrictLoader.yaml_implicit_resolvers)
SAFE = Reader(yaml.CSafeLoader.yaml_implicit_resolvers)
WRITER = Writer(markdown._Dumper.yaml_implicit_resolvers)


def libyaml_read(text: str) -> tuple[dict[str, Any], tuple[tuple[str, int], ...]] | str:
    """What ``split_front_matter``'s slow path makes of a front matter: (mapping, repeated
    keys), or the error's type name."""
    loader = markdown._StrictLoader(text)
    loader.duplicate_keys = []
    try:
        value = loader.get_single_data()
    except (yaml.YAMLError, markdown.FrontMatterError) as err:
        return type(err).__name__
    finally:
        loader.dispose()
    if value is None:  # an empty front matter, read as {} (split_front_matter)
        value = {}
    if not isinstance(value, dict):
        return f"not a mapping: {value!r}"
    return {str(k): v for k, v in value.items()}, tuple(loader.duplicate_keys)


def libyaml_write(mapping: dict[str, Any]) -> str:
    text: str = yaml.dump(mapping, Dumper=markdown._Dumper, **markdown._DUMP_OPTIONS)
    return text


def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], odds: int = 4) -> st.SearchStrategy[Any]:
    """``common`` ``odds`` times out of ``odds + 1``, else ``rare`` (``one_of`` would draw each
    half the time, and generated front matter would rarely be of the simple forms)."""
    return st.integers(0, odds).flatmap(lambda draw: rare if draw == 0 else common)


# -- reading --------------------------------------------------------------------------------

_WORDS = [
    "yes",
    "No",
    "ON",
    "off",
    "True",
    "NULL",
    "null",
    "~",
    "y",
    "1",
    "-1",
    "0x1F",
    "0o7",
    "017",
    "1_000",
    "190:20:30",
    "1.5",
    "1e5",
    ".inf",
    "-.INF",
    ".NaN",
]
_WORDS += ["2014-12-05", "2014-12-05 16:38:27 +0100", "2014-12-05T16:38:27Z", "=", "<<", "---", "...", "", "|", ">", "&a", "*a", "!!str x", "%x", "@x", "`x"]
_WORDS += ["a #b", "a# b", "- a", "-a", "a -", "a: b", "a:b", "a:", ": a", ":a", "? a", "?a", "#a", "a b "]
# Characters YAML gives meaning to, and now and then one it refuses or reads as a break.
_MARKS = [*"aZé _-,:#&*![]{}%@`|>?'\"\\/.", "😀", "\u00a0"]
_BREAKERS = ["\t", "\r", "\n", "\x85", "\u2028", "\u2029", "\ufeff", "\x00", "\x01", "\x7f", "\ud800", "\ufffe"]
_TEXT = mostly(
    st.one_of(st.sampled_from(_WORDS), st.text(alphabet=st.sampled_from(_MARKS), max_size=8), st.text(alphabet=st.sampled_from(["a", "é", " "]), max_size=8)),
    st.text(alphabet=st.sampled_from(_MARKS + _BREAKERS), max_size=4),
    odds=6,
)
_ESCAPES = [
    *(f"\\{c}" for c in '0abtnvfre "/\\N_LP'),
    "\\x41",
    "\\xe9",
    "\\u00e9",
    "\\u2028",
    "\\ud800",
    "\\U0001F600",
    "\\U00110000",
    "\\'",
    "\\q",
    "\\",
    "\\x4",
]
_DOUBLE_TEXT = st.lists(st.one_of(_TEXT, st.sampled_from(_ESCAPES)), max_size=4).map("".join)
_SCALARS = st.one_of(
    _TEXT,
    _TEXT.map(lambda t: f"'{t}'"),
    _TEXT.map(lambda t: "'" + t.replace("'", "''") + "'"),
    _DOUBLE_TEXT.map(lambda t: f'"{t}"'),
)
_LISTS = st.builds(
    lambda items, comma, gap: f"[{gap}{comma.join(items)}{gap}]",
    st.lists(_SCALARS, max_size=4),
    st.sampled_from([", ", ",", " , ", " ,"]),
    st.sampled_from(["", "", " "]),
)
_GOOD_KEYS = st.sampled_from(["title", "tags", "date", "categories", "a-b", "_k", "k2"])
_KEYS = mostly(_GOOD_KEYS, st.sampled_from(["é", "1", "- a", "? k", "k k", "#c", "yes", "On", "null", "~", "<<", "="]))
_KEY_LINES = st.builds(
    lambda key, gap, value, end: f"{key}:{gap}{value}{end}",
    _KEYS,
    st.sampled_from([" ", " ", " ", " ", " ", "  ", "", "\t"]),
    st.one_of(_SCALARS, _SCALARS, _LISTS),
    st.sampled_from(["", "", "", "", "", "", "", " ", " # c", ",", ":"]),
)
_LINES = mostly(
    _KEY_LINES,
    st.sampled_from(["", "", "- a", "  - a", "  b: c", "# c", "---", "...", " ", "key:", "{a: b}", "[a]", "%YAML 1.1"]),
)
_FRONT_MATTERS = st.lists(_LINES, max_size=4).map(lambda lines: "\n" + "\n".join(lines) + "\n")


@settings(max_examples=3000)
@given(_FRONT_MATTERS)
def test_a_front_matter_read_without_pyyaml_is_what_libyaml_reads(text: str) -> None:
    fast = STRICT.read_mapping(text)
    if fast is not None:
        assert fast == libyaml_read(text)


@settings(max_examples=1500)
@given(_LINES)
def test_a_line_of_a_conflict_side_read_without_pyyaml_is_what_libyaml_reads(line: str) -> None:
    """The sides' comparison reads single lines with PyYAML's own safe loader (timestamps
    included): the fast reading must agree with it."""
    fast = SAFE.read_mapping(line)
    if fast is not None:
        try:
            expected = yaml.load(line, Loader=yaml.CSafeLoader)
        except yaml.YAMLError as err:
            pytest.fail(f"the fast path read {line!r} as {fast!r}; libyaml refuses it ({err})")
        assert fast == (expected if expected is not None else {}, ())


def test_the_forms_of_the_archive_are_read_without_pyyaml() -> None:
    """The fast path takes the line forms of the archive's front matter, repeated keys
    included, and leaves the others to PyYAML."""
    text = (
        '\nlayout: post\ntitle: "L\'\\u00e9t\\u00e9 \\"chaud\\""\ndate: 2009-11-12 10:33:52 +0100\n'
        "categories: []\ntags: ['ADEME', \"it's\", 'l''été']\nlayout: page\n"
    )
    assert STRICT.read_mapping(text) == (
        {"layout": "page", "title": 'L\'été "chaud"', "date": "2009-11-12 10:33:52 +0100", "categories": [], "tags": ["ADEME", "it's", "l'été"]},
        (("layout", 7),),
    )
    assert STRICT.read_mapping(text) == libyaml_read(text)
    for other in ("\nid: 12\n", "\ntags:\n- a\n", "\n# comment\n", "\ntitle: a # b\n", "\ntitle: 'a'  \n", '\ntitle: "\\ud800"\n', "\ntitle: a\tb\n"):
        assert STRICT.read_mapping(other) is None, other


# -- writing --------------------------------------------------------------------------------

_STRINGS = _TEXT.filter(lambda text: "\ud800" not in text)  # PyYAML cannot write a lone surrogate
_DATES = st.builds(
    lambda base, seconds, micro, zone: (base + timedelta(seconds=seconds)).replace(microsecond=micro, tzinfo=zone),
    st.just(datetime(2009, 11, 12, 10, 33, 52)),
    st.integers(0, 10**9),
    st.sampled_from([0, 0, 1, 500000]),
    st.sampled_from([None, UTC, timezone(timedelta(hours=1)), ZoneInfo("Europe/Paris")]),
)
_VALUES = mostly(
    st.one_of(_STRINGS, st.lists(_STRINGS, max_size=3), st.booleans(), st.integers(-(10**20), 10**20), st.none(), _DATES),
    st.one_of(st.floats(allow_nan=False), st.dictionaries(st.sampled_from(["a", "b"]), _STRINGS, max_size=1), st.lists(st.integers(), min_size=1, max_size=2)),
)
_MAPPINGS = st.dictionaries(
    mostly(_GOOD_KEYS, _STRINGS),
    _VALUES,
    max_size=4,
)


@settings(max_examples=3000)
@given(_MAPPINGS)
def test_a_front_matter_written_without_pyyaml_is_what_libyaml_writes(mapping: dict[str, Any]) -> None:
    fast = WRITER.write_mapping(mapping)
    if fast is not None:
        assert fast == libyaml_write(mapping)


def test_the_front_matter_of_a_post_is_written_without_pyyaml() -> None:
    """The fast path takes what the pipeline writes, quoting where YAML would read another type."""
    mapping = {
        "title": "Vélo: l'été #1",
        "date": datetime(2011, 10, 5, 9, 0, tzinfo=ZoneInfo("Europe/Paris")),
        "tags": ["yes", "2014", "a: b", "- x", "Vélo"],
        "categories": [],
        "published": False,
        "author": "",
    }
    fast = WRITER.write_mapping(mapping)
    assert fast == libyaml_write(mapping)
    assert fast is not None and "date: 2011-10-05T09:00:00+02:00\n" in fast and "- 'yes'\n" in fast
    others: list[dict[Any, Any]] = [{"title": "a\nb"}, {"title": "😀"}, {"n": 1.5}, {"d": {"a": "b"}}, {}, {1: "a"}]
    for other in others:
        assert WRITER.write_mapping(other) is None, other


def test_resolution_looks_up_the_same_patterns_as_pyyaml() -> None:
    resolver: Any = yaml.resolver.Resolver()
    strings = Resolution(yaml.resolver.Resolver.yaml_implicit_resolvers)
    for value in [*_WORDS, "Vélo", "a", "+1", "-", ".", "0b101", "1:20", "NaN", "nan"]:
        assert strings.is_str(value) == (resolver.resolve(yaml.ScalarNode, value, (True, False)) == "tag:yaml.org,2002:str"), value


# -- the real archive ---------------------------------------------------------------------


def test_on_the_archive_every_front_matter_goes_the_fast_way_and_equals_pyyaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole archive, serially: each front matter the fast paths read or write is
    compared with PyYAML's reading or writing of it, and all of them take the fast paths."""
    corpus = corpus_or_skip()
    seen = {"read": 0, "read_fast": 0, "written": 0, "written_fast": 0}

    def checked(kind: str, fast: Any, pyyaml: Callable[[], Any]) -> Any:
        seen[kind] += 1
        if fast is not None:
            seen[f"{kind}_fast"] += 1
            assert fast == pyyaml()
        return fast

    class CheckedReader(Reader):
        def read_mapping(self, text: str) -> tuple[dict[str, Any], tuple[tuple[str, int], ...]] | None:
            return cast(tuple[dict[str, Any], tuple[tuple[str, int], ...]] | None, checked("read", super().read_mapping(text), lambda: libyaml_read(text)))

    class CheckedWriter(Writer):
        def write_mapping(self, mapping: dict[str, Any]) -> str | None:
            return cast(str | None, checked("written", super().write_mapping(mapping), lambda: libyaml_write(mapping)))

    monkeypatch.setattr(markdown, "_SIMPLE_READER", CheckedReader(markdown._StrictLoader.yaml_implicit_resolvers))
    monkeypatch.setattr(markdown, "_SIMPLE_WRITER", CheckedWriter(markdown._Dumper.yaml_implicit_resolvers))
    report = run_pipeline(corpus, tmp_path / "out", load_config({"run": {"workers": 1}}))
    assert report["cleaned"] == seen["read"] == seen["read_fast"] > 900
    assert seen["written"] == seen["written_fast"] > 900


def _matched(pattern: re.Pattern[str]) -> set[int]:
    every = "".join(map(chr, range(0x110000)))
    return {ord(found) for found in pattern.findall(every)}


def _spans(*spans: tuple[int, int]) -> set[int]:
    return {point for low, high in spans for point in range(low, high + 1)}


def test_the_characters_left_to_pyyaml_are_those_libyaml_refuses_or_reads_as_breaks() -> None:
    """Reading: libyaml's reader takes tab, LF, CR, NEL, 20-7E, A0-D7FF, E000-FFFD and the
    planes beyond; of those, the fast path also leaves tab, CR, NEL, LS, PS and the BOM to
    PyYAML. Writing: libyaml's emitter writes as they are 20-7E, A0-D7FF and E000-FFFD but
    the BOM (its IS_PRINTABLE); LS and PS are breaks."""
    read = _spans((0x0A, 0x0A), (0x20, 0x7E), (0xA0, 0xD7FF), (0xE000, 0xFFFD), (0x10000, 0x10FFFF)) - {0x2028, 0x2029, 0xFEFF}
    assert _matched(simple_yaml._UNREADABLE) == _spans((0, 0x10FFFF)) - read
    written = _spans((0x20, 0x7E), (0xA0, 0xD7FF), (0xE000, 0xFFFD)) - {0x2028, 0x2029, 0xFEFF}
    assert _matched(simple_yaml._UNWRITABLE) == _spans((0, 0x10FFFF)) - written
