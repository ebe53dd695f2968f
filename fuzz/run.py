"""Fuzz the conflict resolver and the export-row parser for a bounded time (``make fuzz``).

Hypothesis generates texts built from the pieces that matter (marker lines with odd labels,
front-matter delimiters, dates, URLs, statuses, quotes, emails, unicode) mixed with random
text, round after round until the time is up. Invariants checked on every example:

- resolver: never raises; a well-formed result has no marker line, keeps every line outside
  the blocks, and resolving it again changes nothing; a malformed text comes back unchanged
  with exactly one fatal problem;
- row parser: never raises; no character is lost (the body kept, the excerpt, the row's raw
  text and the spill hold every non-blank character of the input, in the same multiset).

Usage: python -m fuzz.run [--seconds 60] [--report docs/FUZZING.md]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.conflicts import resolve_conflicts
from pipeline.wordpress_row import split_wordpress_row

MARKER_LINE = st.sampled_from(
    ["<<<<<<< HEAD", "<<<<<<<", "=======", "||||||| base", ">>>>>>> 367d931", ">>>>>>>", "<<<<<<< feat/été", "---", "<<<<<<<<", "======="]
)
TEXT_LINE = st.one_of(st.text(max_size=30), st.sampled_from(["", "tags: ['a']", "Title", "_x000D_", "\u00a0", "« é »"]))
ROW_PIECE = st.sampled_from(
    [
        '"',
        "2010-03-17 16:38:34",
        "https://example.org/2010/03/les-energies.html",
        "/2010/03/17/les-energies/",
        "/-2.html",
        "MétaNotes",
        "tag|publish|x",
        "publish",
        "draft",
        "7",
        "18",
        "jean-pierre.dupont@example.org",
        "Jean-PierreDupont",
        "pierre trami",
        "les-energies",
        "et-si-2",
        '7846""',
        "\n",
        " ",
        "[youtube https://youtu.be/x]",
    ]
)
SIDES = ("ours", "theirs")


def _is_marker(line: str) -> bool:
    return any(line == m or line.startswith(m + " ") for m in ("<" * 7, ">" * 7, "|" * 7)) or line == "=" * 7


stats: Counter[str] = Counter()


SAFE_LINE = TEXT_LINE.map(lambda x: x.replace("\n", " ").replace("\r", " ")).filter(lambda x: not _is_marker(x))
LABEL = st.one_of(st.just(""), st.text(min_size=1, max_size=12).map(lambda x: " " + x.replace("\n", " ").replace("\r", " ")))


@st.composite
def conflicted_texts(draw: st.DrawFn) -> tuple[str, list[str]]:
    """Text lines and well-formed blocks (sometimes with a diff3 base, sometimes corrupted
    by one extra marker line); returns the text and the lines outside every block."""
    lines: list[str] = []
    outside: list[str] = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            chunk = draw(st.lists(SAFE_LINE, max_size=4))
            lines += chunk
            outside += chunk
        else:
            lines.append("<" * 7 + draw(LABEL))
            lines += draw(st.lists(SAFE_LINE, max_size=3))
            if draw(st.booleans()):
                lines.append("|" * 7 + draw(LABEL))
                lines += draw(st.lists(SAFE_LINE, max_size=2))
            lines.append("=" * 7)
            lines += draw(st.lists(SAFE_LINE, max_size=3))
            lines.append(">" * 7 + draw(LABEL))
    if lines and draw(st.integers(0, 9)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), draw(MARKER_LINE))
        outside = []
    return "\n".join(lines), outside


@settings(max_examples=2_000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(conflicted_texts(), st.sampled_from(SIDES))
def fuzz_resolver(case: tuple[str, list[str]], side: str) -> None:
    text, outside = case
    stats["resolver examples"] += 1
    result = resolve_conflicts(text, side)  # type: ignore[arg-type]
    fatal = [p for p in result.problems if p.severity == "fatal"]
    if fatal:
        stats["resolver malformed"] += 1
        assert len(fatal) == 1 and result.text == text
        return
    stats["resolver blocks resolved"] += len(result.blocks)
    out_lines = result.text.split("\n")
    assert not any(_is_marker(x) and x != "=" * 7 for x in out_lines)
    assert resolve_conflicts(result.text, side).text == result.text  # type: ignore[arg-type]
    remaining = iter(out_lines)
    assert all(any(x == y for y in remaining) for x in outside)  # lines outside blocks kept, in order


WORD = st.text(alphabet="abcdéèàç-0123456789 ’", min_size=1, max_size=10).filter(lambda x: x.strip() == x and x)
SLUG = st.from_regex(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", fullmatch=True)
DATE = st.datetimes(datetime(1995, 1, 1), datetime(2099, 12, 31)).map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S"))


@st.composite
def bodies_with_rows(draw: st.DrawFn) -> str:
    """A body, then an export row glued the archive's ways, then a spill; or noise alone."""
    if draw(st.integers(0, 4)) == 0:
        return "".join(draw(st.lists(st.one_of(ROW_PIECE, st.text(max_size=8)), max_size=30)))
    date, slug = draw(DATE), draw(SLUG)
    url = f"https://example.org/{date[:4]}/{date[5:7]}/{slug}.html" if draw(st.booleans()) else f"/{date[:4]}/{date[5:7]}/{date[8:10]}/{slug}/"
    terms = draw(st.sampled_from(["", "Mes posts", "MétaNotes"])) + "|".join(draw(st.lists(WORD, max_size=4)))
    author = draw(st.sampled_from(["gabrielplassat3948gabriel.plassat@ademe.frGabrielPlassat", "pierre trami", "x1y.z@a.bcYZ"]))
    status = draw(st.sampled_from(["publish", "draft", "pending", "private", "future"]))
    row = f"{date}{url}{terms}{status}{draw(st.integers(1, 999))}{author}{slug}{draw(DATE)}"
    before = draw(st.text(max_size=40))
    glue = draw(st.sampled_from(['\n"', '"', "", "\n"]))
    spill = draw(st.one_of(st.just(""), st.text(max_size=30)))
    return before + glue + row + spill


@settings(max_examples=2_000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(bodies_with_rows(), st.one_of(st.none(), SLUG))
def fuzz_row_parser(body: str, file_slug: str | None) -> None:
    stats["row examples"] += 1
    split = split_wordpress_row(body, file_slug)
    if split.row is None:
        assert split.body == body
        return
    stats["row found"] += 1
    stats[f"row parse {split.row.parse}"] += 1
    row = split.row
    kept = split.body + (row.excerpt or "") + row.raw + (row.spill or "")
    assert Counter(c for c in kept if not c.isspace()) == Counter(c for c in body if not c.isspace())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--report", type=Path)
    args = parser.parse_args()
    started = time.monotonic()
    rounds = 0
    while time.monotonic() - started < args.seconds:
        fuzz_resolver()
        fuzz_row_parser()
        rounds += 1
    elapsed = time.monotonic() - started
    lines = [
        f"Fuzzed for {elapsed:.0f} s ({rounds} rounds) on {platform.python_implementation()} {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}: no invariant broken.",
        "",
        "| counter | value |",
        "| --- | --- |",
        *(f"| {key} | {value:,} |" for key, value in sorted(stats.items())),
    ]
    print("\n".join(lines))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        intro = "# Fuzzing\n\n`make fuzz` (`python -m fuzz.run --seconds 120 --report docs/FUZZING.md`) runs the targets of `fuzz/run.py`.\n\n"
        args.report.write_text(intro + "\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
