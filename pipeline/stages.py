"""The per-post stages, each a pure function ``Doc -> Doc``: resolve, decode, extract.

No stage reads or writes files or prints. A post with a fatal problem passes through the
later stages untouched and is quarantined by export.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from pipeline.config import Config
from pipeline.conflicts import resolve_conflicts
from pipeline.dates import parse_wall_clock
from pipeline.frozen import evolve
from pipeline.markdown import FrontMatterError, split_front_matter
from pipeline.problems import Problem, problem
from pipeline.raw_text import Limits, decode_bytes
from pipeline.record import Change, Doc
from pipeline.steps import DECODE_STEPS
from pipeline.wordpress_row import split_terms, split_wordpress_row

_JEKYLL_NAME: Final = re.compile(r"(\d{4})-(\d\d)-(\d\d)-(.+)")


def resolve(doc: Doc, config: Config) -> Doc:
    """Decode the raw bytes and remove every conflict block, keeping ``resolve.side``."""
    params = config.resolve
    text, read_problems = decode_bytes(doc.raw, Limits(params.max_bytes, params.max_line_chars))
    doc = evolve(doc, problems=doc.problems + read_problems)
    if doc.fatal:
        return doc
    resolution = resolve_conflicts(text, params.side)
    changes = (Change("resolve", "resolve_conflicts", len(resolution.blocks)),) if resolution.blocks else ()
    return evolve(
        doc,
        text=resolution.text,
        blocks=resolution.blocks,
        problems=doc.problems + resolution.problems,
        changes=doc.changes + changes,
    )


def decode(doc: Doc, config: Config) -> Doc:
    """Split the front matter and decode escapes, mojibake and Excel debris (named steps)."""
    if doc.fatal:
        return doc
    try:
        split = split_front_matter(doc.text)
    except FrontMatterError as err:
        return evolve(doc, problems=(*doc.problems, problem(err.code, str(err), err.line)))
    problems: list[Problem] = []
    if split.unterminated:
        problems.append(problem("front_matter_unterminated", "front matter opens with --- but never closes; add the closing ---", 1))
    elif split.front_matter is None:
        problems.append(problem("no_front_matter"))
    problems.extend(problem("front_matter_duplicate_key", f"key {key!r} is given twice; the last value was kept", line) for key, line in split.duplicate_keys)
    front_matter = _jsonable(split.front_matter or {})
    body = split.body
    changes: list[Change] = []
    for step in DECODE_STEPS:
        if not config.decode.enabled(step.name):
            continue
        if step.target == "front_matter":
            counter = [0]
            front_matter = _map_strings(front_matter, step.function, counter)
            count = counter[0]
        else:
            new_body = step.function(body)
            count = count_changed_lines(body, new_body)
            body = new_body
        if count:
            changes.append(Change("decode", step.name, count))
            problems.append(problem(step.problem_code, f"{step.name} changed {count} {step.target.replace('_', ' ')} value(s)"))
    front_matter, list_problems = _normalise_lists(front_matter)
    return evolve(
        doc,
        front_matter=front_matter,
        has_front_matter=split.front_matter is not None,
        body=body,
        problems=doc.problems + tuple(problems) + list_problems,
        changes=doc.changes + tuple(changes),
    )


def extract(doc: Doc, config: Config) -> Doc:
    """Cut the WordPress export row out of the body, parse it and cross-check it."""
    if doc.fatal:
        return doc
    file_slug = jekyll_slug(doc.source_path)
    split = split_wordpress_row(doc.body, file_slug)
    row = split.row
    problems = list(split.problems)
    front_matter = dict(doc.front_matter or {})
    changes: list[Change] = []
    if row is not None:
        changes.append(Change("extract", "split_wordpress_row", 1))
        wall = parse_wall_clock(str(front_matter.get("date", "")))
        if row.post_date and wall and row.post_date != wall.local.strftime("%Y-%m-%d %H:%M:%S"):
            problems.append(problem("wp_date_mismatch", f"export row says {row.post_date}, front matter says {front_matter.get('date')}; both kept"))
        if row.slug and file_slug and row.slug != file_slug:
            problems.append(problem("wp_slug_mismatch", f"export row slug {row.slug!r} differs from file name slug {file_slug!r}; both kept"))
        if row.author is not None and "@" in row.author.raw and row.author.email is None:
            problems.append(problem("wp_author_unsplit", f"author field {row.author.raw!r} kept whole in wp_author_raw: its email does not spell its names"))
        if row.terms is not None:
            tags = list(front_matter.get("tags") or [])
            categories, row_tags, agree = split_terms(row.terms, tags)
            row = evolve(row, categories=tuple(categories), tags=tuple(row_tags))
            if not tags and row_tags and config.extract.recover_tags_from_row:
                front_matter["tags"] = row_tags
                changes.append(Change("extract", "recover_tags_from_row", len(row_tags)))
                problems.append(problem("tags_recovered_from_row", f"tags {row_tags!r} taken from the export row's terms {row.terms!r}"))
            elif not agree:
                problems.append(problem("wp_tags_mismatch", f"terms {row.terms!r} do not end with the front-matter tags; both kept"))
            if categories and not front_matter.get("categories"):
                front_matter["categories"] = categories
                changes.append(Change("extract", "categories_from_row", len(categories)))
    return evolve(
        doc,
        body=split.body,
        row=row,
        front_matter=front_matter,
        problems=doc.problems + tuple(problems),
        changes=doc.changes + tuple(changes),
    )


STAGES: Final[tuple[tuple[str, Callable[[Doc, Config], Doc]], ...]] = (
    ("resolve", resolve),
    ("decode", decode),
    ("extract", extract),
)
STAGE_FUNCTIONS: Final[dict[str, Callable[[Doc, Config], Doc]]] = dict(STAGES)


def run_stage(name: str, doc: Doc, config: Config) -> Doc:
    """Run one stage on one post; an unexpected error quarantines the post, not the batch."""
    try:
        return STAGE_FUNCTIONS[name](doc, config)
    except Exception as err:
        message = f"{type(err).__name__} in stage {name}: {err}; the file is kept in quarantine, report this as a bug"
        return evolve(doc, problems=(*doc.problems, problem("internal_error", message)))


def jekyll_slug(source_path: str) -> str | None:
    """The slug of a Jekyll post file name (``YYYY-MM-DD-slug.md``), else None.

    >>> jekyll_slug("_posts/2010-08-30-None.md"), jekyll_slug("003_722f.txt")
    ('None', None)
    """
    stem = source_path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    match = _JEKYLL_NAME.fullmatch(stem)
    return match.group(4) if match else None


def _map_strings(value: Any, function: Callable[[str], str], counter: list[int]) -> Any:
    if isinstance(value, str):
        new = function(value)
        if new != value:
            counter[0] += 1
        return new
    if isinstance(value, list):
        return [_map_strings(item, function, counter) for item in value]
    if isinstance(value, dict):
        return {key: _map_strings(item, function, counter) for key, item in value.items()}
    return value


def count_changed_lines(before: str, after: str) -> int:
    """Lines that differ between two versions of a text (by position), plus lines added or removed.

    >>> count_changed_lines("a\\nb", "a\\nc\\nd")
    2
    """
    if before == after:
        return 0
    old, new = before.split("\n"), after.split("\n")
    return sum(a != b for a, b in zip(old, new, strict=False)) + abs(len(old) - len(new))


def _jsonable(value: Any) -> Any:
    """Front-matter values as JSON types (safe YAML can also give bytes, sets, dates)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_jsonable(v) for v in items]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _normalise_lists(front_matter: dict[str, Any]) -> tuple[dict[str, Any], tuple[Problem, ...]]:
    problems = []
    for key in ("tags", "categories"):
        value = front_matter.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            front_matter = {**front_matter, key: [value] if value.strip() else []}
            problems.append(problem("tags_not_list", f"{key} was the string {value!r}; it is now a one-item list"))
        elif isinstance(value, list):
            front_matter = {**front_matter, key: [str(v) for v in value if v is not None and str(v).strip()]}
        else:
            front_matter = {**front_matter, key: [str(value)]}
            problems.append(problem("tags_not_list", f"{key} was {value!r}; it is now a one-item list"))
    return front_matter, tuple(problems)
