"""What export writes, built as plain values: post rows, Markdown text, quarantine rows, report.

Pure functions only; ``pipeline.io`` writes what they return.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from pipeline.config import Config
from pipeline.dates import localize, offset_was_wrong, parse_wall_clock
from pipeline.frozen import evolve
from pipeline.markdown import dump_markdown
from pipeline.ondisk import DiskSet, StringSet
from pipeline.problems import CODES, Problem, problem
from pipeline.record import Change, Doc
from pipeline.site import Entry, Link, SiteIndex, duplicate_key, is_mangled_title, permalink, post_link_targets, rewrite_links
from pipeline.stages import count_changed_lines, jekyll_slug
from pipeline.steps import CLEANUP_STEPS

# Keys written first, in this order; other front-matter keys follow in their own order.
FRONT_MATTER_ORDER: Final = (
    "title",
    "date",
    "slug",
    "author",
    "categories",
    "tags",
    "aliases",
    "redirect_from",
    "lastmod",
    "last_modified_at",
    "draft",
    "published",
)
_RESERVED_NAMES: Final = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))})
_SENTENCE: Final = re.compile(r"(.+?[.!?…])(?:\s|$)")
_MAX_SLUG: Final = 200


@dataclass(frozen=True)
class Post:
    """A post after the first export pass: its row, front matter and body, and its index entry.

    Nothing here needs the other posts; ``finish_post`` adds what does.
    """

    row: dict[str, Any]
    front_matter: dict[str, Any]
    body: str
    file_name: str
    problems: tuple[Problem, ...]
    entry: Entry
    lastmod: datetime | None = None
    changes: tuple[Change, ...] = ()


@dataclass(frozen=True)
class FinalPost:
    """A post ready to write: its row, its Markdown (None when it is not written) and links."""

    row: dict[str, Any]
    file_name: str | None
    markdown: str | None
    problems: tuple[Problem, ...]
    links: tuple[Link, ...]
    redirects: tuple[tuple[str, str], ...]
    changes: tuple[Change, ...] = ()


def build_post(doc: Doc, config: Config, order: int = 0) -> Post:
    """First pass: settle title, date, slug, author and old URLs of a post; build its row.

    ``order`` is the post's place in the run, which breaks ties between duplicates.
    """
    front_matter = dict(doc.front_matter or {})
    problems: list[Problem] = []
    row = doc.row

    title = front_matter.get("title")
    if not isinstance(title, str) or not title.strip():
        title = derive_title(doc.body) or jekyll_slug(doc.source_path) or _stem(doc.source_path)
        problems.append(problem("title_missing", f"no title in front matter; derived {title!r} from the body"))
    elif is_mangled_title(title):
        problems.append(problem("title_mangled", f"title {title!r} has the CSV export's quote damage; check it by hand"))

    date = None
    date_text = front_matter.get("date")
    wall = parse_wall_clock(str(date_text)) if date_text is not None else None
    if wall is None and row is not None and row.post_date:
        wall = parse_wall_clock(row.post_date)
    if wall is None:
        if date_text is not None:
            problems.append(problem("date_invalid", f"date {date_text!r} is not YYYY-MM-DD[ HH:MM:SS][ +HHMM]; fix it in the source"))
        else:
            problems.append(problem("date_missing", "no date in front matter, file name or export row; add a date: line"))
    else:
        date = localize(wall, config.zone)
        if offset_was_wrong(wall, date):
            problems.append(
                problem(
                    "date_offset_corrected",
                    f"written offset of {date_text!r} is wrong for {config.decode.timezone}; wrote {date.isoformat()}",
                )
            )

    slug, slug_source = _choose_slug(front_matter, row, doc.source_path, title)
    safe = sanitise_slug(slug)
    if safe != slug:
        problems.append(problem("slug_sanitised", f"slug {slug!r} written as {safe!r}"))
    file_name = f"{date:%Y-%m-%d}-{safe}.md" if config.export.target == "jekyll" and date else f"{safe}.md"

    author = _public_author(front_matter, doc, config)
    tags = list(front_matter.get("tags") or [])
    categories = list(front_matter.get("categories") or [])
    url = permalink(date.year if date else None, date.month if date else None, date.day if date else None, safe)
    old_paths = _old_paths(doc, date, safe, config, url)
    body, changes = clean_body(doc.body, config)
    empty = not body.strip() and not tags and not categories and row is None
    draft = (
        (row is not None and row.status not in (None, "publish"))
        or (empty and config.export.empty_posts == "draft")
        or front_matter.get("draft") is True
        or front_matter.get("published") is False
    )
    if empty:
        problems.append(problem("empty_post", f"empty post without tags or export row: {config.export.empty_posts}"))

    ordered: dict[str, Any] = {"title": title}
    if date is not None:
        ordered["date"] = date
    ordered["slug"] = safe
    if author:
        ordered["author"] = author
    ordered["categories"] = categories
    ordered["tags"] = tags
    ordered.update((k, v) for k, v in front_matter.items() if k not in FRONT_MATTER_ORDER)

    all_problems = doc.problems + tuple(problems)
    author_fields = row.author if row is not None else None
    lastmod = _wp_time(row.modified if row else _front_matter_time(front_matter), config)
    post_row: dict[str, Any] = {
        "source_path": doc.source_path,
        "sha256": doc.sha256,
        "output_path": None,
        "url": url,
        "old_paths": old_paths,
        "slug": safe,
        "slug_source": slug_source,
        "title": title,
        "title_source": "derived" if slug_source and "title_missing" in {p.code for p in problems} else "front_matter",
        "date": date.astimezone(UTC) if date else None,
        "date_local": date.isoformat() if date else None,
        "lastmod": lastmod,
        "author": author,
        "tags": tags,
        "categories": categories,
        "draft": draft,
        "duplicate_of": None,
        "body": body,
        "problems": sorted({p.code for p in all_problems}),
        "conflict_blocks": len(doc.blocks),
        "wp_row_parse": row.parse if row else "none",
        "wp_post_date": _wp_time(row.post_date if row else None, config),
        "wp_url": row.url if row else None,
        "wp_path": row.path if row else None,
        "wp_terms": row.terms if row else None,
        "wp_categories": list(row.categories) if row else [],
        "wp_tags": list(row.tags) if row else [],
        "wp_status": row.status if row else None,
        "wp_author_id": row.author_id if row else None,
        "wp_author_login": author_fields.login if author_fields else None,
        "wp_author_email": author_fields.email if author_fields else None,
        "wp_author_first_name": author_fields.first_name if author_fields else None,
        "wp_author_last_name": author_fields.last_name if author_fields else None,
        "wp_author_display_name": author_fields.display_name if author_fields else None,
        "wp_author_raw": author_fields.raw if author_fields else None,
        "wp_slug": row.slug if row else None,
        "wp_modified": lastmod,
        "wp_excerpt": row.excerpt if row else None,
        "wp_spill": row.spill if row else None,
        "wp_row_raw": row.raw if row else None,
    }
    hosts = (urlsplit(row.url).hostname or "",) if row is not None and row.url and row.url.startswith("http") else ()
    entry = Entry(
        source_path=doc.source_path,
        order=order,
        slug=safe,
        year=date.year if date else None,
        month=date.month if date else None,
        url=url,
        old_paths=tuple(old_paths),
        dup_key=duplicate_key(post_row["date_local"], title, body),
        title=title,
        hosts=tuple(h for h in hosts if h),
        file_name=None if _left_out(problems, config) else file_name,
        post_links=post_link_targets(body),
    )
    lastmod_local = lastmod.astimezone(config.zone) if lastmod else None
    return Post(post_row, ordered, body, file_name, tuple(problems), entry, lastmod_local, changes)


def clean_body(body: str, config: Config) -> tuple[str, tuple[Change, ...]]:
    """The body through the switched-on cleanup steps; what each changed (lines) is recorded."""
    changes = []
    for name, step in CLEANUP_STEPS:
        if not config.export.cleanup.get(name, True):
            continue
        new = step(body, config.export.target)
        if new != body:
            changes.append(Change("export", name, count_changed_lines(body, new)))
        body = new
    # Cleanup can bare the end of a body; the Markdown reader strips it, so strip it here too.
    return body.strip("\n").rstrip(), tuple(changes)


def _old_paths(doc: Doc, date: datetime | None, slug: str, config: Config, url: str) -> list[str]:
    """Every URL path the post had: the export row's, and the blog's configured URL forms."""
    paths: list[str] = []
    if doc.row is not None and doc.row.path:
        paths.append(doc.row.path)
    for key in ("aliases", "redirect_from"):  # written by an earlier run: URLs the post had
        value = (doc.front_matter or {}).get(key)
        if isinstance(value, list):
            paths.extend(str(v) for v in value if isinstance(v, str) and v.startswith("/"))
    slugs = {slug, *(s for s in (jekyll_slug(doc.source_path), doc.row.slug if doc.row else None) if s)}
    if date is not None:
        for pattern in config.export.old_url_patterns:
            for old_slug in sorted(slugs):
                paths.append(pattern.format(year=f"{date:%Y}", month=f"{date:%m}", day=f"{date:%d}", slug=old_slug))
    return sorted(set(paths) - {url})


def finish_post(post: Post, index: SiteIndex, config: Config) -> FinalPost:
    """Second pass: merge duplicates, rewrite internal links, add old URLs, render Markdown."""
    source = post.row["source_path"]
    kept = index.canonical.get(source)
    if kept is not None:
        merged = problem("duplicate_merged", f"same date, title and body as {kept}; its URLs redirect there")
        row = {**post.row, "duplicate_of": kept, "problems": sorted({*post.row["problems"], merged.code})}
        return FinalPost(row, None, None, (*post.problems, merged), (), (), post.changes)
    problems = list(post.problems)
    if source in index.renamed:
        slug, url = index.renamed[source]
        problems.append(problem("slug_collision", f"another post already has the URL {post.row['url']}; this one gets {url}"))
        post = evolve(
            post,
            row={**post.row, "slug": slug, "url": url},
            front_matter={**post.front_matter, "slug": slug},
            file_name=renamed_file_name(post.file_name, post.row["slug"], slug),
        )
    body, links = rewrite_links(post.body, index)
    broken = [link.original_target for link in links if link.status == "broken"]
    if broken:
        problems.append(problem("link_broken", f"{len(broken)} link(s) lead nowhere in the new site: {', '.join(broken[:3])}"))
    title = post.row["title"]
    title_source = post.row["title_source"]
    if source in index.repaired_titles:
        title = index.repaired_titles[source]
        title_source = "twin"
        problems.append(problem("title_repaired", f"title {post.row['title']!r} repaired to {title!r} from its twin"))
    aliases = index.aliases_of(post.row["old_paths"], source)
    front_matter = _target_front_matter({**post.front_matter, "title": title}, aliases, post.row["draft"], post.lastmod, config)
    written = not _left_out(problems, config)
    row = {
        **post.row,
        "title": title,
        "title_source": title_source,
        "old_paths": aliases,
        "body": body,
        "output_path": f"posts/{post.file_name}" if written else None,
        "problems": sorted({*post.row["problems"], *(p.code for p in problems)}),
    }
    markdown = dump_markdown(front_matter, body) if written else None
    # A draft's page is not built, so a server redirect to it would lead to a 404.
    redirects = () if post.row["draft"] else tuple((old, post.row["url"]) for old in aliases)
    return FinalPost(row, post.file_name if written else None, markdown, tuple(problems), tuple(links), redirects, post.changes)


def _left_out(problems: Iterable[Problem], config: Config) -> bool:
    """An empty post that ``export.empty_posts: omit`` leaves without a Markdown file."""
    return config.export.empty_posts == "omit" and "empty_post" in {p.code for p in problems}


def renamed_file_name(file_name: str, slug: str, new_slug: str) -> str:
    """A post's file name once the index gave it another slug.

    >>> renamed_file_name("2014-07-05-velo-2014.md", "velo-2014", "velo-2014-1a2b3c4d")
    '2014-07-05-velo-2014-1a2b3c4d.md'
    """
    # The name ends with the slug (build_post); a replace() could hit the date part.
    return file_name.removesuffix(f"{slug}.md") + f"{new_slug}.md"


def claim_file_names(index: SiteIndex) -> dict[str, str]:
    """The file names ``claim_file_name`` will give, decided once the index has settled so
    that the second pass's workers can write the Markdown files themselves: the names the
    first pass wanted (``SiteIndex.wanted_names``), in input order; only the names that
    differ from the wanted one (a case-insensitive clash with an earlier post's), by source
    path."""
    taken = DiskSet()
    moved: dict[str, str] = {}
    for source_path, slug, file_name in index.wanted_names():
        if file_name is None or source_path in index.canonical:
            continue  # omitted, or merged into its twin: finish_post writes no file
        renamed = index.renamed.get(source_path)
        wanted = file_name if renamed is None else renamed_file_name(file_name, slug, renamed[0])
        name = _claim_name(wanted, source_path, taken)
        if name != wanted:
            moved[source_path] = name
    return moved


def light_post(post: FinalPost) -> FinalPost:
    """A finished post with only what the claims and the counts read: what a run log keeps.

    Its row keeps ``LIGHT_ROW_KEYS``; its Markdown becomes "" (whether there is some is
    counted). A run patched from a log copies the rest from the previous output's tables.

    >>> post = FinalPost({"source_path": "a.md", "body": "long"}, "a.md", "---\\n---\\nlong\\n", (), (), ())
    >>> light_post(post).row, light_post(post).markdown
    ({'source_path': 'a.md'}, '')
    """
    row: dict[str, Any] = {key: post.row[key] for key in LIGHT_ROW_KEYS if key in post.row}
    return evolve(post, markdown=None if post.markdown is None else "", row=row)


_AUTHOR_KEYS: Final = ("wp_author_login", "wp_author_email", "wp_author_first_name", "wp_author_last_name", "wp_author_display_name")
# The row fields that claim_file_name, claim_redirects, Tally and link_rows read.
LIGHT_ROW_KEYS: Final[tuple[str, ...]] = (
    *("source_path", "url", "output_path", "problems", "date_local", "wp_row_parse", "draft", "duplicate_of", "wp_author_id"),
    *("wp_author_login", "wp_author_email", "wp_author_first_name", "wp_author_last_name", "wp_author_display_name"),
)


def _target_front_matter(base: dict[str, Any], aliases: list[str], draft: bool, lastmod: datetime | None, config: Config) -> dict[str, Any]:
    """The front matter in the shape the target site generator reads."""
    ordered: dict[str, Any] = {}
    for key in ("title", "date"):
        if key in base:
            ordered[key] = base[key]
    if lastmod is not None:
        ordered["lastmod" if config.export.target == "hugo" else "last_modified_at"] = lastmod
    for key in ("slug", "author", "categories", "tags"):
        if key in base:
            ordered[key] = base[key]
    if config.export.target == "hugo":
        ordered["aliases"] = aliases
        if draft:
            ordered["draft"] = True
        if "date" not in base:
            ordered["url"] = f"/{base['slug']}/"
    else:
        ordered["redirect_from"] = aliases
        if draft:
            ordered["published"] = False
        if "date" not in base:
            ordered["permalink"] = f"/{base['slug']}/"
    extras = {k: v for k, v in base.items() if k not in ordered and k not in FRONT_MATTER_ORDER}
    if config.export.target == "hugo":
        extras.pop("layout", None)  # a Jekyll layout name; Hugo would look for a template of that name
    ordered.update(extras)
    return ordered


def claim_file_name(post: FinalPost, taken_names: StringSet) -> FinalPost:
    """The post with a file name no earlier post of the run has taken.

    Called in input order, so the result does not depend on how the work was scheduled;
    the later of two colliding posts gets a suffix from a hash of its source path.
    """
    wanted = post.file_name
    if wanted is None:
        return post
    return with_claimed_name(post, _claim_name(wanted, post.row["source_path"], taken_names))


def with_claimed_name(post: FinalPost, file_name: str | None) -> FinalPost:
    """The post under the file name claimed for it (``claim_file_name``, or ahead of the
    second pass, ``claim_file_names``): as it is when that is the name it wanted, else
    moved there with a ``slug_collision`` problem.

    >>> post = FinalPost({"source_path": "b.md", "problems": []}, "velo.md", "", (), (), ())
    >>> moved = with_claimed_name(post, "velo-1a2b3c4d.md")
    >>> moved.row["output_path"], moved.problems[0].code, with_claimed_name(post, "velo.md") is post
    ('posts/velo-1a2b3c4d.md', 'slug_collision', True)
    """
    wanted = post.file_name
    if file_name is None or wanted is None or file_name == wanted:
        return post
    collision = problem("slug_collision", f"another post already writes {wanted}; wrote {file_name}")
    row = {**post.row, "output_path": f"posts/{file_name}", "problems": sorted({*post.row["problems"], collision.code})}
    return FinalPost(row, file_name, post.markdown, (*post.problems, collision), post.links, post.redirects, post.changes)


def _claim_name(wanted: str, source_path: str, taken_names: StringSet) -> str:
    """``wanted``, or a free name if an earlier post took it (names compare case-insensitively)."""
    name = wanted if wanted.casefold() not in taken_names else _free_name(wanted, source_path, taken_names)
    taken_names.add(name.casefold())
    return name


def _free_name(file_name: str, source_path: str, taken_names: StringSet) -> str:
    """A free file name, suffixed with a hash of the source path (unique per input)."""
    stem = file_name[:-3]
    digest = hashlib.sha256(source_path.encode("utf-8")).hexdigest()
    for length in range(8, len(digest) + 1):
        candidate = f"{stem}-{digest[:length]}.md"
        if candidate.casefold() not in taken_names:
            return candidate
    raise AssertionError(f"no free file name for {source_path}")  # 2**256 paths would be needed


def derive_title(body: str, limit: int = 90) -> str | None:
    """A title for a post without one: its first sentence, cut at a word under ``limit``.

    Heuristic ``title_from_first_sentence``, used only when the front matter has no title.

    >>> derive_title("Le géant Alibaba ne cesse d’enrichir son offre. Depuis le 26 mars…")
    'Le géant Alibaba ne cesse d’enrichir son offre.'
    """
    text = " ".join(body.split())
    if not text:
        return None
    match = _SENTENCE.match(text)
    sentence = match.group(1) if match else text
    if len(sentence) <= limit:
        return sentence
    cut = sentence[:limit].rsplit(" ", 1)[0]
    return f"{cut}…"


_APOSTROPHES: Final = re.compile(r"['’]")
_NOT_SLUG: Final = re.compile(r"[^a-z0-9]+")
_NOT_FILE_NAME: Final = re.compile(r"[^\w-]+")


def slugify(text: str) -> str:
    """A WordPress-style slug: accents and apostrophes dropped, other runs of signs as ``-``.

    >>> slugify("ALIBABA prend position dans l'Automobile – à Pékin")
    'alibaba-prend-position-dans-lautomobile-a-pekin'
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return _NOT_SLUG.sub("-", _APOSTROPHES.sub("", ascii_text.lower())).strip("-")


def sanitise_slug(slug: str) -> str:
    """A slug safe as a file name and URL path segment: no separators, dots or reserved names.

    >>> sanitise_slug("../../etc/passwd"), sanitise_slug("CON"), sanitise_slug("été-2")
    ('etc-passwd', 'con-post', 'été-2')
    """
    safe = _NOT_FILE_NAME.sub("-", slug).strip("-_")[:_MAX_SLUG].strip("-_")
    if not safe:
        return "post"
    if safe.casefold() in _RESERVED_NAMES:
        return f"{safe.lower()}-post"
    return safe


def _choose_slug(front_matter: dict[str, Any], row: Any, source_path: str, title: str) -> tuple[str, str]:
    """Slug priority: front matter, export row, Jekyll file name, title, file stem."""
    if isinstance(front_matter.get("slug"), str) and front_matter["slug"].strip():
        return front_matter["slug"].strip(), "front_matter"
    if row is not None and row.slug:
        return row.slug, "wp_row"
    file_slug = jekyll_slug(source_path)
    if file_slug:
        return file_slug, "file_name"
    from_title = slugify(title)
    if from_title:
        return from_title, "title"
    return _stem(source_path), "file_stem"


def _stem(source_path: str) -> str:
    return source_path.rsplit("/", 1)[-1].rsplit(".", 1)[0]


def _public_author(front_matter: dict[str, Any], doc: Doc, config: Config) -> str | None:
    choice = config.export.author_name
    author = doc.row.author if doc.row is not None else None
    if choice != "none" and author is not None:
        name = author.display_name if choice == "display_name" else author.login
        if name:
            return name
    existing = front_matter.get("author")
    if isinstance(existing, str) and existing.strip():
        return existing.strip()
    return config.export.default_author or None


def _front_matter_time(front_matter: dict[str, Any]) -> str | None:
    value = front_matter.get("lastmod") or front_matter.get("last_modified_at")
    wall = parse_wall_clock(str(value)) if value else None
    return wall.local.strftime("%Y-%m-%d %H:%M:%S") if wall else None


def _wp_time(text: str | None, config: Config) -> datetime | None:
    wall = parse_wall_clock(text) if text else None
    return localize(wall, config.zone).astimezone(UTC) if wall else None


def quarantine_row(doc: Doc) -> dict[str, Any]:
    """The quarantine.parquet row of a post that could not be cleaned."""
    reason = doc.fatal
    assert reason is not None
    return {
        "source_path": doc.source_path,
        "sha256": doc.sha256,
        "reason": reason.code,
        "message": reason.message,
        "line": reason.line,
        "raw": doc.raw,
    }


def table_rows(doc: Doc, final: FinalPost | None) -> dict[str, list[dict[str, Any]]]:
    """The rows one input adds to each output table, by table name; both engines write these.

    A cleaned post adds to posts, links, conflicts and problems; a quarantined input
    (``final`` None) to quarantine, conflicts and problems.
    """
    rows = {
        "conflicts": conflict_rows(doc),
        "problems": problem_rows(doc.source_path, doc.problems + (final.problems if final else ())),
    }
    if final is None:
        rows["quarantine"] = [quarantine_row(doc)]
    else:
        rows["posts"] = [final.row]
        rows["links"] = link_rows(final)
    return rows


def conflict_rows(doc: Doc) -> list[dict[str, Any]]:
    """The conflicts.parquet rows of a post: one per conflict block."""
    # vars(), not asdict(): a Block holds only scalars, and asdict's deep copy cost 60 µs a block.
    return [{"source_path": doc.source_path, **vars(block)} for block in doc.blocks]


def link_rows(post: FinalPost) -> list[dict[str, Any]]:
    """The links.parquet rows of a post: one per link of its body."""
    return [
        {
            "source_path": post.row["source_path"],
            "post_url": post.row["url"],
            "original_target": link.original_target,
            "new_target": link.new_target,
            "status": link.status,
            "rule": link.rule,
        }
        for link in post.links
    ]


def problem_rows(source_path: str, problems: tuple[Problem, ...]) -> list[dict[str, Any]]:
    """The problems.parquet rows of a post: one per problem found."""
    return [{"source_path": source_path, "code": p.code, "severity": p.severity, "line": p.line, "message": p.message} for p in problems]


@dataclass
class Tally:
    """Counts for report.json, added up post by post in input order."""

    side: str
    inputs: int = 0
    cleaned: int = 0
    quarantined: int = 0
    quarantine_reasons: Counter[str] = field(default_factory=Counter)
    blocks_by_region: Counter[str] = field(default_factory=Counter)
    blocks_sides_differ: int = 0
    rows_by_parse: Counter[str] = field(default_factory=Counter)
    problems_by_code: Counter[str] = field(default_factory=Counter)
    posts_by_severity: Counter[str] = field(default_factory=Counter)
    changes_by_step: Counter[str] = field(default_factory=Counter)
    authors: dict[int, dict[str, Any]] = field(default_factory=dict)
    written: int = 0
    drafts: int = 0
    duplicates_merged: int = 0
    old_urls: int = 0
    links_by_status: Counter[str] = field(default_factory=Counter)
    links_near_by_rule: Counter[str] = field(default_factory=Counter)
    per_year: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, doc: Doc, post: FinalPost | None) -> None:
        self.inputs += 1
        problems = doc.problems + (post.problems if post else ())
        for p in problems:
            self.problems_by_code[p.code] += 1
        for severity in {p.severity for p in problems}:
            self.posts_by_severity[severity] += 1
        for change in doc.changes + (post.changes if post else ()):
            self.changes_by_step[f"{change.stage}.{change.step}"] += change.count
        for block in doc.blocks:
            self.blocks_by_region[block.region] += 1
            self.blocks_sides_differ += not block.equivalent
        if post is None:
            self.quarantined += 1
            fatal = doc.fatal
            self.quarantine_reasons[fatal.code if fatal else "unknown"] += 1
            return
        self.cleaned += 1
        year = (post.row["date_local"] or "none")[:4]
        counts = self.per_year.setdefault(year, Counter())
        counts["posts"] += 1
        counts["with_export_row"] += post.row["wp_row_parse"] != "none"
        counts["posts_with_warnings"] += any(p.severity in ("warning", "error") for p in problems)
        counts["conflict_blocks"] += len(doc.blocks)
        self.rows_by_parse[post.row["wp_row_parse"]] += 1
        self.written += post.markdown is not None
        self.drafts += bool(post.row["draft"]) and post.markdown is not None
        self.duplicates_merged += post.row["duplicate_of"] is not None
        self.old_urls += len(post.redirects)
        for link in post.links:
            self.links_by_status[link.status] += 1
            if link.status == "resolved-near" and link.rule:
                self.links_near_by_rule[link.rule] += 1
        author_id = post.row["wp_author_id"]
        if author_id is not None:
            # The first post's author fields and place: a run log keeps the tally (``swap``).
            row = {key: post.row[key] for key in _AUTHOR_KEYS}
            entry = self.authors.setdefault(author_id, {"post_count": 0, "row": row, "first": self.inputs - 1})
            entry["post_count"] += 1

    def swap(self, position: int, old: tuple[Doc, FinalPost | None], new: tuple[Doc, FinalPost | None]) -> None:
        """Count the post at ``position`` as ``new`` instead of ``old``: the tally a full run
        of the changed archive would give, provided the post keeps its author and its
        changes count something (a count of 0 leaves a key that only a full run can tell
        apart). Raises ValueError where it cannot promise that.

        >>> from pipeline.record import Doc
        >>> tally, doc = Tally(side="ours"), Doc("a.md", "0", b"")
        >>> tally.add(doc, None); tally.swap(0, (doc, None), (doc, None)); tally.report()["quarantined"]
        1
        """
        (old_doc, old_post), (new_doc, new_post) = old, new
        for doc, post in (old, new):
            if any(change.count <= 0 for change in doc.changes + (post.changes if post else ())):
                raise ValueError(f"{doc.source_path}: a change that counts nothing")
        old_author = old_post.row["wp_author_id"] if old_post else None
        if old_author != (new_post.row["wp_author_id"] if new_post else None):
            raise ValueError(f"{new_doc.source_path}: another author (authors.parquet takes each author's first post)")
        alone = [Tally(side=self.side), Tally(side=self.side)]
        alone[0].add(old_doc, old_post)
        alone[1].add(new_doc, new_post)
        for name, value in vars(self).items():
            before, after = getattr(alone[0], name), getattr(alone[1], name)
            if isinstance(value, Counter):
                value.subtract(before)
                value.update(after)
                for key in [key for key, count in value.items() if not count and key not in after]:
                    del value[key]
            elif isinstance(value, int) and not isinstance(value, bool):
                setattr(self, name, value - before + after)
        for year in {*alone[0].per_year, *alone[1].per_year}:
            counts = self.per_year.setdefault(year, Counter())
            counts.subtract(alone[0].per_year.get(year, Counter()))
            counts.update(alone[1].per_year.get(year, Counter()))
            if not counts["posts"]:
                del self.per_year[year]
        if old_author is not None and new_post is not None and self.authors[old_author]["first"] == position:
            self.authors[old_author]["row"] = alone[1].authors[old_author]["row"]

    def per_year_rows(self) -> list[dict[str, Any]]:
        """Per-year counts of cleaned posts, for DVC plots."""
        keys = ("posts", "with_export_row", "posts_with_warnings", "conflict_blocks")
        return [{"year": year, **{k: self.per_year[year][k] for k in keys}} for year in sorted(self.per_year)]

    def author_rows(self) -> list[dict[str, Any]]:
        """authors.parquet: one row per author id, fields from its first post in input order."""
        rows = []
        for author_id in sorted(self.authors):
            first = self.authors[author_id]["row"]
            rows.append(
                {
                    "wp_author_id": author_id,
                    "login": first["wp_author_login"],
                    "email": first["wp_author_email"],
                    "first_name": first["wp_author_first_name"],
                    "last_name": first["wp_author_last_name"],
                    "display_name": first["wp_author_display_name"],
                    "post_count": self.authors[author_id]["post_count"],
                }
            )
        return rows

    def report(self) -> dict[str, Any]:
        """report.json: machine-readable counts of the whole run."""
        return {
            "side": self.side,
            "inputs": self.inputs,
            "cleaned": self.cleaned,
            "quarantined": self.quarantined,
            "accounting_ok": self.inputs == self.cleaned + self.quarantined,
            "quarantine_reasons": dict(sorted(self.quarantine_reasons.items())),
            "conflict_blocks": sum(self.blocks_by_region.values()),
            "blocks_by_region": dict(sorted(self.blocks_by_region.items())),
            "blocks_sides_differ": self.blocks_sides_differ,
            "export_rows": sum(v for k, v in self.rows_by_parse.items() if k != "none"),
            "export_rows_by_parse": dict(sorted(self.rows_by_parse.items())),
            "authors": len(self.authors),
            "markdown_written": self.written,
            "drafts": self.drafts,
            "duplicates_merged": self.duplicates_merged,
            "old_urls_redirected": self.old_urls,
            "links_by_status": dict(sorted(self.links_by_status.items())),
            "links_near_by_rule": dict(sorted(self.links_near_by_rule.items())),
            "posts_by_severity": dict(sorted(self.posts_by_severity.items())),
            "problems_by_code": {code: self.problems_by_code[code] for code in CODES if self.problems_by_code[code]},
            "changes_by_step": dict(sorted(self.changes_by_step.items())),
        }
