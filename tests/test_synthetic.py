"""The synthetic archive (benchmarks/synthetic.py) through the whole pipeline: its acceptance properties hold.

The generator knows what it put in each post, so the pipeline's report must give the same
counts: conflict blocks (in total and by region), export rows by layout, summer dates
corrected, spills and excerpts cut. Both sides are checked: ``ours`` drops the debris with
theirs' side, ``theirs`` makes the decoders do the work.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from benchmarks.synthetic import generate
from pipeline.config import load_config
from pipeline.runner import run_pipeline

POSTS = 300
SEED = 20240601
MARKER_LINE = re.compile(r"^(?:<{7}|>{7}|\|{7})(?: |$)", re.M)
EXPORT_ROW = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(https?://|/\d{4}/)")
ESCAPE = re.compile(r"\\u[0-9a-fA-F]{4}")


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    raw = tmp_path_factory.mktemp("synthetic") / "raw"
    return raw, generate(raw, POSTS, SEED)


@pytest.fixture(scope="module", params=["ours", "theirs"])
def cleaned(request: pytest.FixtureRequest, archive: tuple[Path, dict[str, int]], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    raw, _ = archive
    out = tmp_path_factory.mktemp(f"clean-{request.param}") / "clean"
    report = run_pipeline(raw, out, load_config({"resolve": {"side": request.param}}))
    return out, report


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generator_writes_the_posts_it_counts(archive: tuple[Path, dict[str, int]]) -> None:
    raw, counts = archive
    files = sorted(raw.iterdir())
    assert len(files) == counts["posts"] == POSTS
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d-[a-z0-9-]+\.md", f.name) for f in files)
    assert counts["rows"] + counts["rows.none"] == POSTS
    assert counts["blocks"] == sum(counts[f"blocks.{r}"] for r in ("front_matter", "front_matter_body", "body", "export_row"))
    text = "".join(f.read_text(encoding="utf-8") for f in files)
    assert text.count("<<<<<<< HEAD\n") == counts["blocks"]
    assert len(re.findall(r"^_x000D_$", text, re.M)) == counts["x000d_standalone"]
    # The mix the real archive has, roughly (DEFECTS.md): most posts conflict in the front matter, about 19% carry a row.
    assert 0.7 < (counts["blocks.front_matter"] + counts["blocks.front_matter_body"]) / POSTS < 0.95
    assert 0.1 < counts["rows"] / POSTS < 0.3
    for needle in ("’", "«\u00a0", "\u00a0", "\\u00e9", "_x000D_", "tags: []", "@example.org", "/-.html"):
        assert needle in text, needle


def test_same_seed_gives_byte_identical_archives(archive: tuple[Path, dict[str, int]], tmp_path: Path) -> None:
    raw, counts = archive
    again = tmp_path / "again"
    assert generate(again, POSTS, SEED) == counts
    assert _tree(again) == _tree(raw)
    other = tmp_path / "other"
    generate(other, POSTS, SEED + 1)
    assert _tree(other) != _tree(raw)


def test_slices_do_not_depend_on_workers(tmp_path: Path) -> None:
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    assert generate(serial, 2100, 5, workers=1) == generate(parallel, 2100, 5, workers=2)
    assert _tree(serial) == _tree(parallel)


def test_generate_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "old.md").write_text("x", encoding="utf-8")
    with pytest.raises(FileExistsError):
        generate(tmp_path, 1, 0)


def test_accounting(cleaned: tuple[Path, dict[str, Any]]) -> None:
    out, report = cleaned
    assert report["inputs"] == report["cleaned"] + report["quarantined"] == POSTS
    assert report["quarantined"] == 0, report["quarantine_reasons"]
    assert report["accounting_ok"]
    assert json.loads((out / "report.json").read_text(encoding="utf-8")) == report
    # Byte-identical `-2` twins may be merged into one Markdown file (report key `duplicates_merged`).
    written = report.get("markdown_written", POSTS - report.get("duplicates_merged", 0))
    assert len(list((out / "posts").glob("*.md"))) == written


def test_twins_are_the_only_duplicates(archive: tuple[Path, dict[str, int]], cleaned: tuple[Path, dict[str, Any]]) -> None:
    _, counts = archive
    _, report = cleaned
    if "duplicates_merged" not in report:
        pytest.skip("this pipeline does not merge duplicates")
    assert report["duplicates_merged"] == counts["twins"]


def test_every_conflict_block_is_found(archive: tuple[Path, dict[str, int]], cleaned: tuple[Path, dict[str, Any]]) -> None:
    _, counts = archive
    _, report = cleaned
    assert report["conflict_blocks"] == counts["blocks"]
    assert report["blocks_by_region"] == {
        r: counts[f"blocks.{r}"] for r in ("body", "export_row", "front_matter", "front_matter_body") if counts[f"blocks.{r}"]
    }
    assert report["blocks_sides_differ"] == counts["blocks_sides_differ"]


def test_export_rows_parsed_by_layout(archive: tuple[Path, dict[str, int]], cleaned: tuple[Path, dict[str, Any]]) -> None:
    _, counts = archive
    _, report = cleaned
    generated = {key.removeprefix("rows."): value for key, value in counts.items() if key.startswith("rows.") and value}
    assert report["export_rows_by_parse"] == generated
    assert report["export_rows"] == counts["rows"]
    problems = report["problems_by_code"]
    assert problems.get("wp_row_spill", 0) == counts["row_spills"]
    assert problems.get("wp_row_excerpt", 0) == counts["row_excerpts"]
    assert problems.get("date_offset_corrected", 0) == counts["summer_dates"]


def test_markdown_is_clean(cleaned: tuple[Path, dict[str, Any]]) -> None:
    out, _ = cleaned
    for path in sorted((out / "posts").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        assert not MARKER_LINE.search(text), path.name
        assert "_x000D_" not in text, path.name
        assert not EXPORT_ROW.search(text), path.name
        tags = re.search(r"^tags:.*?(?=^\w|^---)", text, re.M | re.S)
        assert tags is not None and not ESCAPE.search(tags.group(0)), path.name


def test_parquet_tags_and_bodies_are_clean(cleaned: tuple[Path, dict[str, Any]]) -> None:
    out, _ = cleaned
    table = pq.read_table(out / "posts.parquet", columns=["tags", "body"]).to_pylist()
    assert len(table) == POSTS
    for row in table:
        assert not any(ESCAPE.search(tag) for tag in row["tags"]), row["tags"]
        assert "_x000D_" not in row["body"]
        assert not EXPORT_ROW.search(row["body"])
