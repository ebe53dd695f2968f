"""The site index: links are found and rewritten; the index on disk decides as the
dict-based index it replaced did."""

from __future__ import annotations

import hashlib
import multiprocessing
import pickle
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.site import _POST_PATH, Entry, SiteIndex, choose_kept, rewrite_links


def test_links_are_rewritten_also_when_their_text_ends_with_a_bang() -> None:
    """``[Innovons… vite !](…)``: a look back once refused ``!]`` (found by an audit of the archive)."""
    index = SiteIndex()
    index.add(Entry("a.md", 0, "velo", 2014, 7, "/2014/07/05/velo/", ("/2014/07/velo.html",), None, "V", ("blog.org",)))
    index.settle()
    body, links = rewrite_links("[v](/2014/07/velo.html) ]( /2014/07/velo.html ) [vite !](/2014/07/velo.html) ![](/2014/07/velo.html)", index)
    assert body == "[v](/2014/07/05/velo/) ]( /2014/07/05/velo/ ) [vite !](/2014/07/05/velo/) ![](/2014/07/05/velo/)"
    assert [link.status for link in links] == ["resolved"] * 4


# -- the index on disk against the dict-based index it replaced ----------------------------


class _DictIndex:
    """The site index as it was before it moved to SQLite (dicts and sets in memory): the
    model the on-disk one must agree with on every decision."""

    def __init__(self, entries: list[Entry]) -> None:
        self.canonical: dict[str, str] = {}
        self.merged_paths: dict[str, list[str]] = defaultdict(list)
        self.repaired_titles: dict[str, str] = {}
        self.renamed: dict[str, tuple[str, str]] = {}
        self.by_month: dict[tuple[int, int], dict[str, str]] = defaultdict(dict)
        self.by_slug: dict[str, set[str]] = defaultdict(set)
        self.urls: dict[str, str] = {}
        groups: dict[str, list[Entry]] = defaultdict(list)
        for entry in entries:
            if entry.dup_key is not None:
                groups[entry.dup_key].append(entry)
        for members in groups.values():
            if len(members) < 2:
                continue
            kept, title = choose_kept(members)  # the same rule in both: what moved is the rest
            if title is not None:
                self.repaired_titles[kept.source_path] = title
            self.canonical.update((m.source_path, kept.source_path) for m in members if m is not kept)
            self.merged_paths[kept.source_path].extend(path for m in members if m is not kept for path in (*m.old_paths, m.url))
        entries = list(entries)
        taken: set[str] = set()
        for position, entry in enumerate(entries):
            if entry.source_path in self.canonical:
                continue
            if entry.url in taken:
                slug = f"{entry.slug}-{hashlib.sha256(entry.source_path.encode()).hexdigest()[:8]}"
                url = entry.url[: -len(entry.slug) - 1] + f"{slug}/"
                self.renamed[entry.source_path] = (slug, url)
                entry = replace(entry, slug=slug, url=url)
                entries[position] = entry
            taken.add(entry.url)
        by_path = {e.source_path: e for e in entries}
        for entry in entries:
            target = by_path[self.canonical.get(entry.source_path, entry.source_path)].url
            self.urls[entry.source_path] = target
            if entry.year is not None and entry.month is not None:
                self.by_month[(entry.year, entry.month)].setdefault(entry.slug, target)
            self.by_slug[entry.slug].add(target)
            for old in entry.old_paths:
                match = _POST_PATH.fullmatch(old)
                if match:
                    self.by_month[(int(match[1]), int(match[2]))].setdefault(match[4], target)
        # linked_old_urls: each distinct linked path of the blog that only ``redated`` resolves.
        self.linked_paths: dict[str, list[str]] = {}
        for target in sorted({t for entry in entries for t in entry.post_links}):
            parts = urlsplit(target)
            match = _POST_PATH.fullmatch(parts.path)
            if match is None or parts.netloc not in ("", "blog.org"):
                continue
            found = self.find(int(match[1]), int(match[2]), match[4])
            if found is not None and found[1] == "redated" and parts.path not in self.linked_paths.get(found[0], []):
                self.linked_paths.setdefault(found[0], []).append(parts.path)

    def find(self, year: int, month: int, slug: str) -> tuple[str, str] | None:
        month_slugs = self.by_month.get((year, month), {})
        if slug in month_slugs:
            return month_slugs[slug], "exact"
        stripped = slug.rstrip("-")
        if stripped != slug and stripped in month_slugs:
            return month_slugs[stripped], "trailing_hyphen"
        if len(stripped) >= 8:
            longer = {url for s, url in month_slugs.items() if s.startswith(stripped)}
            if len(longer) == 1:
                return longer.pop(), "truncated_slug"
        anywhere = self.by_slug.get(slug) or self.by_slug.get(stripped) or set()
        if len(anywhere) == 1:
            return next(iter(anywhere)), "redated"
        return None


# Few distinct values, so that twins, URL clashes, truncated and re-dated slugs come up often.
_SLUGS = st.sampled_from(["velo", "velo-", "velo-electrique", "velo-electrique-urbain", "velo-electriq", "bus", "bus-2", "é-tram", "tram-😀"])
_MONTHS = st.sampled_from([(2014, 7), (2014, 8), (2015, 7)])


@st.composite
def _entries(draw: st.DrawFn) -> list[Entry]:
    count = draw(st.integers(1, 12))
    entries = []
    for order in range(count):
        slug = draw(_SLUGS)
        year, month = draw(_MONTHS)
        day = draw(st.sampled_from([1, 5]))
        dated = draw(st.booleans()) or order % 3 != 0
        url = f"/{year}/{month:02d}/{day:02d}/{slug}/" if dated else f"/{slug}/"
        old_paths = tuple(draw(st.lists(st.builds(lambda ym, s: f"/{ym[0]}/{ym[1]:02d}/{s}.html", _MONTHS, _SLUGS), max_size=2)))
        dup_key = draw(st.sampled_from([None, "k1", "k2"]))
        hosts = st.sampled_from(["", "https://blog.org", "http://other.org"])
        links = st.builds(lambda host, ym, s, end: f"{host}/{ym[0]}/{ym[1]:02d}/{s}{end}", hosts, _MONTHS, _SLUGS, st.sampled_from([".html", "/", ".html#x"]))
        post_links = tuple(draw(st.lists(links, max_size=3)))
        title = draw(st.sampled_from(["Vélo", 'Vélo""', 'Label "x" aux USA']))
        entry = Entry(f"{order:02d}-{slug}.md", order, slug, year, month, url, old_paths, dup_key, title, ("blog.org",), f"{slug}.md", post_links)
        entries.append(entry if dated else replace(entry, year=None, month=None))
    return entries


@settings(max_examples=300, deadline=None)
@given(_entries(), st.lists(st.tuples(_MONTHS, _SLUGS), max_size=6))
def test_the_index_on_disk_decides_as_the_dict_index_did(entries: list[Entry], targets: list[tuple[tuple[int, int], str]]) -> None:
    index = SiteIndex()
    for entry in entries:
        index.add(entry)
    index.settle()
    model = _DictIndex(entries)
    assert (index.canonical, index.merged_paths, index.repaired_titles, index.renamed, index.linked_paths) == (
        model.canonical,
        model.merged_paths,
        model.repaired_titles,
        model.renamed,
        model.linked_paths,
    )
    assert list(index.entries()) == entries
    for entry in entries:
        own = model.urls[entry.source_path]
        expected = sorted({"/x/", *model.merged_paths.get(entry.source_path, ()), *model.linked_paths.get(own, ())} - {own})
        assert index.aliases_of((own, "/x/"), entry.source_path) == expected
    for (year, month), slug in targets:
        assert index._find(year, month, slug) == model.find(year, month, slug)
        assert index._find(year, month, slug + "-electrique-urbain"[:3]) == model.find(year, month, slug + "-electrique-urbain"[:3])


def test_a_pickled_index_and_a_forked_reader_find_what_the_index_finds(tmp_path: Path) -> None:
    database = str(tmp_path / "index.sqlite")
    index = SiteIndex(extra_hosts=("blog.org",), database=database)
    index.add(Entry("a.md", 0, "velo", 2014, 7, "/2014/07/05/velo/", ("/2014/07/velo.html",), None, "V", ()))
    index.settle()
    link = "https://blog.org/2014/07/velo.html"
    expected = index.resolve(link)
    assert expected.new_target == "/2014/07/05/velo/"
    copy = pickle.loads(pickle.dumps(index))
    assert copy.resolve(link) == expected and copy.fingerprint() == index.fingerprint()
    # A forked worker opens the named database again, read-only (the parent's connection is
    # not used across the fork).
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(index.resolve, (link,)) == expected


def test_a_reopened_index_reads_its_entries_and_decides_as_before(tmp_path: Path) -> None:
    """What a patch in place reopens: a reopened index had no pending links (found in review)."""
    database = str(tmp_path / "index.sqlite")
    index = SiteIndex(extra_hosts=("blog.org",), database=database)
    entries = [
        Entry("a.md", 0, "velo", 2015, 7, "/2015/07/21/velo/", ("/2015/07/velo.html",), None, "V", (), "a.md"),
        Entry("b.md", 1, "bus", 2014, 3, "/2014/03/01/bus/", (), None, "B", (), "b.md", ("https://blog.org/2014/12/velo.html#x",)),
    ]
    for entry in entries:
        index.add(entry)
    index.settle()
    state, fingerprint = index.kept_state(), index.fingerprint()
    index.close()
    reopened = SiteIndex.reopen(database, state)
    assert list(reopened.entries()) == entries
    assert reopened.fingerprint() == fingerprint
    assert reopened.aliases_of(("/2015/07/velo.html",), "a.md") == ["/2014/12/velo.html", "/2015/07/velo.html"]
