"""The new site as a whole: permalinks, old URLs, duplicates and internal links.

Everything here needs all posts at once, so export runs in two passes: the first builds
each post and adds a small ``Entry`` to a ``SiteIndex``; the second finishes each post with
the settled index (duplicates merged, links rewritten, old URLs kept as aliases).

Heuristics, each named and measured in the README:
- ``duplicate_key``: two posts are one when their wall-clock date, title (quotes, case and
  spaces aside) and body (spaces aside) are equal. The kept one is the one with the
  shortest slug (the canonical URL, not its ``-2``), its title taken from a member whose
  title is not CSV-mangled.
- ``mangled_title``: a title ending in ``""``, or ending in ``"`` while its first ``"``
  closes a quote never opened (``propre", c'est quoi ?"``). Where the opening quote went is
  not known, so such a title is flagged, and repaired only from a twin.
- link rules, in order: ``exact`` (year, month, slug), ``trailing_hyphen`` (slug without
  its final hyphens), ``truncated_slug`` (the only post of that month whose slug starts with
  it, 8 characters at least), ``redated`` (the only post anywhere with that slug).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Final
from urllib.parse import urlsplit

_POST_PATH: Final = re.compile(r"/(\d{4})/(\d\d)/(?:(\d\d)/)?([^/]+?)(?:\.html?|/)?")
# The ``]`` that closes a link's text, then its target. It leads, with the look back for the
# ``!`` of an image after it: a pattern that starts with a literal is searched for that
# character first (six times faster on the archive's bodies than with the look back first).
_MARKDOWN_LINK: Final = re.compile(r"\](?<!!\])\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_ASSET_PREFIXES: Final = ("/assets/", "/wp-content/", "/files/", "/images/")
_PAGE_SUFFIXES: Final = ("", ".html", ".htm", ".php")
_QUOTES: Final = re.compile(r"[\"“”«»]")
_MIN_TRUNCATED: Final = 8


def permalink(year: int | None, month: int | None, day: int | None, slug: str) -> str:
    """The post's new URL path, ``/YYYY/MM/DD/slug/`` (``/slug/`` without a date).

    >>> permalink(2014, 7, 5, "velo"), permalink(None, None, None, "velo")
    ('/2014/07/05/velo/', '/velo/')
    """
    if year is None or month is None or day is None:
        return f"/{slug}/"
    return f"/{year:04d}/{month:02d}/{day:02d}/{slug}/"


def is_mangled_title(title: str) -> bool:
    """Whether a title carries the CSV export's quote damage (heuristic ``mangled_title``).

    >>> is_mangled_title('Seoul U smart Way""'), is_mangled_title('Un véhicule propre", c\\'est quoi ?"')
    (True, True)
    >>> is_mangled_title('Nouveau label "véhicule propre" aux USA'), is_mangled_title('"Nous rêvions de voitures"')
    (False, False)
    """
    if title.endswith('""'):
        return True
    if not title.endswith('"') or title.count('"') < 2:
        return False
    first = title.index('"')
    return first > 0 and not title[first - 1].isspace() and title[first - 1] not in "([«"


def duplicate_key(date_local: str | None, title: str, body: str) -> str | None:
    """The key under which twin posts meet (None without a date: never merged).

    >>> duplicate_key("2010-09-01T10:00:00+02:00", 'Label véhicule propre" aux USA"', "a  b") == duplicate_key(
    ...     "2010-09-01T10:00:00+02:00", 'Label "véhicule propre" aux USA', "a b")
    True
    """
    if not date_local:
        return None
    normal_title = " ".join(_QUOTES.sub("", title).casefold().split())
    normal_body = " ".join(body.split())
    return hashlib.sha256(f"{date_local}\0{normal_title}\0{normal_body}".encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """What the site index keeps of a post: small, so that a million posts fit.

    Not ``slots=True``: it would save a fifth of an entry, but a frozen dataclass with slots
    is unpickled by a Python ``__setstate__`` (2.1 s for 200,000 entries under cProfile, in
    a 100,000-post rerun), and entries come back from the workers and from the run log."""

    source_path: str
    order: int
    slug: str
    year: int | None
    month: int | None
    url: str
    old_paths: tuple[str, ...]
    dup_key: str | None
    title: str
    hosts: tuple[str, ...]
    file_name: str | None = None  # the Markdown file it wants (None: an empty post left out)


@dataclass(frozen=True)
class Link:
    """One link of a post body and what became of it."""

    original_target: str
    new_target: str | None
    status: str  # resolved, resolved-near, broken, external, asset
    rule: str | None


@dataclass
class SiteIndex:
    """All posts' URLs, and the decisions that need them all: duplicates, link targets."""

    extra_hosts: tuple[str, ...] = ()
    entries: list[Entry] = field(default_factory=list)
    canonical: dict[str, str] = field(default_factory=dict)  # source_path -> kept source_path
    merged_paths: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    repaired_titles: dict[str, str] = field(default_factory=dict)
    by_month: dict[tuple[int, int], dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    by_slug: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    hosts: set[str] = field(default_factory=set)
    urls: dict[str, str] = field(default_factory=dict)  # source_path -> url
    renamed: dict[str, tuple[str, str]] = field(default_factory=dict)  # source_path -> (slug, url)

    def add(self, entry: Entry) -> None:
        self.entries.append(entry)

    def settle(self) -> None:
        """Decide duplicates and build the link-lookup tables (after the last ``add``)."""
        # Without "www.", as resolve() compares them, once per run rather than per link.
        self.hosts = {h.casefold().removeprefix("www.") for h in (*(h for e in self.entries for h in e.hosts), *self.extra_hosts)}
        groups: dict[str, list[Entry]] = defaultdict(list)
        for entry in self.entries:
            if entry.dup_key is not None:
                groups[entry.dup_key].append(entry)
        for members in groups.values():
            if len(members) < 2:
                continue
            kept = min(members, key=lambda e: (len(e.slug), e.order))
            good_titles = [e.title for e in members if not is_mangled_title(e.title)]
            if is_mangled_title(kept.title) and good_titles:
                self.repaired_titles[kept.source_path] = good_titles[0]
            for member in members:
                if member is not kept:
                    self.canonical[member.source_path] = kept.source_path
                    self.merged_paths[kept.source_path].extend((*member.old_paths, member.url))
        self._make_urls_unique()
        by_path = {e.source_path: e for e in self.entries}
        for entry in self.entries:
            target = by_path[self.canonical.get(entry.source_path, entry.source_path)].url
            self.urls[entry.source_path] = target
            if entry.year is not None and entry.month is not None:
                self.by_month[(entry.year, entry.month)].setdefault(entry.slug, target)
            self.by_slug[entry.slug].add(target)
            for old in entry.old_paths:
                match = _POST_PATH.fullmatch(old)
                if match:
                    self.by_month[(int(match[1]), int(match[2]))].setdefault(match[4], target)
        # The lookup tables above hold all that finishing needs; the entries (a kilobyte a
        # post: titles, duplicate keys) would only weigh on the second pass's memory.
        self.entries = []

    def _make_urls_unique(self) -> None:
        """Give a later post whose URL an earlier one has (in input order) a suffixed slug."""
        taken: set[str] = set()
        for position, entry in enumerate(self.entries):
            if entry.source_path in self.canonical:
                continue
            if entry.url in taken:
                suffix = hashlib.sha256(entry.source_path.encode()).hexdigest()[:8]
                slug = f"{entry.slug}-{suffix}"
                url = entry.url[: -len(entry.slug) - 1] + f"{slug}/"
                self.renamed[entry.source_path] = (slug, url)
                entry = replace(entry, slug=slug, url=url)
                self.entries[position] = entry
            taken.add(entry.url)

    def fingerprint(self) -> str:
        """A hash of everything ``finish_post`` reads from the settled index.

        Two runs whose fingerprints are equal finish an unchanged post identically, so a
        rerun may keep its previous output. A body or title edit leaves it equal; a changed
        slug, date, old URL, twin or link host changes it.

        >>> index = SiteIndex()
        >>> index.add(Entry("a.md", 0, "velo", 2014, 7, "/2014/07/05/velo/", (), "k1", "V", ()))
        >>> index.settle()
        >>> body_edit = SiteIndex(entries=[Entry("a.md", 0, "velo", 2014, 7, "/2014/07/05/velo/", (), "k2", "V", ())])
        >>> body_edit.settle()
        >>> index.fingerprint() == body_edit.fingerprint()
        True
        """
        # Dicts print in insertion order, which follows the entries' order: equal entries,
        # equal text. Sets print in an order that changes from process to process: sorted.
        by_slug = {slug: sorted(urls) for slug, urls in self.by_slug.items()}
        state = (self.canonical, self.merged_paths, self.repaired_titles, self.renamed, self.urls, self.by_month, by_slug, sorted(self.hosts))
        return hashlib.sha256(repr(state).encode()).hexdigest()

    def aliases_of(self, entry_paths: Iterable[str], source_path: str) -> list[str]:
        """Old paths of a post and of the twins merged into it, without its own URL."""
        own = self.urls[source_path]
        return sorted({*entry_paths, *self.merged_paths.get(source_path, ())} - {own})

    def resolve(self, target: str) -> Link:
        """Classify one link target and find the new URL of the post it points at."""
        parts = urlsplit(target)
        if parts.scheme not in ("", "http", "https") or target.startswith("#"):
            return Link(target, None, "external", None)
        if parts.netloc and parts.netloc.casefold().removeprefix("www.") not in self.hosts:
            return Link(target, None, "external", None)
        path = parts.path
        if not path.startswith("/"):
            return Link(target, None, "broken", "not_a_site_path")
        if path.startswith(_ASSET_PREFIXES) or (not path.rstrip("/").endswith(_PAGE_SUFFIXES) and "." in path.rsplit("/", 1)[-1]):
            return Link(target, None, "asset", None)
        match = _POST_PATH.fullmatch(path)
        if not match:
            return Link(target, None, "broken", "not_a_post_path")
        found = self._find(int(match[1]), int(match[2]), match[4])
        if found is None:
            return Link(target, None, "broken", "no_such_post")
        url, rule = found
        new = url + (f"#{parts.fragment}" if parts.fragment else "")
        return Link(target, new, "resolved" if rule == "exact" else "resolved-near", rule)

    def _find(self, year: int, month: int, slug: str) -> tuple[str, str] | None:
        month_slugs = self.by_month.get((year, month), {})
        if slug in month_slugs:
            return month_slugs[slug], "exact"
        stripped = slug.rstrip("-")
        if stripped != slug and stripped in month_slugs:
            return month_slugs[stripped], "trailing_hyphen"
        if len(stripped) >= _MIN_TRUNCATED:
            longer = {url for s, url in month_slugs.items() if s.startswith(stripped)}
            if len(longer) == 1:
                return longer.pop(), "truncated_slug"
        anywhere = self.by_slug.get(slug) or self.by_slug.get(stripped) or set()
        if len(anywhere) == 1:
            return next(iter(anywhere)), "redated"
        return None


def rewrite_links(body: str, index: SiteIndex) -> tuple[str, list[Link]]:
    """Rewrite the Markdown links of a body that point at posts of this site to their new
    URLs; return the new body and every link found, with its status.

    >>> index = SiteIndex()
    >>> index.add(Entry("a.md", 0, "velo", 2014, 7, "/2014/07/05/velo/", ("/2014/07/velo.html",), None, "V", ("blog.org",)))
    >>> index.settle()
    >>> rewrite_links("[v](https://blog.org/2014/07/velo-.html) [w](https://x.org/)", index)[0]
    '[v](/2014/07/05/velo/) [w](https://x.org/)'
    """
    links: list[Link] = []
    pieces: list[str] = []
    last = 0
    for match in _MARKDOWN_LINK.finditer(body):
        link = index.resolve(match.group(1))
        links.append(link)
        if link.new_target is not None:
            pieces.append(body[last : match.start(1)])
            pieces.append(link.new_target)
            last = match.end(1)
    pieces.append(body[last:])
    return "".join(pieces), links
