"""Issue 2's acceptance checks, on all 998 posts of the real archive, for both sides."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import frontmatter
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.conflicts import resolve_conflicts
from pipeline.tables import CONFLICTS_SCHEMA, POSTS_SCHEMA, QUARANTINE_SCHEMA, check_schema
from tests.conftest import RAW

Runs = dict[str, tuple[Path, dict[str, Any]]]
SIDES = ("ours", "theirs")
MARKER = re.compile(r"^(<{7}|>{7}|\|{7})( |$)", re.M)
ESCAPE = re.compile(r"\\u[0-9a-fA-F]{4}")
EXPORT_ROW = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(https?://|/\d{4}/)")
# An independent reading of the ours side, simpler than the pipeline's: the test oracle.
OURS_BLOCK = re.compile(r"^<<<<<<< [^\n]*\n(.*?)^=======\n.*?^>>>>>>> [^\n]*\n", re.S | re.M)
TYPOGRAPHY = "’‘“”«»"


def _posts(runs: Runs, side: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(runs[side][0] / "posts.parquet").to_pylist()
    return rows


def _ours_text(corpus: Path, source_path: str) -> str:
    return OURS_BLOCK.sub(lambda m: m.group(1), (corpus / source_path).read_text(encoding="utf-8"))


@pytest.mark.parametrize("side", SIDES)
def test_every_input_is_cleaned_and_counts_add_up(corpus_runs: Runs, corpus: Path, side: str) -> None:
    out, report = corpus_runs[side]
    assert report["inputs"] == len(list(corpus.iterdir())) == 998
    assert report["inputs"] == report["cleaned"] + report["quarantined"]
    assert report["quarantined"] == 0
    assert report["conflict_blocks"] == 1147
    # Every cleaned post is written but the 20 duplicates merged into their twins.
    assert report["duplicates_merged"] == 20
    assert len(list((out / "posts").iterdir())) == report["markdown_written"] == report["cleaned"] - 20


@pytest.mark.parametrize("side", SIDES)
def test_nothing_left_in_markdown(corpus_runs: Runs, side: str) -> None:
    out, _ = corpus_runs[side]
    texts = [p.read_text(encoding="utf-8") for p in sorted((out / "posts").iterdir())]
    assert sum(bool(MARKER.search(t)) for t in texts) == 0
    assert sum("_x000D_" in t for t in texts) == 0
    assert sum(bool(EXPORT_ROW.search(t)) for t in texts) == 0
    for row in _posts(corpus_runs, side):
        assert not ESCAPE.search(" ".join(row["tags"])), row["source_path"]
        assert "_x000D_" not in row["body"] and not EXPORT_ROW.search(row["body"]), row["source_path"]


@pytest.mark.parametrize("side", SIDES)
def test_tags_equal_the_careful_ours_reading(corpus_runs: Runs, corpus: Path, side: str) -> None:
    distinct: set[str] = set()
    recovered = 0
    for row in _posts(corpus_runs, side):
        match = re.search(r"^tags: (.*)$", _ours_text(corpus, row["source_path"]), re.M)
        assert match, row["source_path"]
        expected = yaml.safe_load(match.group(1))
        distinct.update(expected)
        if "tags_recovered_from_row" in row["problems"]:
            recovered += 1
            # The row's term cell is the categories glued in front of the tags joined by |.
            assert expected == [] and row["wp_terms"] == "".join(row["wp_categories"]) + "|".join(row["tags"])
        else:
            assert row["tags"] == expected, row["source_path"]
    assert len(distinct) == 261
    assert recovered == 13


@pytest.mark.parametrize("side", SIDES)
def test_markdown_loads_with_title_date_tags(corpus_runs: Runs, side: str) -> None:
    out, _ = corpus_runs[side]
    for path in sorted((out / "posts").iterdir()):
        post = frontmatter.load(path)
        assert isinstance(post["title"], str) and post["title"], path.name
        assert isinstance(post["date"], datetime) and post["date"].utcoffset() is not None, path.name
        assert isinstance(post["tags"], list) and all(isinstance(t, str) for t in post["tags"]), path.name
        assert "@" not in str(post.get("author", "")), path.name


@pytest.mark.parametrize("side", SIDES)
def test_parquet_reads_back_with_the_documented_schema(corpus_runs: Runs, side: str) -> None:
    out, report = corpus_runs[side]
    assert check_schema(out / "posts.parquet", POSTS_SCHEMA).num_rows == report["cleaned"]
    assert check_schema(out / "conflicts.parquet", CONFLICTS_SCHEMA).num_rows == 1147
    assert check_schema(out / "quarantine.parquet", QUARANTINE_SCHEMA).num_rows == 0


def test_typography_is_kept(corpus_runs: Runs, corpus: Path) -> None:
    """Every curly quote and guillemet of the resolved input is in the output body or in the
    spill/excerpt columns the row carried out of it; bodies alone keep at least 97%, the rest
    being spills that duplicate body text."""
    before = in_bodies = in_outputs = 0
    for row in _posts(corpus_runs, "ours"):
        body = _ours_text(corpus, row["source_path"]).split("\n---\n", 1)[1]
        count = sum(body.count(c) for c in TYPOGRAPHY)
        kept = sum(row["body"].count(c) for c in TYPOGRAPHY)
        carried = sum((row[k] or "").count(c) for k in ("wp_spill", "wp_excerpt") for c in TYPOGRAPHY)
        before, in_bodies, in_outputs = before + count, in_bodies + kept, in_outputs + kept + carried
    assert before > 17_000
    assert in_outputs == before
    assert in_bodies / before >= 0.97


def test_sides_converge(corpus_runs: Runs) -> None:
    ours = {r["source_path"]: r for r in _posts(corpus_runs, "ours")}
    theirs = {r["source_path"]: r for r in _posts(corpus_runs, "theirs")}
    assert ours.keys() == theirs.keys()
    differ_beyond_url_forms = ("wp_url", "wp_path", "wp_row_raw", "old_paths", "body", "problems", "sha256")
    for path, row in ours.items():
        for key, value in row.items():
            if key not in differ_beyond_url_forms:
                assert theirs[path][key] == value, (path, key)


def test_export_rows_and_regions(corpus_runs: Runs) -> None:
    _, report = corpus_runs["ours"]
    assert report["blocks_by_region"] == {"body": 137, "export_row": 185, "front_matter": 781, "front_matter_body": 44}
    assert report["export_rows_by_parse"] == {
        "none": 811,
        "quoted_after_text": 57,
        "quoted_line_start": 127,
        "unquoted_after_text": 2,
        "url_slug_only": 1,
    }
    assert report["blocks_sides_differ"] == 5


def test_seed_004_is_the_ours_resolution_of_its_twin(corpus: Path) -> None:
    twin = corpus / "2011-11-18-apres-casinoauchanleclerccarrefour-drive-amazon-flow-tesco-drive-betterplace.md"
    seed = next(RAW.glob("004_*"))
    assert resolve_conflicts(twin.read_text(encoding="utf-8"), "ours").text == seed.read_text(encoding="utf-8")


def test_seed_000_is_byte_identical_to_its_corpus_file(corpus: Path) -> None:
    seed = next(RAW.glob("000_*"))
    twin = corpus / "2014-12-05-alibaba-prend-position-dans-lautomobile-et-vise-la-place-centrale.md"
    assert seed.read_bytes() == twin.read_bytes()
