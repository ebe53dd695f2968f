"""Why does this post look the way it does: every stage's change to one post, as diffs.

Pure: takes the post's bytes, gives text. Links to other posts are shown as the whole-archive
run would leave them only when the archive is indexed; here the post is alone, so a link to
another post reads as broken (the diff says so).
"""

from __future__ import annotations

import difflib
from dataclasses import asdict

from pipeline.config import Config
from pipeline.io import read_bytes_doc
from pipeline.markdown import FrontMatterError, dump_markdown, split_front_matter
from pipeline.outputs import build_post, finish_post
from pipeline.record import Doc
from pipeline.site import SiteIndex
from pipeline.stages import run_stage
from pipeline.steps import CLEANUP_STEPS
from pipeline.wordpress_row import WordPressRow


def diff(before: str, after: str, label: str) -> str:
    """A unified diff of two texts, or a line saying nothing changed.

    >>> print(diff("a\\nb\\n", "a\\nc\\n", "step"), end="")
    --- before step
    +++ after step
    @@ -1,2 +1,2 @@
     a
    -b
    +c
    """
    lines = list(difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"before {label}", f"after {label}"))
    if not lines:
        return f"({label}: no change)\n"
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _render(doc: Doc) -> str:
    return dump_markdown(doc.front_matter or {}, doc.body) if doc.front_matter is not None else doc.body + "\n"


def _row_table(row: WordPressRow) -> str:
    pairs: list[tuple[str, object]] = []
    for name, value in asdict(row).items():
        if isinstance(value, dict):
            pairs.extend((f"{name}.{sub}", sub_value) for sub, sub_value in value.items())
        else:
            pairs.append((name, value))
    width = max(len(name) for name, _ in pairs)
    lines = [f"  {name:<{width}}  {value!r}" for name, value in pairs]
    return "\n".join(lines) + "\n"


def explain_post(source_path: str, raw: bytes, config: Config) -> str:
    """The story of one raw post through resolve, decode, extract and export."""
    out: list[str] = [f"# {source_path} (side {config.resolve.side}, target {config.export.target})\n"]
    doc = read_bytes_doc(source_path, raw)

    doc = run_stage("resolve", doc, config)
    out.append("\n## resolve\n")
    out.append(diff(raw.decode("utf-8", errors="replace"), doc.text, "resolve"))
    for block in doc.blocks:
        side = "equivalent" if block.equivalent else "DIFFER"
        out.append(f"  block lines {block.start_line}-{block.end_line}: {block.region}, kept {block.side}, sides {side}\n")

    if not doc.fatal:
        try:
            split = split_front_matter(doc.text)
            before_text = dump_markdown(split.front_matter, split.body) if split.front_matter is not None else split.body + "\n"
        except FrontMatterError:
            before_text = doc.text
        doc = run_stage("decode", doc, config)
        out.append("\n## decode (front matter read as YAML, then the named steps)\n")
        out.append(diff(before_text, _render(doc), "decode steps"))

    if not doc.fatal:
        body_before = doc.body
        doc = run_stage("extract", doc, config)
        out.append("\n## extract (export row cut from the body)\n")
        out.append(diff(body_before + "\n", doc.body + "\n", "extract"))
        if doc.row is not None:
            out.append("\nexport row:\n" + _row_table(doc.row))

    if not doc.fatal:
        out.append("\n## export\n")
        body = doc.body
        for name, step in CLEANUP_STEPS:
            if config.export.cleanup.get(name, True):
                new = step(body, config.export.target)
                out.append(diff(body + "\n", new + "\n", name))
                body = new
        post = build_post(doc, config)
        index = SiteIndex(extra_hosts=tuple(config.export.site_hosts))
        index.add(post.entry)
        index.settle()
        final = finish_post(post, index, config)
        out.append("\nfinal Markdown" + (f" ({final.file_name}):\n" if final.file_name else " (not written):\n"))
        out.append(final.markdown or "")
        problems = doc.problems + final.problems
    else:
        problems = doc.problems
    out.append("\n## problems\n")
    out.extend(f"  {p.severity:<7} {p.code}{f' (line {p.line})' if p.line else ''}: {p.message}\n" for p in problems)
    if doc.fatal:
        out.append(f"\nquarantined: {doc.fatal.code}\n")
    return "".join(out)
