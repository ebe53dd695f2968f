"""The data-quality HTML report: pure pieces, numbers equal report.json, determinism, headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import load_config
from pipeline.report_html import (
    Plot,
    ReportData,
    badge,
    breakable,
    build_html,
    changes_by_stage,
    count_table,
    metric,
    other_section,
    problems_section,
    render_report,
    stages_section,
    summarise,
    summary_section,
    top_codes,
    write_report,
)
from pipeline.runner import run_pipeline
from tests.conftest import RAW

TINY: dict[str, Any] = {
    "side": "ours",
    "inputs": 5,
    "cleaned": 4,
    "quarantined": 1,
    "accounting_ok": True,
    "quarantine_reasons": {"empty_file": 1},
    "conflict_blocks": 3,
    "blocks_by_region": {"body": 1, "front_matter": 2},
    "blocks_sides_differ": 1,
    "export_rows": 2,
    "export_rows_by_parse": {"none": 2, "quoted_line_start": 2},
    "authors": 1,
    "markdown_written": 4,
    "drafts": 1,
    "duplicates_merged": 0,
    "old_urls_redirected": 7,
    "links_by_status": {"broken": 1, "external": 9},
    "links_near_by_rule": {},
    "posts_by_severity": {"info": 3, "warning": 1, "fatal": 1},
    "problems_by_code": {"empty_file": 1, "conflict_resolved": 3, "link_broken": 1},
    "changes_by_step": {"resolve.resolve_conflicts": 3, "export.unwrap_empty_links": 5, "export.drop_csv_debris": 8, "decode.fix_mojibake": 2},
}
FAKE_PLOTS = [Plot(f"p{i}", f"plot {i}", "caption", '<svg xmlns="http://www.w3.org/2000/svg"/>') for i in range(6)]


class _Dom(HTMLParser):
    """Collects (data-metric, text) pairs, img sources, svg count and every src/href."""

    def __init__(self) -> None:
        super().__init__()
        self.metrics: list[tuple[str, str]] = []
        self.images: list[str] = []
        self.svgs = 0
        self.links: list[str] = []
        self.tags: set[str] = set()
        self._open: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.add(tag)
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag == "svg":
            self.svgs += 1
        for name in ("src", "href"):
            if values.get(name):
                self.links.append(values[name] or "")
        if tag in ("img", "meta", "br", "wbr", "link", "input"):
            return
        self._open.append(values.get("data-metric"))
        if values.get("data-metric") is not None:
            self.metrics.append((values["data-metric"] or "", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("img", "meta", "br", "wbr", "link", "input"):
            return
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open and self._open[-1] is not None and self.metrics and self.metrics[-1][0] == self._open[-1]:
            path, text = self.metrics[-1]
            self.metrics[-1] = (path, text + data)


def parse(text: str) -> _Dom:
    dom = _Dom()
    dom.feed(text)
    dom.close()
    return dom


def lookup(report: dict[str, Any], path: str) -> Any:
    """``blocks_by_region.front_matter`` -> report["blocks_by_region"]["front_matter"] (the first dot splits)."""
    head, _, rest = path.partition(".")
    value = report[head]
    return value[rest] if rest else value


def expected_text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, bool) else str(value)


def check_metrics(text: str, report: dict[str, Any], complete: bool = True) -> set[str]:
    """Every data-metric value equals report.json; with ``complete``, every value of report.json is shown.

    Returns the key paths seen.
    """
    metrics = parse(text).metrics
    assert metrics, "no data-metric in the page"
    wrong = [(path, shown, lookup(report, path)) for path, shown in metrics if shown != expected_text(lookup(report, path))]
    assert wrong == []
    seen = {path for path, _ in metrics}
    if not complete:
        return seen
    leaves = set()
    for key, value in report.items():
        if isinstance(value, dict):
            leaves |= {f"{key}.{k}" for k in value}
        else:
            leaves.add(key)
    assert leaves - seen == set(), "report.json values missing from the page"
    return seen


# ---------------------------------------------------------------------------------------------
# (a) pure pieces on a hand-made report


def test_metric_formats_and_escapes() -> None:
    assert metric("inputs", 998) == '<span class="num" data-metric="inputs">998</span>'
    assert metric("accounting_ok", True).endswith(">true</span>")
    assert metric("quarantine_reasons.a<b", "x&y") == '<span class="num" data-metric="quarantine_reasons.a&lt;b">x&amp;y</span>'
    assert breakable("quoted_line_start") == "quoted_<wbr>line_<wbr>start"
    assert badge("warning") == '<span class="sev sev-warning">warning</span>'


def test_summary_shows_accounting_and_cards() -> None:
    html = summary_section(TINY)
    assert 'class="accounting ok"' in html
    assert check_metrics(html, TINY, complete=False) >= {"inputs", "cleaned", "quarantined", "accounting_ok", "side", "drafts", "old_urls_redirected"}
    assert 'class="accounting bad"' in summary_section({**TINY, "accounting_ok": False})


def test_a_key_missing_from_report_json_shows_a_dash_not_a_number() -> None:
    report = {k: v for k, v in TINY.items() if k not in ("drafts", "side")}
    html = summary_section(report) + stages_section(report)
    assert 'data-metric="drafts"' not in html and 'data-metric="side"' not in html
    assert 'title="not in report.json: drafts">–<' in html
    check_metrics(html, report, complete=False)


def test_count_table_largest_first_and_empty() -> None:
    html = count_table("links", "links_by_status", TINY["links_by_status"])
    assert html.index('data-metric="links_by_status.external"') < html.index('data-metric="links_by_status.broken"')
    assert 'class="none">none<' in count_table("rules", "links_near_by_rule", {})


def test_changes_grouped_by_stage_in_pipeline_order() -> None:
    groups = changes_by_stage({**TINY["changes_by_step"], "later.step": 1, "nodot": 4})
    assert list(groups) == ["resolve", "decode", "export", "later", "other"]
    assert groups["export"] == [("export.drop_csv_debris", 8), ("export.unwrap_empty_links", 5)]
    html = stages_section(TINY)
    for stage in ("resolve", "decode", "extract", "export"):
        assert f'<span class="dot stage-{stage}"></span>{stage}</h3>' in html
    assert 'data-metric="changes_by_step.export.drop_csv_debris">8<' in html
    assert html.index('data-metric="changes_by_step.decode.fix_mojibake"') < html.index('data-metric="export_rows"')


def test_problems_by_severity_then_count() -> None:
    html = problems_section(TINY, {"empty_file": "fatal", "conflict_resolved": "info", "link_broken": "warning"})
    order = [html.index(f'data-metric="problems_by_code.{c}"') for c in ("empty_file", "link_broken", "conflict_resolved")]
    assert order == sorted(order)
    assert html.index('data-metric="posts_by_severity.fatal"') < html.index('data-metric="posts_by_severity.info"')
    assert "The file is empty" in html  # meaning from pipeline.problems
    assert "no problems" in problems_section({}, {})


def test_unknown_report_keys_are_still_shown() -> None:
    assert other_section(TINY) == ""
    html = other_section({**TINY, "new_count": 3, "new_map": {"a": 1}, "label": "x"})
    assert 'data-metric="new_count">3<' in html and 'data-metric="new_map.a">1<' in html and 'data-metric="label">x<' in html


def _post(
    path: str, date_local: str | None, tags: list[str], *, draft: bool = False, duplicate_of: str | None = None, parse: str = "none", title: str = "T"
) -> dict[str, Any]:
    """A posts.parquet row with the columns the report reads."""
    return {
        "source_path": path,
        "title": title,
        "date_local": date_local,
        "tags": tags,
        "draft": draft,
        "duplicate_of": duplicate_of,
        "wp_row_parse": parse,
    }


def test_summarise_hand_made_rows() -> None:
    posts = [
        _post("a.md", "2010-01-01T00:00:00+01:00", ["x", "y"]),
        _post("b.md", "2012-05-01T00:00:00+02:00", ["x"], draft=True, parse="quoted_line_start"),
        _post("c.md", "2012-05-01T00:00:00+02:00", ["x", "z"], duplicate_of="b.md"),
        _post("d.md", None, []),
    ]
    problems = [
        {"source_path": "a.md", "code": "conflict_resolved", "severity": "info"},
        {"source_path": "a.md", "code": "link_broken", "severity": "warning"},
        {"source_path": "a.md", "code": "link_broken", "severity": "warning"},
        {"source_path": "b.md", "code": "title_missing", "severity": "error"},
        {"source_path": "e.md", "code": "empty_file", "severity": "fatal"},
    ]
    data = summarise(
        "clean",
        TINY,
        posts=posts,
        problems=problems,
        quarantine=[{"source_path": "e.md", "reason": "empty_file", "message": "empty", "line": None}],
        conflicts=[
            {"source_path": "a.md", "start_line": 3, "end_line": 9, "region": "body", "ours_lines": 2, "theirs_lines": 3, "equivalent": False},
            {"source_path": "a.md", "start_line": 1, "end_line": 2, "region": "body", "ours_lines": 1, "theirs_lines": 1, "equivalent": True},
        ],
        links=[
            {"source_path": "a.md", "original_target": "/gone", "status": "broken"},
            {"source_path": "b.md", "original_target": "/gone", "status": "broken"},
            {"source_path": "b.md", "original_target": "/ok", "status": "resolved"},
        ],
    )
    assert list(data.posts_per_year) == ["2010", "2011", "2012", "no date"]  # the empty year 2011 is kept
    assert data.posts_per_year["2012"] == {"draft": 1, "duplicate": 1}
    assert data.posts_per_year["2011"] == {}
    assert data.rows_per_year["2012"] == {"with_row": 1, "without_row": 1}
    assert data.problems_per_year == {
        "2010": {"info": 1, "warning": 2},
        "2011": {},
        "2012": {"error": 1},
        "no date": {},
        "quarantined": {"fatal": 1},
    }
    assert data.flagged_per_year["2010"] == {"link_broken": 2}
    assert data.top_tags == (("x", 2), ("y", 1))  # the merged duplicate c.md does not count
    # most problems first; ties: worst severity first
    assert [(p.source_path, p.total, p.worst) for p in data.problem_posts] == [("a.md", 3, "warning"), ("e.md", 1, "fatal"), ("b.md", 1, "error")]
    assert data.problem_posts[0].codes == (("link_broken", 2), ("conflict_resolved", 1))
    assert [b.start_line for b in data.differing_blocks] == [3]
    assert data.broken_targets == (("/gone", 2, 2),)
    assert data.quarantine[0].reason == "empty_file"
    kept, series = top_codes({"2010": {"a": 5, "b": 1}, "2011": {"c": 2}})
    assert [s[0] for s in series][:3] == ["a", "c", "b"] and series[-1][0] == "other"
    assert kept["2011"]["c"] == 2 and kept["2011"]["other"] == 0

    page = build_html(data, FAKE_PLOTS)
    dom = parse(page)
    check_metrics(page, TINY)
    assert len(dom.images) == 6 and all(src.startswith("data:image/svg+xml;base64,") for src in dom.images)
    assert all(link.startswith(("#", "data:")) for link in dom.links), "the page must load nothing from outside"
    assert not dom.tags & {"script", "link", "iframe", "object"}
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "e.md" in page and "empty_file" in page and "/gone" in page


def test_check_metrics_catches_a_wrong_or_missing_number() -> None:
    page = build_html(summarise("clean", TINY), [])
    check_metrics(page, TINY)
    with pytest.raises(AssertionError):
        check_metrics(page, {**TINY, "drafts": 2})
    with pytest.raises(AssertionError):
        check_metrics(page.replace('data-metric="blocks_by_region.body"', 'data-other="x"'), TINY)


def test_build_html_escapes_file_names_and_titles() -> None:
    data = summarise(
        "<out>",
        TINY,
        posts=[_post("<b>.md", None, [], title="<script>x</script>")],
        problems=[{"source_path": "<b>.md", "code": "title_mangled", "severity": "warning"}],
    )
    page = build_html(data, [])
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page and "&lt;b&gt;.md" in page and "&lt;out&gt;" in page


def test_matplotlib_is_not_imported_with_the_module() -> None:
    code = "import sys, pipeline.report_html, pipeline.cli; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ---------------------------------------------------------------------------------------------
# (b) a real run of the seeds


@pytest.fixture(scope="module")
def seeds_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repo's seeds plus two files that are quarantined (to fill the quarantine table)."""
    raw = tmp_path_factory.mktemp("seeds-raw")
    for path in sorted(RAW.iterdir()):
        if path.is_file():
            shutil.copy(path, raw / path.name)
    (raw / "zz-empty.md").write_bytes(b"")
    (raw / "zz-binary.md").write_bytes(b"---\ntitle: x\n---\n\x00\x00")
    return raw


@pytest.fixture(scope="module")
def seeds_out(seeds_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``seeds_raw`` through the whole pipeline, then report.html written."""
    raw = seeds_raw
    out = tmp_path_factory.mktemp("seeds") / "clean"
    run_pipeline(raw, out, load_config({}))
    write_report(out)
    return out


def test_seed_metrics_equal_report_json(seeds_out: Path) -> None:
    report = json.loads((seeds_out / "report.json").read_text(encoding="utf-8"))
    page = (seeds_out / "report.html").read_text(encoding="utf-8")
    seen = check_metrics(page, report)
    assert {"inputs", "blocks_by_region.front_matter", "export_rows_by_parse.none", "quarantine_reasons.empty_file"} <= seen
    assert report["quarantined"] == 2
    assert "zz-empty.md" in page and "zz-binary.md" in page  # the quarantine table
    dom = parse(page)
    assert len(dom.images) >= 5 and all(src.startswith("data:image/svg+xml;base64,") for src in dom.images)
    assert [p.name for p in seeds_out.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_seed_plot_data_adds_up_to_report_json(seeds_out: Path) -> None:
    from pipeline.report_html import load_report_data

    data: ReportData = load_report_data(seeds_out)
    report = data.report
    assert sum(sum(c.values()) for c in data.posts_per_year.values()) == report["cleaned"]
    assert sum(c.get("with_row", 0) for c in data.rows_per_year.values()) == report["export_rows"]
    assert sum(sum(c.values()) for c in data.problems_per_year.values()) == sum(report["problems_by_code"].values())
    assert data.problems_per_year["quarantined"] == {"fatal": 2}


def test_seed_report_is_deterministic(seeds_raw: Path, seeds_out: Path, tmp_path: Path) -> None:
    first = (seeds_out / "report.html").read_bytes()
    assert render_report(seeds_out).encode("utf-8") == first
    # Another process, another hash seed: same bytes.
    code = "import sys, pathlib, pipeline.report_html as r; sys.stdout.buffer.write(r.render_report(pathlib.Path(sys.argv[1])).encode())"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    assert subprocess.run([sys.executable, "-c", code, str(seeds_out)], capture_output=True, env=env, check=True).stdout == first
    # Another run of the same inputs (serial this time) into a folder of the same name gives the same page.
    again = tmp_path / "clean"
    run_pipeline(seeds_raw, again, load_config({"run": {"workers": 1}}))
    assert write_report(again).read_bytes() == first


# ---------------------------------------------------------------------------------------------
# (c) headless Chromium


def _chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if found is None:
        pytest.skip("chromium is not installed (apt-get install chromium); the browser checks need it")
    return found


def _run_chromium(html_path: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
        html_path.resolve().as_uri(),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def _check_in_browser(html_path: Path, report: dict[str, Any], tmp_path: Path, min_images: int) -> None:
    dom_text = _run_chromium(html_path, tmp_path / "profile-dom", "--dump-dom").stdout
    dom = parse(dom_text)
    assert len(dom.images) + dom.svgs >= min_images
    check_metrics(dom_text, report)


def test_chromium_renders_the_seed_report(seeds_out: Path, tmp_path: Path) -> None:
    report = json.loads((seeds_out / "report.json").read_text(encoding="utf-8"))
    _check_in_browser(seeds_out / "report.html", report, tmp_path, 5)
    shot = tmp_path / "shot.png"
    _run_chromium(seeds_out / "report.html", tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,2400")
    assert shot.stat().st_size > 10_000
    from PIL import Image

    with Image.open(shot) as image:
        assert image.format == "PNG" and image.size == (1280, 2400)
        colours = image.convert("RGB").resize((320, 600)).getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50, "the screenshot is (nearly) blank"


@pytest.mark.corpus
def test_real_archive_report(corpus_runs: dict[str, tuple[Path, dict[str, Any]]], tmp_path: Path) -> None:
    out, report = corpus_runs["ours"]
    page = render_report(out)
    assert render_report(out) == page
    seen = check_metrics(page, report)
    assert "blocks_by_region.front_matter_body" in seen and "links_by_status.resolved-near" in seen
    assert len(parse(page).images) == 6
    html_path = tmp_path / "report.html"  # not into the shared run folder
    html_path.write_text(page, encoding="utf-8")
    if shutil.which("chromium") or os.access("/usr/bin/chromium", os.X_OK):
        _check_in_browser(html_path, report, tmp_path, 6)


# ---------------------------------------------------------------------------------------------
# (d) the command line


def test_cli_report_writes_the_page(seeds_out: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    out = tmp_path / "clean"
    shutil.copytree(seeds_out, out)
    (out / "report.html").unlink()
    assert main(["report", "--out", str(out)]) == 0
    assert f"written to {out / 'report.html'}" in capsys.readouterr().out
    assert (out / "report.html").read_bytes() == (seeds_out / "report.html").read_bytes()


def test_cli_report_without_a_run_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    assert main(["report", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"pipeline report: error: {tmp_path / 'report.json'}: no report.json here; run `pipeline run --out DIR` (or `dvc repro`) first"
    assert not (tmp_path / "report.html").exists()
