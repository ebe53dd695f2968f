"""Hostile and broken input: each kind has a defined outcome, cleaned with a problem code or
quarantined with a reason. Never a crash, never silence, nothing run, nothing written outside."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.runner import run_pipeline

FM = "---\ntitle: T\ndate: 2014-07-05 10:00:00 +0100\ntags: ['a']\n---\n\n"
POST = FM + "Body.\n"

# name -> (file bytes, expected outcome: "cleaned" or "quarantined", problem code expected)
CASES: dict[str, tuple[bytes, str, str]] = {
    "unterminated_marker": ((FM + "<<<<<<< HEAD\na\n=======\nb\n").encode(), "quarantined", "conflict_unterminated"),
    "nested_markers": ((FM + "<<<<<<< HEAD\n<<<<<<< x\na\n=======\nb\n>>>>>>> y\n").encode(), "quarantined", "conflict_nested"),
    "stray_close_marker": ((FM + "text\n>>>>>>> 367d931\n").encode(), "quarantined", "conflict_stray_marker"),
    "stray_base_marker": ((FM + "text\n||||||| base\n").encode(), "quarantined", "conflict_stray_marker"),
    # Found by fuzz/run.py: a base marker after the separator is not git's layout.
    "base_after_separator": ((FM + "<<<<<<< HEAD\na\n=======\n||||||| base\nb\n>>>>>>> x\n").encode(), "quarantined", "conflict_stray_marker"),
    "midline_marker": ((FM + "text <<<<<<< HEAD glued\n").encode(), "cleaned", "conflict_marker_midline"),
    "setext_heading": ((FM + "Title\n=======\n\ntext\n").encode(), "cleaned", "none"),
    "diff3_section": ((FM + "<<<<<<< ours\na\n||||||| base\no\n=======\nb\n>>>>>>> theirs\n").encode(), "cleaned", "conflict_resolved"),
    "odd_labels": ((FM + "<<<<<<< feature/été #2\na\n=======\nb\n>>>>>>>\n").encode(), "cleaned", "conflict_resolved"),
    "crlf": (POST.replace("\n", "\r\n").encode(), "cleaned", "crlf_normalised"),
    "bom": (b"\xef\xbb\xbf" + POST.encode(), "cleaned", "bom_removed"),
    "empty": (b"", "quarantined", "empty_file"),
    "blank": (b" \n\n", "quarantined", "empty_file"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "quarantined", "binary_file"),
    "invalid_utf8": ((FM + "caf").encode() + b"\xe9 cr\xe8me\n", "cleaned", "invalid_utf8"),
    "enormous_line": ((FM + "x" * 2_000).encode(), "quarantined", "line_too_long"),
    "enormous_file": ((FM + ("word " * 20 + "\n") * 400).encode(), "quarantined", "too_large"),
    "front_matter_list": (b"---\n- a\n- b\n---\nbody\n", "quarantined", "front_matter_not_mapping"),
    "front_matter_scalar": (b"---\njust text\n---\nbody\n", "quarantined", "front_matter_not_mapping"),
    "front_matter_invalid": (b"---\ntitle: [unclosed\n---\nbody\n", "quarantined", "front_matter_invalid"),
    "python_object_tag": (
        b"---\ntitle: !!python/object/apply:os.system ['touch PWNED']\n---\nbody\n",
        "quarantined",
        "front_matter_unsafe_tag",
    ),
    "alias_bomb": (
        b"---\na: &a ['x','x','x','x','x','x','x','x','x']\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
        b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        b"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n---\nbody\n",
        "quarantined",
        "front_matter_alias",
    ),
    "duplicate_keys": (b"---\ntitle: A\ntitle: B\ndate: 2014-01-01\n---\nbody\n", "cleaned", "front_matter_duplicate_key"),
    "unterminated_front_matter": (b"---\ntitle: A\nbody without end\n", "cleaned", "front_matter_unterminated"),
    "slug_escaping_folder": (b'---\ntitle: A\nslug: "../../../etc/passwd"\n---\nbody\n', "cleaned", "slug_sanitised"),
    "absolute_slug": (b'---\ntitle: A\nslug: "/etc/cron.d/x"\n---\nbody\n', "cleaned", "slug_sanitised"),
    "nul_in_slug": (b'---\ntitle: A\nslug: "a\\0b"\n---\nbody\n', "cleaned", "slug_sanitised"),
    "reserved_slug": (b"---\ntitle: A\nslug: CON\n---\nbody\n", "cleaned", "slug_sanitised"),
    "tags_as_string": (b"---\ntitle: A\ntags: one\n---\nbody\n", "cleaned", "tags_not_list"),
    "bad_date": (b"---\ntitle: A\ndate: yesterday\n---\nbody\n", "cleaned", "date_invalid"),
}


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    raw = tmp_path_factory.mktemp("hostile") / "raw"
    raw.mkdir()
    for name, (data, _, _) in CASES.items():
        (raw / f"{name}.md").write_bytes(data)
    outside = raw.parent / "secret.md"
    outside.write_text(POST)
    (raw / "symlink_outside.md").symlink_to(outside)
    (raw / "inside_target.md").write_text(POST)
    try:  # a Latin-1 name, as an old FTP client leaves it; some file systems refuse such names
        with open(os.path.join(os.fsencode(raw), NON_UTF8_NAME), "wb") as handle:
            handle.write(POST.encode())
        non_utf8 = True
    except OSError:
        non_utf8 = False
    (raw / "symlink_inside.md").symlink_to(raw / "inside_target.md")
    out = raw.parent / "clean"
    cwd = Path.cwd()
    os.chdir(raw.parent)  # a PWNED file would appear here if a YAML tag ran a command
    try:
        config = load_config({"resolve": {"max_bytes": 10_000, "max_line_chars": 1_000}})
        report = run_pipeline(raw, out, config)
    finally:
        os.chdir(cwd)
    return {
        "report": report,
        "out": out,
        "root": raw.parent,
        "posts": {r["source_path"]: r for r in pq.read_table(out / "posts.parquet").to_pylist()},
        "quarantine": {r["source_path"]: r for r in pq.read_table(out / "quarantine.parquet").to_pylist()},
        "problems": pq.read_table(out / "problems.parquet").to_pylist(),
        "non_utf8": non_utf8,
    }


NON_UTF8_NAME = b"caf\xe9 cr\xe8me.md"


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_hostile_input_has_its_outcome(outcome: dict[str, Any], name: str) -> None:
    data, expected, code = CASES[name]
    source = f"{name}.md"
    if expected == "quarantined":
        row = outcome["quarantine"][source]
        assert row["reason"] == code
        assert row["raw"] == data or code == "too_large"
        assert row["message"]
        assert source not in outcome["posts"]
    else:
        row = outcome["posts"][source]
        assert code == "none" or code in row["problems"], row["problems"]


def test_counts_add_up_and_nothing_is_lost(outcome: dict[str, Any]) -> None:
    report = outcome["report"]
    others = {"symlink_outside.md", "symlink_inside.md", "inside_target.md"} | ({"caf\\xe9 cr\\xe8me.md"} if outcome["non_utf8"] else set())
    assert report["inputs"] == len(CASES) + len(others)
    assert report["inputs"] == report["cleaned"] + report["quarantined"]
    assert set(outcome["posts"]) | set(outcome["quarantine"]) == {f"{n}.md" for n in CASES} | others


def test_a_file_name_that_is_not_utf8_is_quarantined_under_a_printable_name(outcome: dict[str, Any]) -> None:
    if not outcome["non_utf8"]:
        pytest.skip("this file system refuses file names that are not UTF-8")
    row = outcome["quarantine"]["caf\\xe9 cr\\xe8me.md"]
    assert (row["reason"], row["raw"]) == ("file_name_not_utf8", POST.encode())
    assert "rename it in UTF-8" in row["message"]
    assert [p["code"] for p in outcome["problems"] if p["source_path"] == "caf\\xe9 cr\\xe8me.md"] == ["file_name_not_utf8"]


def test_symlinks(outcome: dict[str, Any]) -> None:
    assert outcome["quarantine"]["symlink_outside.md"]["reason"] == "symlink_outside"
    assert "symlink_inside.md" in outcome["posts"]


def test_nothing_ran_and_nothing_escaped(outcome: dict[str, Any]) -> None:
    root: Path = outcome["root"]
    assert not (root / "PWNED").exists()
    written = {p.resolve() for p in root.rglob("*") if p.is_file()}
    allowed = {p for p in written if (outcome["out"].resolve() in p.parents) or p.parent == (root / "raw").resolve()}
    assert written - allowed == {(root / "secret.md").resolve()}
    for row in outcome["posts"].values():
        if row["output_path"] is None:  # merged into a duplicate twin: not written
            assert row["duplicate_of"] in outcome["posts"]
            continue
        assert (outcome["out"] / row["output_path"]).resolve().parent == (outcome["out"] / "posts").resolve()


def test_setext_underline_and_diff3_text(outcome: dict[str, Any]) -> None:
    assert "Title\n=======" in outcome["posts"]["setext_heading.md"]["body"]
    assert outcome["posts"]["diff3_section.md"]["body"] == "a"
    assert outcome["posts"]["invalid_utf8.md"]["body"] == "café crème"


def test_slug_collisions_after_sanitising_get_distinct_names(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, slug in (("a.md", "été/x"), ("b.md", "été?x"), ("c.md", "ÉTÉ-X")):
        (raw / name).write_text(f"---\ntitle: T\nslug: '{slug}'\n---\nbody\n")
    run_pipeline(raw, tmp_path / "out", load_config({}))
    rows = pq.read_table(tmp_path / "out" / "posts.parquet").to_pylist()
    names = [r["output_path"] for r in rows]
    assert len(set(n.casefold() for n in names)) == 3
    assert sum("slug_collision" in r["problems"] for r in rows) == 2


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"title": " "}, "empty title"),
        ({"tags": ["mobilit\\u00e9"]}, "escaped unicode"),
        ({"url": "/2014/07/05/a/"}, "two posts share a URL"),
    ],
)
def test_output_validation_rejects_broken_posts(tmp_path: Path, change: dict[str, Any], rule: str) -> None:
    import pyarrow as pa

    from pipeline.errors import OutputInvalid
    from pipeline.tables import POSTS_SCHEMA, validate_posts

    run_pipeline(Path(__file__).parent.parent / "raw", tmp_path / "out", load_config({}))
    rows = pq.read_table(tmp_path / "out" / "posts.parquet").to_pylist()
    rows[0]["url"] = "/2014/07/05/a/"
    rows[1] = {**rows[1], **change}
    pq.write_table(pa.Table.from_pylist(rows, schema=POSTS_SCHEMA), tmp_path / "bad.parquet")
    with pytest.raises(OutputInvalid, match=rule):
        validate_posts(tmp_path / "bad.parquet")


def test_output_validation_rejects_a_wrong_schema(tmp_path: Path) -> None:
    import pyarrow as pa

    from pipeline.errors import OutputInvalid
    from pipeline.tables import validate_posts

    run_pipeline(Path(__file__).parent.parent / "raw", tmp_path / "out", load_config({}))
    table = pq.read_table(tmp_path / "out" / "posts.parquet")
    wrong = table.set_column(table.schema.get_field_index("wp_author_id"), "wp_author_id", table["wp_author_id"].cast(pa.string()))
    pq.write_table(wrong, tmp_path / "bad.parquet")
    with pytest.raises(OutputInvalid, match="schema differs from POSTS_SCHEMA"):
        validate_posts(tmp_path / "bad.parquet")


def test_a_renamed_slug_that_also_appears_in_the_date_keeps_the_date(tmp_path: Path) -> None:
    """Two posts want /2010/01/04/01/: the second gets a new slug, and its Jekyll file name is
    the date, then that slug (the old slug "01" also occurs inside "2010-01-04")."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, body in (("a.md", "First body."), ("b.md", "Second, different body.")):
        (raw / name).write_text(f"---\ntitle: Same\ndate: 2010-01-04 10:00:00 +0100\nslug: '01'\n---\n{body}\n", encoding="utf-8")
    run_pipeline(raw, tmp_path / "out", load_config({}))
    rows = pq.read_table(tmp_path / "out" / "posts.parquet", columns=["slug", "output_path"]).to_pylist()
    assert len({r["slug"] for r in rows}) == 2
    for row in rows:
        assert row["output_path"] == f"posts/2010-01-04-{row['slug']}.md"
        assert (tmp_path / "out" / row["output_path"]).is_file()
