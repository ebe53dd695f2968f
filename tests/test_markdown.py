"""Front matter in and out: safe YAML only, strict loading, key order and unicode kept on dump."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.markdown import FrontMatterError, Split, dump_markdown, split_front_matter


def _error(text: str) -> FrontMatterError:
    with pytest.raises(FrontMatterError) as info:
        split_front_matter(text)
    return info.value


# --- safe loading ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tagged",
    [
        '!!python/object/apply:os.system ["touch {marker}"]',
        '!!python/object/apply:subprocess.check_call [["touch", "{marker}"]]',
        "!!python/object/new:os.system [touch {marker}]",
        "!!python/name:os.system",
        '!!python/object:pathlib.Path {{"x": "{marker}"}}',
    ],
)
def test_python_tags_refused_and_never_run(tagged: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = "---\ntitle: T\ncmd: " + tagged.format(marker=marker) + "\n---\nCorps.\n"
    error = _error(text)
    assert error.code == "front_matter_unsafe_tag"
    assert error.line is not None
    assert not marker.exists()


def test_billion_laughs_refused_as_alias() -> None:
    levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    error = _error("---\n" + "\n".join(levels) + "\n---\nCorps.\n")
    assert error.code == "front_matter_alias"
    assert error.line is not None


@pytest.mark.parametrize(
    "yaml_text",
    [
        "a: &x 1\nb: *x",
        "tags: &t [a, b]\nkeywords: *t",
        "base: &b {x: 1}\nother:\n  <<: *b",
    ],
)
def test_any_alias_refused(yaml_text: str) -> None:
    assert _error(f"---\n{yaml_text}\n---\n").code == "front_matter_alias"


def test_anchor_without_alias_is_fine() -> None:
    assert split_front_matter("---\ntitle: &t Titre\n---\n").front_matter == {"title": "Titre"}


def test_duplicate_keys_reported_last_value_kept() -> None:
    split = split_front_matter("---\ntitle: premier\ndate: 2014-12-05 16:38:27 +0100\ntitle: second\ntags: []\ntags: [a]\n---\nCorps.\n")
    assert split.front_matter == {"title": "second", "date": "2014-12-05 16:38:27 +0100", "tags": ["a"]}
    assert [key for key, _ in split.duplicate_keys] == ["title", "tags"]
    assert split.duplicate_keys[0][1] < split.duplicate_keys[1][1]


@pytest.mark.parametrize(
    ("yaml_text", "kind"),
    [("- a\n- b", "list"), ("juste une phrase", "str"), ("42", "int"), ("[a, b]", "list")],
)
def test_non_mapping_front_matter(yaml_text: str, kind: str) -> None:
    error = _error(f"---\n{yaml_text}\n---\nCorps.\n")
    assert (error.code, error.line) == ("front_matter_not_mapping", 2)
    assert kind in str(error)


@pytest.mark.parametrize(
    "value",
    ["2014-12-05 16:38:27 +0100", "2014-12-05", "2014-12-05T16:38:27Z", "2014-12-05 16:38:27+01:00", "2014-12-05 16:38:27.5 -05:00"],
)
def test_dates_stay_strings(value: str) -> None:
    split = split_front_matter(f"---\ndate: {value}\nupdated: [{value}]\n---\n")
    assert split.front_matter == {"date": value, "updated": [value]}


@pytest.mark.parametrize(
    "yaml_text",
    [
        "title: a\nbad: [unclosed\nx: y",
        "title: a\n  bad: indent",
        "title: 'a",
        'title: "a\\q"',
        "- a\nb: c",
        "title: a\n\tb: tab",
    ],
)
def test_invalid_yaml(yaml_text: str) -> None:
    error = _error(f"---\n{yaml_text}\n---\nCorps.\n")
    assert error.code == "front_matter_invalid"
    assert isinstance(error.line, int) and error.line >= 2


@pytest.mark.parametrize(
    ("text", "code", "lines"),
    [
        ("---\ntitle: a\n  bad: indent\n---\n", "front_matter_invalid", {3}),
        ("---\ntitle: T\ncmd: !!python/object/apply:os.system [echo hi]\n---\n", "front_matter_unsafe_tag", {3}),
        ("---\na: &x [1]\nb: 2\nc: *x\n---\n", "front_matter_alias", {2, 4}),  # the anchor's or the alias's line
        ("---\ntitle: a\ndate: x\ntitle: b\n---\n", "front_matter_duplicate_key", {4}),
    ],
)
def test_front_matter_problem_lines_are_file_lines(text: str, code: str, lines: set[int]) -> None:
    if code == "front_matter_duplicate_key":
        ((key, line),) = split_front_matter(text).duplicate_keys
        assert (key, line in lines) == ("title", True)
    else:
        error = _error(text)
        assert (error.code, error.line in lines) == (code, True)


@pytest.mark.parametrize("yaml_text", ["? [a, b]\n: c", "{[a]: b}", "? {x: 1}\n: y"])
def test_unhashable_key_is_a_front_matter_error(yaml_text: str) -> None:
    with pytest.raises(FrontMatterError):
        split_front_matter(f"---\n{yaml_text}\n---\n")


def test_no_front_matter() -> None:
    assert split_front_matter("\nTexte sans front matter.\n\n") == Split(None, "Texte sans front matter.")


def test_unterminated_front_matter_read_as_body() -> None:
    split = split_front_matter("---\ntitle: T\nCorps.\n")
    assert (split.front_matter, split.unterminated, split.body) == (None, True, "---\ntitle: T\nCorps.")


def test_empty_front_matter_is_empty_mapping() -> None:
    assert split_front_matter("---\n---\n\nCorps.\n") == Split({}, "Corps.")


def test_body_keeps_its_own_horizontal_rules() -> None:
    split = split_front_matter("---\ntitle: T\n---\n\nAvant.\n\n---\n\nAprès.\n")
    assert split.front_matter == {"title": "T"}
    assert split.body == "Avant.\n\n---\n\nAprès."


def test_archive_front_matter_shapes() -> None:
    text = (
        '---\nlayout: post\ntitle: "Un v\\u00e9hicule propre\\", c\'est quoi ?\\""\ndate: 2014-07-05 16:38:27 +0100\n'
        "categories: []\ntags: [\"qualité de l'air\", 'vélo']\n---\n\nCorps.\n"
    )
    split = split_front_matter(text)
    assert split.front_matter == {
        "layout": "post",
        "title": 'Un véhicule propre", c\'est quoi ?"',
        "date": "2014-07-05 16:38:27 +0100",
        "categories": [],
        "tags": ["qualité de l'air", "vélo"],
    }
    assert list(split.front_matter) == ["layout", "title", "date", "categories", "tags"]


# --- dump_markdown -----------------------------------------------------------------------


def test_dump_keeps_key_order() -> None:
    out = dump_markdown({"zeta": 1, "alpha": "a", "mid": ["x"], "beta": None}, "Corps.")
    keys = [line.split(":")[0] for line in out.split("\n")[1:] if line and not line.startswith(("-", " "))]
    assert keys[:4] == ["zeta", "alpha", "mid", "beta"]


def test_dump_writes_unicode_as_is() -> None:
    out = dump_markdown({"title": "L’été « doux » à Noël\u00a0!", "tags": ["vélo", "qualité de l'air", "Œuvre"]}, "Été.")
    assert "title: L’été « doux » à Noël\u00a0!\n" in out
    assert "- vélo\n" in out and "- Œuvre\n" in out
    assert "\\u" not in out and "\\x" not in out
    assert out.endswith("---\n\nÉté.\n")


def test_dump_writes_characters_beyond_bmp_as_is() -> None:
    out = dump_markdown({"title": "Départ 🚀"}, "x")
    assert "title: Départ 🚀\n" in out


def test_dump_without_body() -> None:
    assert dump_markdown({"title": "T"}, "\n\n") == "---\ntitle: T\n---\n"


@pytest.mark.parametrize(
    "value", ["yes", "no", "on", "null", "~", "2014-12-05", "2014-12-05 10:00:00+01:00", "0123", "1e3", "3.0", "---", "- a", "a: b", "#x", " lead", "trail "]
)
def test_dump_quotes_strings_that_would_read_back_as_something_else(value: str) -> None:
    assert split_front_matter(dump_markdown({"k": value}, "x")).front_matter == {"k": value}


_scalars = st.one_of(st.text(max_size=30), st.integers(), st.booleans(), st.none())
_values = st.one_of(_scalars, st.lists(_scalars, max_size=4), st.dictionaries(st.text(max_size=8), _scalars, max_size=3))


@given(st.dictionaries(st.text(max_size=15), _values, max_size=6))
def test_dump_then_split_round_trips(front_matter: dict[str, Any]) -> None:
    split = split_front_matter(dump_markdown(front_matter, "Corps.\n\n---\n\nFin."))
    assert split.front_matter == front_matter
    assert split.front_matter is not None and list(split.front_matter) == list(front_matter)
    assert split.body == "Corps.\n\n---\n\nFin."
    assert split.duplicate_keys == ()
