"""The hard cases of DEFECTS.md that involve the export row, read exactly, on the real archive."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

Runs = dict[str, tuple[Path, dict[str, Any]]]
AUTHOR_7 = {
    "wp_author_id": 7,
    "wp_author_login": "gabrielplassat3948",
    "wp_author_email": "gabriel.plassat@ademe.fr",
    "wp_author_first_name": "Gabriel",
    "wp_author_last_name": "Plassat",
    "wp_author_display_name": "Gabriel Plassat",
}
CASES: dict[str, dict[str, Any]] = {
    "2021-01-26-made-for-you.md": {
        "wp_row_parse": "unquoted_after_text",
        "wp_slug": "made-for-you",
        "wp_categories": ["Mes posts"],
        "wp_tags": ["Amazon", "compte"],
        **AUTHOR_7,
    },
    "2021-09-12-mobilites-et-effets-de-reseaux.md": {
        "wp_row_parse": "unquoted_after_text",
        "wp_slug": "mobilites-et-effets-de-reseaux",
        "wp_categories": ["Mes posts"],
        "wp_tags": ["effet de réseau", "plateforme"],
    },
    "2010-08-30-None.md": {"wp_row_parse": "url_slug_only", "wp_slug": "for-a-strong-america-some-lessons-for-europe", "wp_status": None},
    "2013-11-08-et-si-le-covoiturage-netait-quun-jeu-a-reinventer.md": {
        "wp_author_id": 27,
        "wp_author_login": "pierre trami",
        "wp_slug": "et-si-le-covoiturage-netait-quun-jeu-a-reinventer",
        "wp_categories": ["Articles invités"],
    },
    "2010-03-17-les-energies.md": {"wp_categories": ["MétaNotes"], "wp_modified_text": "2010-03-17 16:38:34"},
    "2014-06-30-moveo-days-quelle-mobilite-pour-demain.md": {
        "wp_author_id": 24,
        "tags": ["art de la guerre"],
        "categories": ["Articles invités"],
    },
    "2010-05-26-quand-lart-utilise-lespace-public.md": {"wp_row_parse": "quoted_after_text", "wp_status": "publish"},
}


@pytest.fixture(scope="module")
def rows(corpus_runs: Runs) -> dict[str, dict[str, dict[str, Any]]]:
    return {side: {r["source_path"]: r for r in pq.read_table(out / "posts.parquet").to_pylist()} for side, (out, _) in corpus_runs.items()}


@pytest.mark.parametrize("side", ["ours", "theirs"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_hard_case_row_fields(rows: dict[str, dict[str, dict[str, Any]]], side: str, name: str) -> None:
    row = rows[side][name]
    for key, value in CASES[name].items():
        if key == "wp_modified_text":
            assert row["wp_modified"] is not None and row["wp_spill"].startswith('7846""')
        else:
            assert row[key] == value, key
    assert row["wp_row_raw"] is not None


def test_bajaj_twin_residue_url_on_theirs(rows: dict[str, dict[str, dict[str, Any]]]) -> None:
    name = "2012-01-03-bajaj-re60-contient-les-bases-dun-basculement-vers-de-nouvelles-mobilites-2.md"
    theirs = rows["theirs"][name]
    assert theirs["wp_url"].endswith("-mobilites/-2.html")
    assert theirs["wp_slug"] == rows["ours"][name]["wp_slug"] == "bajaj-re60-contient-les-bases-dun-basculement-vers-de-nouvelles-mobilites-2"


def test_row_cross_checks_on_every_parsed_row(rows: dict[str, dict[str, dict[str, Any]]]) -> None:
    full = [r for r in rows["ours"].values() if r["wp_row_parse"] in ("quoted_line_start", "quoted_after_text", "unquoted_after_text")]
    assert len(full) == 186
    for row in full:
        assert row["wp_post_date"] == row["date"], row["source_path"]
        assert row["wp_path"].endswith(f"/{row['wp_slug']}.html"), row["source_path"]
        assert isinstance(row["wp_author_id"], int)


def test_authors_and_no_email_in_markdown(corpus_runs: Runs, corpus: Path) -> None:
    """Author emails stay in authors.parquet: none in any front matter, and one in a body only
    where the author wrote it into the post's own text (a contact line, a mailto link), never from the row."""
    out, _ = corpus_runs["ours"]
    rows = {r["output_path"]: r for r in pq.read_table(out / "posts.parquet").to_pylist()}
    authors = pq.read_table(out / "authors.parquet").to_pylist()
    assert {a["wp_author_id"]: a["post_count"] for a in authors} == {7: 167, 18: 15, 21: 1, 24: 1, 27: 1, 35: 1}
    emails = {a["email"] for a in authors if a["email"]}
    assert emails == {"gabriel.plassat@ademe.fr"}
    in_bodies = 0
    for path in (out / "posts").iterdir():
        front_matter, body = path.read_text(encoding="utf-8").split("\n---\n", 1)
        assert not any(email in front_matter for email in emails), path.name
        if any(email in body for email in emails):
            in_bodies += 1
            raw = (corpus / rows[f"posts/{path.name}"]["source_path"]).read_text(encoding="utf-8")
            authored = [line for line in raw.split("\n") if not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(https?:|/\d{4}/)", line)]
            assert any(email in line for line in authored for email in emails), path.name
    assert in_bodies == 3
