"""Data-quality report: one self-contained HTML page built from an output folder.

``render_report(out_dir)`` reads (through ``pipeline.io``) ``report.json`` and the Parquet
tables an export wrote (``posts``, ``problems``, ``quarantine``, ``conflicts``, ``links``) and returns one HTML
document: inline CSS, plots as inline base64 SVG drawn by matplotlib (Agg, text as paths),
no script, no network (a Content-Security-Policy forbids any fetch). ``write_report`` writes
it to ``out_dir/report.html`` atomically.

Files are read and written by ``pipeline.io`` only; the HTML is built by pure functions
from a ``ReportData`` of plain values. Every count taken from report.json is
shown inside an element with ``data-metric="<key path>"``: a top-level key (``inputs``) or
a top-level key, a dot and a key of its mapping (``blocks_by_region.front_matter``,
``changes_by_step.export.drop_csv_debris``: the first dot splits). Counts derived from
the Parquet tables (plots, tables) carry no ``data-metric``.

The same folder always gives byte-identical HTML: no clock, no absolute path, fixed SVG
hash salt and metadata, sorted inputs. matplotlib is imported lazily (pipeline start-up).
"""

from __future__ import annotations

import base64
import html
import io
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from pipeline.io import write_text_file
from pipeline.problems import CODES, SEVERITIES
from pipeline.tables import read_report_inputs

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

REPORT_FILE: Final = "report.html"
STAGE_ORDER: Final = ("resolve", "decode", "extract", "export")
SEVERITY_RANK: Final[dict[str, int]] = {s: i for i, s in enumerate(reversed(SEVERITIES))}  # fatal 0 ... info 3
SEVERITY_COLOURS: Final = {"fatal": "#6b1d1d", "error": "#d55e00", "warning": "#e69f00", "info": "#9aa9b8"}
STAGE_COLOURS: Final = {"resolve": "#0072b2", "decode": "#009e73", "extract": "#cc79a7", "export": "#e69f00"}
NO_YEAR: Final = "no date"
QUARANTINED: Final = "quarantined"
TOP_TAGS: Final = 25
TOP_POSTS: Final = 20
TOP_ROWS: Final = 20
TOP_CODES: Final = 6
CODE_COLOURS: Final = ("#d55e00", "#e69f00", "#cc79a7", "#0072b2", "#009e73", "#56b4e9")
# report.json keys laid out by hand; any other key is shown under "Other counts".
_KNOWN_KEYS: Final = frozenset(
    {
        "side",
        "inputs",
        "cleaned",
        "quarantined",
        "accounting_ok",
        "quarantine_reasons",
        "conflict_blocks",
        "blocks_by_region",
        "blocks_sides_differ",
        "export_rows",
        "export_rows_by_parse",
        "authors",
        "markdown_written",
        "drafts",
        "duplicates_merged",
        "old_urls_redirected",
        "links_by_status",
        "links_near_by_rule",
        "posts_by_severity",
        "problems_by_code",
        "changes_by_step",
    }
)
_SVG_HASHSALT: Final = "wp-archive-pipeline-report"
_SVG_METADATA: Final = {"Date": None, "Creator": None}


@dataclass(frozen=True)
class QuarantineRow:
    source_path: str
    reason: str
    message: str
    line: int | None


@dataclass(frozen=True)
class ProblemPost:
    """A post (or quarantined file) and the problems found in it."""

    source_path: str
    title: str
    total: int
    worst: str
    codes: tuple[tuple[str, int], ...]  # (code, times), worst severity first


@dataclass(frozen=True)
class DifferingBlock:
    source_path: str
    start_line: int
    end_line: int
    region: str
    ours_lines: int
    theirs_lines: int


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows, as plain values (see ``summarise``)."""

    name: str
    report: dict[str, Any]
    posts_per_year: dict[str, dict[str, int]] = field(default_factory=dict)  # year -> published/draft/duplicate
    problems_per_year: dict[str, dict[str, int]] = field(default_factory=dict)  # year -> severity -> problems
    flagged_per_year: dict[str, dict[str, int]] = field(default_factory=dict)  # year -> code -> warning/error/fatal problems
    rows_per_year: dict[str, dict[str, int]] = field(default_factory=dict)  # year -> with_row/without_row
    top_tags: tuple[tuple[str, int], ...] = ()
    quarantine: tuple[QuarantineRow, ...] = ()
    problem_posts: tuple[ProblemPost, ...] = ()
    differing_blocks: tuple[DifferingBlock, ...] = ()
    broken_targets: tuple[tuple[str, int, int], ...] = ()  # (target, links, posts)
    severity_of: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Plot:
    key: str
    title: str
    caption: str
    svg: str


# ---------------------------------------------------------------------------------------------
# Files (the only impure part besides matplotlib)


def render_report(out_dir: Path) -> str:
    """The HTML report of the output folder ``out_dir`` (needs its report.json)."""
    data = load_report_data(out_dir)
    return build_html(data, make_plots(data))


def write_report(out_dir: Path) -> Path:
    """Write ``out_dir/report.html`` atomically (temporary name, then rename); return its path."""
    path = out_dir / REPORT_FILE
    write_text_file(path, render_report(out_dir))
    return path


def load_report_data(out_dir: Path) -> ReportData:
    """Read report.json and the Parquet tables of ``out_dir``; absent tables count as empty."""
    report, tables = read_report_inputs(out_dir, REPORT_COLUMNS)
    return summarise(out_dir.resolve().name, report, **tables)


# The columns each table contributes to the report; read by pipeline.io.read_report_inputs.
REPORT_COLUMNS: Final[dict[str, list[str]]] = {
    "posts": ["source_path", "title", "date_local", "tags", "draft", "duplicate_of", "wp_row_parse"],
    "problems": ["source_path", "code", "severity"],
    "quarantine": ["source_path", "reason", "message", "line"],
    "conflicts": ["source_path", "start_line", "end_line", "region", "ours_lines", "theirs_lines", "equivalent"],
    "links": ["source_path", "original_target", "status"],
}


# ---------------------------------------------------------------------------------------------
# Plain data


def summarise(
    name: str,
    report: dict[str, Any],
    *,
    posts: Sequence[Mapping[str, Any]] = (),
    problems: Sequence[Mapping[str, Any]] = (),
    quarantine: Sequence[Mapping[str, Any]] = (),
    conflicts: Sequence[Mapping[str, Any]] = (),
    links: Sequence[Mapping[str, Any]] = (),
) -> ReportData:
    """The page's data from report.json and the tables' rows (dicts with the schemas' columns)."""
    year_of: dict[str, str] = {}
    title_of: dict[str, str] = {}
    posts_per_year: dict[str, Counter[str]] = defaultdict(Counter)
    rows_per_year: dict[str, Counter[str]] = defaultdict(Counter)
    tags: Counter[str] = Counter()
    for post in posts:
        year = year_of[post["source_path"]] = _year(post["date_local"])
        title_of[post["source_path"]] = post["title"]
        kind = "duplicate" if post["duplicate_of"] is not None else "draft" if post["draft"] else "published"
        posts_per_year[year][kind] += 1
        rows_per_year[year]["with_row" if post["wp_row_parse"] != "none" else "without_row"] += 1
        if post["duplicate_of"] is None:
            tags.update(post["tags"])

    severity_of: dict[str, str] = {code: c.severity for code, c in CODES.items()}
    problems_per_year: dict[str, Counter[str]] = defaultdict(Counter)
    flagged_per_year: dict[str, Counter[str]] = defaultdict(Counter)
    by_post: dict[str, Counter[str]] = defaultdict(Counter)
    for p in problems:
        severity_of.setdefault(p["code"], p["severity"])
        year = year_of.get(p["source_path"], QUARANTINED)
        problems_per_year[year][p["severity"]] += 1
        if p["severity"] != "info":
            flagged_per_year[year][p["code"]] += 1
        by_post[p["source_path"]][p["code"]] += 1

    def rank(code: str) -> int:
        return SEVERITY_RANK.get(severity_of.get(code, ""), len(SEVERITY_RANK))

    problem_posts = []
    for path, codes in by_post.items():
        ordered = tuple(sorted(codes.items(), key=lambda item: (rank(item[0]), -item[1], item[0])))
        worst = min((severity_of.get(code, "?") for code in codes), key=lambda s: SEVERITY_RANK.get(s, len(SEVERITY_RANK)))
        problem_posts.append(ProblemPost(path, title_of.get(path, ""), sum(codes.values()), worst, ordered))
    problem_posts.sort(key=lambda p: (-p.total, SEVERITY_RANK.get(p.worst, len(SEVERITY_RANK)), p.source_path))

    broken: dict[str, Counter[str]] = defaultdict(Counter)
    for link in links:
        if link["status"] == "broken":
            broken[link["original_target"]][link["source_path"]] += 1
    broken_targets = sorted(((t, sum(c.values()), len(c)) for t, c in broken.items()), key=lambda t: (-t[1], -t[2], t[0]))

    differing = sorted(
        (
            DifferingBlock(c["source_path"], c["start_line"], c["end_line"], c["region"], c["ours_lines"], c["theirs_lines"])
            for c in conflicts
            if not c["equivalent"]
        ),
        key=lambda b: (b.source_path, b.start_line),
    )
    return ReportData(
        name=name,
        report=report,
        posts_per_year=_sorted_years(posts_per_year),
        problems_per_year=_sorted_years(problems_per_year, fill=year_of.values()),
        flagged_per_year=_sorted_years(flagged_per_year, fill=year_of.values()),
        rows_per_year=_sorted_years(rows_per_year),
        top_tags=tuple(sorted(tags.items(), key=lambda t: (-t[1], t[0].casefold(), t[0]))[:TOP_TAGS]),
        quarantine=tuple(sorted((QuarantineRow(q["source_path"], q["reason"], q["message"], q["line"]) for q in quarantine), key=lambda q: q.source_path)),
        problem_posts=tuple(problem_posts[:TOP_POSTS]),
        differing_blocks=tuple(differing[:TOP_ROWS]),
        broken_targets=tuple(broken_targets[:TOP_ROWS]),
        severity_of=severity_of,
    )


def _year(date_local: str | None) -> str:
    return date_local[:4] if date_local else NO_YEAR


def _sorted_years(counts: Mapping[str, Counter[str]], fill: Iterable[str] = ()) -> dict[str, dict[str, int]]:
    """Every year from the first to the last (empty ones too), then posts without a date, then quarantined files.

    ``fill`` adds years (e.g. every post's) so that two plots of the same run share their x axis.
    """
    keys = set(counts) | set(fill)
    years = [int(y) for y in keys if y.isdigit()]
    if years:
        keys |= {str(y) for y in range(min(years), max(years) + 1)}
    tail = {NO_YEAR: 1, QUARANTINED: 2}
    return {year: dict(sorted(counts[year].items())) if year in counts else {} for year in sorted(keys, key=lambda y: (tail.get(y, 0), y))}


def stage_of(step_key: str) -> str:
    """``export.drop_csv_debris`` -> ``export``."""
    return step_key.split(".", 1)[0] if "." in step_key else "other"


def changes_by_stage(changes: Mapping[str, int]) -> dict[str, list[tuple[str, int]]]:
    """changes_by_step grouped by stage, stages in pipeline order, steps by count (then name)."""
    groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for key, count in changes.items():
        groups[stage_of(key)].append((key, count))
    order = [s for s in STAGE_ORDER if s in groups] + sorted(s for s in groups if s not in STAGE_ORDER)
    return {s: sorted(groups[s], key=lambda kv: (-kv[1], kv[0])) for s in order}


# ---------------------------------------------------------------------------------------------
# HTML (pure)


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def breakable(name: str) -> str:
    """An escaped identifier that may wrap after its underscores (``quoted_<wbr>line_<wbr>start``)."""
    return esc(name).replace("_", "_<wbr>")


def metric_text(value: object) -> str:
    """How a report.json value is written inside its data-metric element."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def metric(path: str, value: object, cls: str = "num") -> str:
    """A report.json value with its key path, e.g. ``metric("inputs", 998)``; a dash when report.json lacks it."""
    if value is MISSING:
        return f'<span class="{cls} missing" title="not in report.json: {esc(path)}">–</span>'
    return f'<span class="{cls}" data-metric="{esc(path)}">{esc(metric_text(value))}</span>'


def card(label: str, path: str, value: object, note: str = "") -> str:
    extra = f'<span class="note">{esc(note)}</span>' if note else ""
    return f'<div class="card"><div class="label">{esc(label)}</div>{metric(path, value, "big num")}{extra}</div>'


def badge(severity: str) -> str:
    return f'<span class="sev sev-{esc(severity)}">{esc(severity)}</span>'


def count_rows(section: str, counts: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> str:
    """Table rows (name, bar, count) for the mapping ``report[section]``, largest first."""
    if not counts:
        return '<tr><td colspan="3" class="none">none</td></tr>'
    total = max((v for v in counts.values() if isinstance(v, int | float)), default=0) or 1
    rows = []
    for key, value in sorted(counts.items(), key=lambda kv: (-kv[1] if isinstance(kv[1], int | float) else 0, kv[0])):
        width = 100 * value / total if isinstance(value, int | float) else 0
        label = (labels or {}).get(key, key)
        rows.append(
            f"<tr><td><code>{breakable(label)}</code></td>"
            f'<td class="barcell"><span class="bar" style="width:{width:.1f}%"></span></td>'
            f"<td>{metric(f'{section}.{key}', value)}</td></tr>"
        )
    return "".join(rows)


def count_table(title: str, section: str, counts: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> str:
    return f'<table class="counts"><caption>{esc(title)}</caption><tbody>{count_rows(section, counts, labels)}</tbody></table>'


def kv_rows(items: Iterable[tuple[str, str, object]]) -> str:
    """A definition table of (label, key path, value) rows."""
    rows = "".join(f"<tr><th>{esc(label)}</th><td>{metric(path, value)}</td></tr>" for label, path, value in items)
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


MISSING: Final = object()


def _get(report: Mapping[str, Any], key: str) -> Any:
    """``report[key]``, or ``MISSING`` (shown as a dash, without data-metric) for an older or newer report.json."""
    return report.get(key, MISSING)


def summary_section(report: Mapping[str, Any]) -> str:
    cards = [
        card("inputs", "inputs", _get(report, "inputs"), "files read"),
        card("cleaned", "cleaned", _get(report, "cleaned"), "rows in posts.parquet"),
        card("quarantined", "quarantined", _get(report, "quarantined"), "not cleaned"),
        card("conflict blocks", "conflict_blocks", _get(report, "conflict_blocks"), "resolved"),
        card("export rows", "export_rows", _get(report, "export_rows"), "WordPress rows found"),
        card("Markdown written", "markdown_written", _get(report, "markdown_written"), "posts/*.md"),
        card("drafts", "drafts", _get(report, "drafts"), "written, not published"),
        card("duplicates merged", "duplicates_merged", _get(report, "duplicates_merged"), "redirect to their twin"),
        card("old URLs redirected", "old_urls_redirected", _get(report, "old_urls_redirected"), "redirects.csv"),
        card("authors", "authors", _get(report, "authors"), "authors.parquet"),
    ]
    ok = bool(report.get("accounting_ok"))
    accounting = (
        f'<p class="accounting {"ok" if ok else "bad"}">Accounting: inputs = cleaned + quarantined is '
        f"{metric('accounting_ok', _get(report, 'accounting_ok'), 'flag')} "
        f"({metric('inputs', _get(report, 'inputs'))} = {metric('cleaned', _get(report, 'cleaned'))} + "
        f"{metric('quarantined', _get(report, 'quarantined'))}). Conflict side kept: {metric('side', _get(report, 'side'), 'flag')}.</p>"
    )
    return f'<section id="summary"><h2>Run</h2>{accounting}<div class="cards">{"".join(cards)}</div></section>'


def _step_table(stage: str, steps: Sequence[tuple[str, int]]) -> str:
    if not steps:
        return '<p class="none">No changes recorded.</p>'
    top = max(count for _, count in steps) or 1
    rows = "".join(
        f'<tr><td><code>{breakable(key.split(".", 1)[-1])}</code></td><td class="barcell"><span class="bar stage-{esc(stage)}" '
        f'style="width:{100 * count / top:.1f}%"></span></td><td>{metric(f"changes_by_step.{key}", count)}</td></tr>'
        for key, count in steps
    )
    return f'<table class="counts"><caption>changes by step</caption><tbody>{rows}</tbody></table>'


def stages_section(report: Mapping[str, Any]) -> str:
    """One panel per stage: its counts and the changes of its steps."""
    changes = changes_by_stage(report.get("changes_by_step") or {})
    panels = {
        "resolve": (
            "Bytes to text, conflict blocks removed on the raw text; unreadable or broken files quarantined.",
            kv_rows(
                [
                    ("inputs", "inputs", _get(report, "inputs")),
                    ("conflict blocks", "conflict_blocks", _get(report, "conflict_blocks")),
                    ("blocks whose sides differ", "blocks_sides_differ", _get(report, "blocks_sides_differ")),
                    ("quarantined", "quarantined", _get(report, "quarantined")),
                ]
            )
            + count_table("conflict blocks by region", "blocks_by_region", report.get("blocks_by_region") or {})
            + count_table("quarantined by reason", "quarantine_reasons", report.get("quarantine_reasons") or {}),
        ),
        "decode": (
            "Front matter parsed; Excel debris, escapes and mojibake repaired.",
            kv_rows([("cleaned", "cleaned", _get(report, "cleaned"))]),
        ),
        "extract": (
            "Trailing WordPress export row found, cut out and parsed.",
            kv_rows([("export rows", "export_rows", _get(report, "export_rows"))])
            + count_table("posts by export-row parse variant", "export_rows_by_parse", report.get("export_rows_by_parse") or {}),
        ),
        "export": (
            "Title, date, slug and author settled; duplicates merged; links rewritten; files written.",
            kv_rows(
                [
                    ("Markdown written", "markdown_written", _get(report, "markdown_written")),
                    ("drafts", "drafts", _get(report, "drafts")),
                    ("duplicates merged", "duplicates_merged", _get(report, "duplicates_merged")),
                    ("old URLs redirected", "old_urls_redirected", _get(report, "old_urls_redirected")),
                    ("authors", "authors", _get(report, "authors")),
                ]
            )
            + count_table("links by status", "links_by_status", report.get("links_by_status") or {})
            + count_table("near matches by rule", "links_near_by_rule", report.get("links_near_by_rule") or {}),
        ),
    }
    html_panels = []
    for stage in [*STAGE_ORDER, *(s for s in changes if s not in STAGE_ORDER)]:
        intro, body = panels.get(stage, ("Steps of another stage.", ""))
        html_panels.append(
            f'<div class="panel"><h3><span class="dot stage-{esc(stage)}"></span>{esc(stage)}</h3><p class="intro">{esc(intro)}</p>'
            f"{body}{_step_table(stage, changes.get(stage, []))}</div>"
        )
    return f'<section id="stages"><h2>Counts per stage</h2><div class="panels">{"".join(html_panels)}</div></section>'


def problems_section(report: Mapping[str, Any], severity_of: Mapping[str, str]) -> str:
    codes: Mapping[str, int] = report.get("problems_by_code") or {}
    by_severity: Mapping[str, int] = report.get("posts_by_severity") or {}
    severity_cards = "".join(
        f'<div class="card sevcard sev-border-{esc(s)}"><div class="label">posts with {badge(s)}</div>{metric(f"posts_by_severity.{s}", n, "big num")}</div>'
        for s, n in sorted(by_severity.items(), key=lambda kv: (SEVERITY_RANK.get(kv[0], 9), kv[0]))
    )
    top = max(codes.values(), default=0) or 1

    def order(item: tuple[str, int]) -> tuple[int, int, str]:
        return (SEVERITY_RANK.get(severity_of.get(item[0], ""), 9), -item[1], item[0])

    rows = "".join(
        f"<tr><td><code>{esc(code)}</code></td><td>{badge(severity_of.get(code, '?'))}</td>"
        f'<td class="barcell"><span class="bar sevbar-{esc(severity_of.get(code, "?"))}" style="width:{100 * n / top:.1f}%"></span></td>'
        f'<td>{metric(f"problems_by_code.{code}", n)}</td><td class="meaning">{esc(CODES[code].meaning if code in CODES else "")}</td></tr>'
        for code, n in sorted(codes.items(), key=order)
    )
    if not rows:
        rows = '<tr><td colspan="5" class="none">no problems</td></tr>'
    table = (
        '<table class="wide"><caption>problems by code (one per finding; a post can have several)</caption>'
        "<thead><tr><th>code</th><th>severity</th><th></th><th>count</th><th>meaning</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )
    cards = f'<div class="cards">{severity_cards}</div>' if severity_cards else ""
    return f'<section id="problems"><h2>Problems</h2>{cards}{table}</section>'


def plots_section(plots: Sequence[Plot]) -> str:
    figures = "".join(
        f'<figure id="plot-{esc(p.key)}"><figcaption><strong>{esc(p.title)}</strong> {esc(p.caption)}</figcaption>'
        f'<img alt="{esc(p.title)}" src="data:image/svg+xml;base64,{base64.b64encode(p.svg.encode("utf-8")).decode("ascii")}"></figure>'
        for p in plots
    )
    return f'<section id="plots"><h2>Plots</h2><div class="plots">{figures}</div></section>'


def _table(caption: str, headers: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    if rows:
        body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    else:
        body = f'<tr><td colspan="{len(headers)}" class="none">{esc(empty)}</td></tr>'
    return f'<table class="wide"><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def tables_section(data: ReportData) -> str:
    quarantine = _table(
        "Quarantined files (bytes kept in quarantine.parquet)",
        ["file", "reason", "line", "message"],
        [
            [f'<code class="path">{esc(q.source_path)}</code>', badge("fatal") + f" <code>{esc(q.reason)}</code>", esc(q.line or ""), esc(q.message)]
            for q in data.quarantine
        ],
        "No file was quarantined.",
    )
    posts = _table(
        f"The {TOP_POSTS} posts with the most problems (problems.parquet; info findings included)",
        ["#", "file", "title", "problems", "worst", "codes"],
        [
            [
                str(i),
                f'<code class="path">{esc(p.source_path)}</code>',
                esc(p.title) if p.title else '<span class="none">quarantined</span>',
                f'<span class="num">{p.total}</span>',
                badge(p.worst),
                " ".join(f'<span class="code sevtext-{esc(data.severity_of.get(c, "?"))}">{esc(c)}{f" ×{n}" if n > 1 else ""}</span>' for c, n in p.codes),
            ]
            for i, p in enumerate(data.problem_posts, 1)
        ],
        "No problems found.",
    )
    blocks = _table(
        "Conflict blocks whose two sides still differ (conflicts.parquet)",
        ["file", "lines", "region", "ours lines", "theirs lines"],
        [
            [
                f'<code class="path">{esc(b.source_path)}</code>',
                f"{b.start_line}–{b.end_line}",
                f"<code>{esc(b.region)}</code>",
                str(b.ours_lines),
                str(b.theirs_lines),
            ]
            for b in data.differing_blocks
        ],
        "Every conflict block's sides are equivalent.",
    )
    broken = _table(
        f"Most frequent broken link targets (links.parquet, top {TOP_ROWS})",
        ["target", "links", "posts"],
        [[f'<code class="path">{esc(t)}</code>', str(n), str(posts)] for t, n, posts in data.broken_targets],
        "No broken links.",
    )
    return f'<section id="tables"><h2>Files to look at</h2>{quarantine}{posts}{blocks}{broken}</section>'


def other_section(report: Mapping[str, Any]) -> str:
    """report.json keys this page does not lay out by name (added later), shown as they are."""
    parts = []
    for key, value in report.items():
        if key in _KNOWN_KEYS:
            continue
        if isinstance(value, Mapping):
            scalar = {k: v for k, v in value.items() if isinstance(v, int | float | str | bool)}
            parts.append(count_table(key, key, scalar))
        elif isinstance(value, int | float | str | bool):
            parts.append(kv_rows([(key, key, value)]))
    if not parts:
        return ""
    return f'<section id="other"><h2>Other counts</h2><div class="panels"><div class="panel">{"".join(parts)}</div></div></section>'


def build_html(data: ReportData, plots: Sequence[Plot]) -> str:
    """The whole page."""
    report = data.report
    nav = "".join(
        f'<a href="#{anchor}">{label}</a>'
        for anchor, label in (("summary", "Run"), ("stages", "Stages"), ("problems", "Problems"), ("plots", "Plots"), ("tables", "Files"))
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Data-quality report: {esc(data.name)}</title><style>{CSS}</style></head><body>"
        f'<header><h1>Data-quality report <span class="folder">{esc(data.name)}</span></h1>'
        f"<p>Blog-archive cleaning run: {metric('inputs', _get(report, 'inputs'))} input files, "
        f"{metric('cleaned', _get(report, 'cleaned'))} cleaned, {metric('quarantined', _get(report, 'quarantined'))} quarantined. "
        "Counts come from report.json; plots and tables from the run's Parquet tables.</p><nav>"
        f"{nav}</nav></header><main>"
        + summary_section(report)
        + stages_section(report)
        + problems_section(report, data.severity_of)
        + plots_section(plots)
        + tables_section(data)
        + other_section(report)
        + "</main><footer>Written by <code>pipeline.report_html</code> from report.json, posts.parquet, problems.parquet, quarantine.parquet, "
        "conflicts.parquet and links.parquet.</footer></body></html>\n"
    )


CSS: Final = """
:root{--fg:#1d2733;--muted:#5b6b7c;--line:#dde3ea;--bg:#f6f8fa;--card:#fff;--accent:#0072b2}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif}
header{background:#1d2733;color:#fff;padding:18px 28px 10px}
header h1{margin:0 0 4px;font-size:22px;font-weight:600}
header .folder{font-weight:400;color:#b8c7d6;font-size:16px;margin-left:8px;font-family:ui-monospace,"DejaVu Sans Mono",monospace}
header p{margin:4px 0 8px;color:#d5dee8}
header .num{color:#fff;font-weight:600}
nav a{color:#9fd3ff;margin-right:16px;text-decoration:none;font-size:13px}
main{max-width:1220px;margin:0 auto;padding:8px 24px 24px}
section{margin-top:22px}
h2{font-size:18px;margin:0 0 10px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:15px;margin:0 0 4px;text-transform:capitalize}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:10px;margin-bottom:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card .label{color:var(--muted);font-size:12px}
.card .big{display:block;font-size:24px;font-weight:650;margin:2px 0}
.card .note{color:var(--muted);font-size:11px}
.num{font-variant-numeric:tabular-nums}
.accounting{margin:0 0 10px;padding:8px 12px;border-radius:6px}
.accounting.ok{background:#e3f4ea;border:1px solid #9ed3b2}
.accounting.bad{background:#fbe4e1;border:1px solid #e49a90}
.flag{font-weight:600}
.panels{display:grid;grid-template-columns:repeat(auto-fill,minmax(280px,1fr));gap:12px}
.panel{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:12px;min-width:0}
.panel .intro{color:var(--muted);font-size:12px;margin:0 0 8px}
.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px;background:#888}
table{border-collapse:collapse;width:100%;margin:6px 0 10px}
caption{text-align:left;color:var(--muted);font-size:12px;padding:2px 0 4px}
td,th{padding:3px 6px;border-bottom:1px solid var(--line);vertical-align:top;text-align:left}
table.kv th{font-weight:400;color:var(--muted);width:70%}
table.kv td,table.counts td:last-child{text-align:right;font-variant-numeric:tabular-nums}
table.counts td:first-child{overflow-wrap:anywhere}
.barcell{width:30%}
.bar{display:block;height:10px;margin-top:4px;border-radius:2px;background:#9ab8d3;min-width:1px}
.stage-resolve{background:#0072b2}.stage-decode{background:#009e73}.stage-extract{background:#cc79a7}.stage-export{background:#e69f00}
table.wide{background:var(--card);border:1px solid var(--line);border-radius:8px}
table.wide caption{font-size:13px;color:var(--fg);font-weight:600}
table.wide thead th{background:#eef2f6;font-size:12px;color:var(--muted)}
table.wide td{font-size:13px}
td.meaning{color:var(--muted);font-size:12px}
code{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px}
code.path{word-break:break-all}
.none{color:var(--muted);font-style:italic}
.sev{display:inline-block;padding:0 6px;border-radius:9px;font-size:11px;font-weight:600;color:#fff;background:#888}
.sev-info{background:#7d8fa3}.sev-warning{background:#c88500}.sev-error{background:#d55e00}.sev-fatal{background:#6b1d1d}
.sevbar-info{background:#9aa9b8}.sevbar-warning{background:#e69f00}.sevbar-error{background:#d55e00}.sevbar-fatal{background:#6b1d1d}
.sev-border-info{border-left:4px solid #7d8fa3}.sev-border-warning{border-left:4px solid #c88500}
.sev-border-error{border-left:4px solid #d55e00}.sev-border-fatal{border-left:4px solid #6b1d1d}
.code{display:inline-block;margin:0 4px 2px 0;padding:0 5px;border-radius:4px;background:#eef2f6;
  font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:11px}
.sevtext-warning{background:#fdf0d5}.sevtext-error{background:#fde2d3}.sevtext-fatal{background:#f3d6d6}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px}
figure{margin:0;background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px;min-width:0}
figure img{display:block;width:100%;height:auto}
figcaption{font-size:12px;color:var(--muted);margin-bottom:6px}
figcaption strong{color:var(--fg);font-size:13px}
footer{color:var(--muted);font-size:12px;text-align:center;padding:16px}
"""


# ---------------------------------------------------------------------------------------------
# Plots (matplotlib, imported here only)


def make_plots(data: ReportData) -> list[Plot]:
    """The six plots of the page, as SVG text."""
    report = data.report
    specs: list[tuple[str, str, str, Callable[[Figure], None], tuple[float, float]]] = [
        (
            "posts-per-year",
            "Posts per year",
            "Cleaned posts by the year of their date (drafts and merged duplicates stacked).",
            lambda fig: _stacked_years(
                fig, data.posts_per_year, [("published", "published", "#0072b2"), ("draft", "draft", "#56b4e9"), ("duplicate", "merged duplicate", "#bbbbbb")]
            ),
            (6.4, 3.2),
        ),
        (
            "problems-per-year",
            "Problems per year",
            "Findings in problems.parquet by the year of their post, stacked by severity.",
            lambda fig: _stacked_years(fig, data.problems_per_year, [(s, s, SEVERITY_COLOURS[s]) for s in reversed(SEVERITIES)]),
            (6.4, 3.2),
        ),
        (
            "flagged-per-year",
            "Warnings and errors per year, by code",
            f"The same findings without the info ones (repairs), stacked by code (top {TOP_CODES}, the rest as other).",
            lambda fig: _stacked_years(fig, *top_codes(data.flagged_per_year)),
            (6.4, 3.2),
        ),
        (
            "export-row-coverage",
            "Export-row coverage per year",
            "Posts with and without a trailing WordPress export row (percentage with a row on top).",
            lambda fig: _stacked_years(
                fig, data.rows_per_year, [("with_row", "with export row", "#009e73"), ("without_row", "without", "#d9d9d9")], share_of="with_row"
            ),
            (6.4, 3.2),
        ),
        (
            "changes-by-step",
            "What each stage changed",
            "changes_by_step of report.json (lines or items changed), grouped by stage.",
            lambda fig: _changes(fig, changes_by_stage(report.get("changes_by_step") or {})),
            (6.4, 3.6),
        ),
        (
            "tags",
            f"Tag frequency (top {TOP_TAGS})",
            "Posts carrying each tag (merged duplicates not counted).",
            lambda fig: _tags(fig, data.top_tags),
            (6.4, 5.4),
        ),
    ]
    return [Plot(key, title, caption, _svg(draw, size)) for key, title, caption, draw, size in specs]


def top_codes(per_year: Mapping[str, Mapping[str, int]]) -> tuple[dict[str, dict[str, int]], list[tuple[str, str, str]]]:
    """Per-year counts keeping the ``TOP_CODES`` most frequent codes and ``other``, and their plot series."""
    totals: Counter[str] = Counter()
    for counts in per_year.values():
        totals.update(counts)
    top = [code for code, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_CODES]]
    kept = {year: {**{c: counts.get(c, 0) for c in top}, "other": sum(n for c, n in counts.items() if c not in top)} for year, counts in per_year.items()}
    series = [(code, code, colour) for code, colour in zip(top, CODE_COLOURS, strict=False)] + [("other", "other", "#bbbbbb")]
    return kept, series


def _svg(draw: Callable[[Figure], None], size: tuple[float, float]) -> str:
    """Draw on a new figure and return it as SVG text, identical for identical data."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    # Fixed hash salt (clip-path ids) and text as paths: same SVG everywhere, no font needed to view it.
    with matplotlib.rc_context({"svg.hashsalt": _SVG_HASHSALT, "svg.fonttype": "path", "font.size": 9.0}), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # glyphs missing from DejaVu Sans (emoji in a tag)
        fig = Figure(figsize=size, layout="constrained")
        draw(fig)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata=_SVG_METADATA)
    return buffer.getvalue()


def _style(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_axisbelow(True)
    ax.grid(axis="y", color="#e3e8ee", linewidth=0.8)


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="#5b6b7c")
    ax.set_xticks([])
    ax.set_yticks([])


def _stacked_years(
    fig: Figure,
    per_year: Mapping[str, Mapping[str, int]],
    series: Sequence[tuple[str, str, str]],
    share_of: str | None = None,
) -> None:
    ax = fig.add_subplot()
    _style(ax)
    years = list(per_year)
    if not years:
        _no_data(ax)
        return
    x = list(range(len(years)))
    bottom = [0] * len(years)
    for key, label, colour in series:
        values = [per_year[y].get(key, 0) for y in years]
        if not any(values):
            continue
        ax.bar(x, values, bottom=bottom, color=colour, label=label, width=0.75)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    top = max(bottom) or 1
    for i, (year, total) in enumerate(zip(years, bottom, strict=True)):
        text = f"{total}"
        if share_of is not None and total:
            text = f"{100 * per_year[year].get(share_of, 0) / total:.0f}%"
        ax.text(i, total + top * 0.015, text, ha="center", va="bottom", fontsize=7.5, color="#33414f")
    ax.set_ylim(0, top * 1.12)
    ax.set_xticks(x, years, rotation=45 if len(years) > 10 else 0, ha="right" if len(years) > 10 else "center")
    ax.set_xlim(-0.6, len(years) - 0.4)
    ncols = len(series) if len(series) <= 4 else (len(series) + 1) // 2
    ax.legend(frameon=False, fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=ncols, borderaxespad=0.2)


def _changes(fig: Figure, groups: Mapping[str, Sequence[tuple[str, int]]]) -> None:
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_axisbelow(True)
    ax.grid(axis="x", color="#e3e8ee", linewidth=0.8)
    labels: list[str] = []
    values: list[int] = []
    colours: list[str] = []
    for stage, steps in groups.items():
        for key, count in steps:
            labels.append(f"{stage} · {key.split('.', 1)[-1]}")
            values.append(count)
            colours.append(STAGE_COLOURS.get(stage, "#888888"))
    if not values:
        _no_data(ax)
        return
    y = list(range(len(values)))
    ax.barh(y, values, color=colours, height=0.7)
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    top = max(values) or 1
    for i, v in enumerate(values):
        ax.text(v + top * 0.01, i, str(v), va="center", fontsize=7, color="#33414f")
    ax.set_xlim(0, top * 1.1)
    ax.set_xlabel("changes")
    from matplotlib.patches import Patch

    handles = [Patch(color=STAGE_COLOURS.get(s, "#888888"), label=s) for s in groups]
    ax.legend(handles=handles, frameon=False, fontsize=8, loc="lower right", title="stage", title_fontsize=8)


def _tags(fig: Figure, tags: Sequence[tuple[str, int]]) -> None:
    ax = fig.add_subplot()
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_axisbelow(True)
    ax.grid(axis="x", color="#e3e8ee", linewidth=0.8)
    if not tags:
        _no_data(ax)
        return
    y = list(range(len(tags)))
    values = [n for _, n in tags]
    ax.barh(y, values, color="#0072b2", height=0.72)
    ax.set_yticks(y, [t if len(t) <= 40 else t[:39] + "…" for t, _ in tags], fontsize=8)
    ax.invert_yaxis()
    top = max(values) or 1
    for i, v in enumerate(values):
        ax.text(v + top * 0.01, i, str(v), va="center", fontsize=7, color="#33414f")
    ax.set_xlim(0, top * 1.1)
    ax.set_xlabel("posts")
