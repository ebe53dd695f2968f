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
- ``linked_old_urls``: a path that links of the blog's own posts point at, and that only the
  ``redated`` rule resolves, was the post's address before it was re-dated: it becomes one
  of that post's old URLs (``redirect_from``, ``redirects.csv``), as its ``.html`` address
  is, so that the links and bookmarks made before the re-dating keep working.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import urlsplit

from pipeline import ondisk

_POST_PATH: Final = re.compile(r"/(\d{4})/(\d\d)/(?:(\d\d)/)?([^/]+?)(?:\.html?|/)?")
# The ``]`` that closes a link's (or an image's) text, then its target. It leads: a pattern
# that starts with a literal is searched for that character first. A text may end with
# ``!`` (``[Innovons… vite !](/2009/11/….html)``): the look back that once refused ``!]``
# left five links of the archive unread, one of them internal.
_MARKDOWN_LINK: Final = re.compile(r"\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# A link target whose path may be a post's: ``/YYYY/MM/`` first, after a scheme and host or
# none (``urlsplit`` and ``_POST_PATH`` decide, where the index stores it).
_POST_LINK_TARGET: Final = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*:)?(?://[^/?#]*)?/\d{4}/\d\d/")
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
    post_links: tuple[str, ...] = ()  # its links that have a post's path (``post_link_targets``)


@dataclass(frozen=True)
class Link:
    """One link of a post body and what became of it."""

    original_target: str
    new_target: str | None
    status: str  # resolved, resolved-near, broken, external, asset
    rule: str | None


def choose_kept(twins: list[Entry]) -> tuple[Entry, str | None]:
    """The twin the others merge into: the one with the shortest slug, the first of those
    (heuristic ``duplicate_key``); and, when its title is CSV-mangled, a sound title from
    another twin (None when it needs none or none has one).

    >>> kept, title = choose_kept([Entry("a.md", 0, "velo-2", None, None, "/velo-2/", (), "k", "Vélo", ()),
    ...                            Entry("b.md", 1, "velo", None, None, "/velo/", (), "k", 'Vélo""', ())])
    >>> kept.source_path, title
    ('b.md', 'Vélo')
    """
    kept = min(twins, key=lambda e: (len(e.slug), e.order))
    good_titles = [e.title for e in twins if not is_mangled_title(e.title)]
    return kept, (good_titles[0] if is_mangled_title(kept.title) and good_titles else None)


class SiteIndex:
    """All posts' URLs, and the decisions that need them all: duplicates, link targets.

    The entries and the lookup tables live in a SQLite database (``pipeline.ondisk``), not
    in Python objects: a kilobyte a post in dicts and sets, they made a run's peak memory
    grow with the archive. ``database`` is a file the caller owns (worker processes read it
    after ``settle``), or ``""``: SQLite's private temporary database, for one process. What
    only twins and URL clashes make (``canonical``, ``merged_paths``, ``repaired_titles``,
    ``renamed``) and the hosts stay in memory: they grow with the defects, not the size.
    """

    def __init__(self, extra_hosts: tuple[str, ...] = (), database: str = "") -> None:
        self.extra_hosts = extra_hosts
        self.database = database
        self.canonical: dict[str, str] = {}  # source_path -> kept source_path
        self.merged_paths: dict[str, list[str]] = defaultdict(list)
        self.repaired_titles: dict[str, str] = {}
        self.renamed: dict[str, tuple[str, str]] = {}  # source_path -> (slug, url)
        self.linked_paths: dict[str, list[str]] = {}  # url -> paths linked to it (linked_old_urls)
        self.hosts: set[str] = set()
        self.settled = False
        self._pending: list[tuple[Any, ...]] = []
        self._pending_links: list[tuple[int, int, str, str]] = []
        self._entry_hosts: set[str] = set()
        self._pid = os.getpid()
        self.db = ondisk.connect(database)
        self.db.executescript(_SCHEMA)

    def add(self, entry: Entry) -> None:
        if self.settled:
            raise AssertionError("SiteIndex.add after settle")
        self._entry_hosts.update(entry.hosts)
        self._pending.append(_entry_row(entry))
        for target in entry.post_links:
            match = _POST_PATH.fullmatch(urlsplit(target).path)
            if match:
                self._pending_links.append((int(match[1]), int(match[2]), match[4], target))
        if len(self._pending) >= _INSERT_BATCH:
            self._insert()

    def _insert(self) -> None:
        if not self._pending and not self._pending_links:
            return
        # One transaction a batch: in autocommit, every row would be written out on its own.
        with ondisk.transaction(self.db):
            self.db.executemany("INSERT INTO entries VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self._pending)
            self.db.executemany("INSERT OR IGNORE INTO post_links VALUES (?, ?, ?, ?)", self._pending_links)
        self._pending = []
        self._pending_links = []

    def entries(self) -> Iterator[Entry]:
        """The entries as added, in order (``settle`` renames none of them here), streamed."""
        self._insert()
        for row in self._reader().execute(f"SELECT {_ENTRY_COLUMNS} FROM entries ORDER BY seq"):
            yield _entry_of(row)

    def wanted_names(self) -> Iterator[tuple[str, str, str | None]]:
        """Each entry's source path, slug and wanted file name, in order: what claiming the
        file names reads, without the rest of the entry (at 100,000 posts, building whole
        entries took half of the claims' time, on the one core that runs while the index
        settles)."""
        self._insert()
        yield from self._reader().execute("SELECT source_path, slug, file_name FROM entries ORDER BY seq")

    def settle(self) -> None:
        """Decide duplicates and build the link-lookup tables (after the last ``add``)."""
        self._insert()
        self.settled = True
        with ondisk.transaction(self.db):
            self._settle()

    def _settle(self) -> None:
        # Without "www.", as resolve() compares them, once per run rather than per link.
        self.hosts = {h.casefold().removeprefix("www.") for h in (*self._entry_hosts, *self.extra_hosts)}
        groups: dict[str, list[Entry]] = defaultdict(list)
        twins = "SELECT dup_key FROM entries WHERE dup_key IS NOT NULL GROUP BY dup_key HAVING count(*) > 1"
        for row in self.db.execute(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE dup_key IN ({twins}) ORDER BY seq"):
            entry = _entry_of(row)
            groups[cast(str, entry.dup_key)].append(entry)
        for members in groups.values():
            kept, title = choose_kept(members)
            if title is not None:
                self.repaired_titles[kept.source_path] = title
            for member in members:
                if member is not kept:
                    self.canonical[member.source_path] = kept.source_path
                    self.merged_paths[kept.source_path].extend((*member.old_paths, member.url))
        kept_urls = self._make_urls_unique(set(self.canonical.values()))
        rows = self._reader().execute("SELECT source_path, slug, year, month, url, old_paths FROM entries ORDER BY seq")
        while batch := rows.fetchmany(_INSERT_BATCH):
            urls, month_slugs, slug_urls = [], [], []
            for source, slug, year, month, url, old_paths in batch:
                if source in self.canonical:
                    url = kept_urls[self.canonical[source]]
                elif source in self.renamed:
                    slug, url = self.renamed[source]
                urls.append((source, url))
                if year is not None and month is not None:
                    month_slugs.append((year, month, slug, url))
                slug_urls.append((slug, url))
                for old in json.loads(old_paths):
                    match = _POST_PATH.fullmatch(old)
                    if match:
                        month_slugs.append((int(match[1]), int(match[2]), match[4], url))
            # A slug's first URL in input order wins a month (dict.setdefault before these tables).
            self.db.executemany("INSERT INTO urls VALUES (?, ?)", urls)
            self.db.executemany("INSERT OR IGNORE INTO month_slugs VALUES (?, ?, ?, ?)", month_slugs)
            self.db.executemany("INSERT OR IGNORE INTO slug_urls VALUES (?, ?)", slug_urls)
        self._link_old_paths()

    def _link_old_paths(self) -> None:
        """Heuristic ``linked_old_urls``: the paths that posts link to and that only the
        ``redated`` rule resolves, as old paths of the post they resolve to. Only the links
        with no post at their year, month and slug are resolved here (one query finds them),
        by the rules ``rewrite_links`` applies, in the order of their targets."""
        nowhere = (
            "SELECT target FROM post_links AS link WHERE NOT EXISTS (SELECT 1 FROM month_slugs AS known"
            " WHERE known.year = link.year AND known.month = link.month AND known.slug = link.slug) ORDER BY target"
        )
        for (target,) in self.db.execute(nowhere).fetchall():
            link = self.resolve(target)
            if link.rule == "redated" and link.new_target is not None:
                paths = self.linked_paths.setdefault(link.new_target.partition("#")[0], [])
                if (path := urlsplit(target).path) not in paths:
                    paths.append(path)

    def _make_urls_unique(self, kept: set[str]) -> dict[str, str]:
        """Give a later post whose URL an earlier one has (in input order) a suffixed slug;
        return the final URL of each post that twins were merged into."""
        kept_urls: dict[str, str] = {}
        for source, slug, url in self._reader().execute("SELECT source_path, slug, url FROM entries ORDER BY seq"):
            if source in self.canonical:
                continue
            if not self.db.execute("INSERT OR IGNORE INTO taken VALUES (?)", (url,)).rowcount:
                suffix = hashlib.sha256(source.encode()).hexdigest()[:8]
                new_slug = f"{slug}-{suffix}"
                url = url[: -len(slug) - 1] + f"{new_slug}/"
                self.renamed[source] = (new_slug, url)
                self.db.execute("INSERT OR IGNORE INTO taken VALUES (?)", (url,))
            if source in kept:
                kept_urls[source] = url
        return kept_urls

    def fingerprint(self) -> str:
        """A hash of everything ``finish_post`` reads from the settled index.

        Two runs whose fingerprints are equal finish an unchanged post identically, so a
        rerun may keep its previous output. A body or title edit leaves it equal; a changed
        slug, date, old URL, twin or link host changes it.

        >>> index = SiteIndex()
        >>> index.add(Entry("a.md", 0, "velo", 2014, 7, "/2014/07/05/velo/", (), "k1", "V", ()))
        >>> index.settle()
        >>> body_edit = SiteIndex()
        >>> body_edit.add(Entry("a.md", 0, "velo", 2014, 7, "/2014/07/05/velo/", (), "k2", "V", ()))
        >>> body_edit.settle()
        >>> index.fingerprint() == body_edit.fingerprint()
        True
        """
        # Dicts print in insertion order, which follows the entries' order: equal entries,
        # equal text. Sets print in an order that changes from process to process: sorted.
        digest = hashlib.sha256(repr((self.canonical, self.merged_paths, self.repaired_titles, self.renamed, self.linked_paths, sorted(self.hosts))).encode())
        for table, order in (("urls", "rowid"), ("month_slugs", "year, month, slug"), ("slug_urls", "slug, url")):
            digest.update(table.encode())
            for row in self._reader().execute(f"SELECT * FROM {table} ORDER BY {order}"):
                digest.update(repr(row).encode())
        return digest.hexdigest()

    def aliases_of(self, entry_paths: Iterable[str], source_path: str) -> list[str]:
        """Old paths of a post, of the twins merged into it and that links gave it
        (``linked_old_urls``), without its own URL."""
        own = self._reader().execute("SELECT url FROM urls WHERE source_path = ?", (source_path,)).fetchone()[0]
        return sorted({*entry_paths, *self.merged_paths.get(source_path, ()), *self.linked_paths.get(own, ())} - {own})

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
        db = self._reader()
        in_month = "SELECT url FROM month_slugs WHERE year = ? AND month = ? AND slug = ?"
        row = db.execute(in_month, (year, month, slug)).fetchone()
        if row is not None:
            return row[0], "exact"
        stripped = slug.rstrip("-")
        if stripped != slug:
            row = db.execute(in_month, (year, month, stripped)).fetchone()
            if row is not None:
                return row[0], "trailing_hyphen"
        if len(stripped) >= _MIN_TRUNCATED:
            # Slugs of the month that start with it (none equals it: that was looked up above).
            prefix = "SELECT DISTINCT url FROM month_slugs WHERE year = ? AND month = ? AND slug > ? AND substr(slug, 1, ?) = ? LIMIT 2"
            longer = db.execute(prefix, (year, month, stripped, len(stripped), stripped)).fetchall()
            if len(longer) == 1:
                return longer[0][0], "truncated_slug"
        anywhere = "SELECT url FROM slug_urls WHERE slug = ? LIMIT 2"
        found = db.execute(anywhere, (slug,)).fetchall() or db.execute(anywhere, (stripped,)).fetchall()
        if len(found) == 1:
            return found[0][0], "redated"
        return None

    def close(self) -> None:
        """Close this process's connection (the database file, if named, stays the caller's)."""
        self.db.close()

    def _reader(self) -> sqlite3.Connection:
        """This process's connection: a forked worker opens the database anew, read-only."""
        if self._pid != os.getpid():
            if not self.database:
                raise AssertionError("a SiteIndex in a private temporary database cannot be shared with another process")
            self.db = ondisk.open_reader(self.database)
            self._pid = os.getpid()
        return self.db

    def entry(self, source_path: str) -> Entry | None:
        """The entry a post was added with (the first, should a path come twice)."""
        query = f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE source_path = ? ORDER BY seq LIMIT 1"
        row = self._reader().execute(query, (source_path,)).fetchone()
        return None if row is None else _entry_of(row)

    def shares_dup_key(self, dup_key: str, source_path: str) -> bool:
        """Whether another post's entry has this twin key."""
        query = "SELECT 1 FROM entries WHERE dup_key = ? AND source_path != ? LIMIT 1"
        return self._reader().execute(query, (dup_key, source_path)).fetchone() is not None

    def kept_state(self) -> dict[str, Any]:
        """What a settled index holds outside its database, for ``reopen`` in a later run."""
        if not self.settled:
            raise AssertionError("SiteIndex.kept_state before settle")
        return {k: v for k, v in self.__dict__.items() if k in _KEPT_STATE}

    @classmethod
    def reopen(cls, database: str, state: dict[str, Any]) -> SiteIndex:
        """A settled index from its database file, read-only, and its ``kept_state``."""
        index = cls.__new__(cls)
        index.__dict__.update({k: state[k] for k in _KEPT_STATE})
        index.database = database
        index.settled = True
        index._pending = []
        index._pending_links = []
        index._entry_hosts = set()
        index._pid = os.getpid()
        index.db = ondisk.open_reader(database)
        return index

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with its database's bytes (the Dask engine ships the settled index)."""
        self._insert()
        state = {k: v for k, v in self.__dict__.items() if k not in ("db", "_pid")}
        state["image"] = self._reader().serialize()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        image = state.pop("image")
        self.__dict__.update(state)
        self.database = ""
        self._pid = os.getpid()
        self.db = ondisk.connect()
        self.db.deserialize(image)


_KEPT_STATE: Final = ("extra_hosts", "canonical", "merged_paths", "repaired_titles", "renamed", "linked_paths", "hosts")
_SCHEMA: Final = """
CREATE TABLE entries (
    seq INTEGER PRIMARY KEY, source_path TEXT, ord INTEGER, slug TEXT, year INTEGER, month INTEGER,
    url TEXT, old_paths TEXT, dup_key TEXT, title TEXT, hosts TEXT, file_name TEXT, post_links TEXT);
CREATE TABLE post_links (year INTEGER, month INTEGER, slug TEXT, target TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE taken (url TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE urls (source_path TEXT PRIMARY KEY, url TEXT);
CREATE TABLE month_slugs (year INTEGER, month INTEGER, slug TEXT, url TEXT, PRIMARY KEY (year, month, slug)) WITHOUT ROWID;
CREATE TABLE slug_urls (slug TEXT, url TEXT, PRIMARY KEY (slug, url)) WITHOUT ROWID;
"""
_ENTRY_COLUMNS: Final = "source_path, ord, slug, year, month, url, old_paths, dup_key, title, hosts, file_name, post_links"
_INSERT_BATCH: Final = 1000


def _entry_row(entry: Entry) -> tuple[Any, ...]:
    # Tuples of strings as JSON arrays: exact for any string, and read back as tuples.
    return (
        entry.source_path, entry.order, entry.slug, entry.year, entry.month, entry.url,
        json.dumps(entry.old_paths), entry.dup_key, entry.title, json.dumps(entry.hosts), entry.file_name,
        json.dumps(entry.post_links),
    )  # fmt: skip


def _entry_of(row: tuple[Any, ...]) -> Entry:
    source_path, order, slug, year, month, url, old_paths, dup_key, title, hosts, file_name, post_links = row
    return Entry(
        source_path, order, slug, year, month, url, tuple(json.loads(old_paths)), dup_key, title, tuple(json.loads(hosts)), file_name,
        tuple(json.loads(post_links)),
    )  # fmt: skip


def post_link_targets(body: str) -> tuple[str, ...]:
    """The targets of a body's Markdown links that have a post's path (``/YYYY/MM/…``),
    relative or absolute, in order: what ``linked_old_urls`` looks at once the index has
    settled. Any host: which hosts are the blog's is known only then.

    >>> post_link_targets("[a](/2014/12/velo.html) [b](https://x.org/2014/12/05/velo/#s) [c](/assets/a.png)")
    ('/2014/12/velo.html', 'https://x.org/2014/12/05/velo/#s')
    """
    if "](" not in body:
        return ()
    return tuple(target for target in (match.group(1) for match in _MARKDOWN_LINK.finditer(body)) if _POST_LINK_TARGET.match(target))


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
