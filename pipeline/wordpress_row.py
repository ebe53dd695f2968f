"""The trailing WordPress export row: find it, cut it out of the body, read its fields.

The spreadsheet that carried the export glued a row's cells together with no delimiter:
``"`` post_date · URL · [categories]tags · status · author_id · author · slug · post_modified
· [spill]. Fixed-width dates and the URL bound the row; everything between them is read
from constraints the data itself gives, never from a table of known values:

- the slug ends right before ``post_modified`` and equals the URL's slug (heuristic
  ``slug_anchor``: URL slug, URL slug plus a rewrite residue, then the file name's slug);
- the status is the last WordPress status followed by digits (the author id) before the
  slug, so tags such as ``publish`` inside the terms do not confuse it;
- an email address splits the author field, and the email's local part says where login
  ends and where first and last names split (heuristic ``email_names``); a change of
  letter case alone is never used to split.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import unquote, urlsplit

from pipeline.frozen import evolve
from pipeline.problems import Problem, problem

STATUSES: Final = ("publish", "draft", "pending", "private", "future", "inherit", "trash")
_DATE: Final = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
_ROW: Final = re.compile(
    rf'(?P<quote>"?)(?P<date>{_DATE})'
    r"(?P<url>"
    r"(?P<abs_base>https?://[^\s\"/]+(?:/[^\s\"/]+)*?)?/(?P<y1>\d{4})/(?P<m1>\d\d)/(?P<slug1>[^\s\"/]+?)\.html"
    r"|(?P<rel_base>https?://[^\s\"/]+(?:/[^\s\"/]+)*?)?/(?P<y2>\d{4})/(?P<m2>\d\d)/(?P<d2>\d\d)/(?P<slug2>[^\s\"/]+)/"
    r"(?P<residue>-[\w-]*\.html(?:\?[^\s\"|]*)?)?"
    r")"
)
# The ':' before the seconds of the row's date, with the URL glued after them (see _last_row).
_ROW_HINT: Final = re.compile(r":\d\d(?:https?://|/\d{4}/)")
_SECONDS_OFFSET: Final = len("2010-01-04 15:25")
_DATE_TO_MINUTES: Final = re.compile(_DATE[: -len(r":\d\d")])
_MODIFIED: Final = re.compile(_DATE)
_STATUS: Final = re.compile(rf"({'|'.join(STATUSES)})(\d+)")
# A last line made only of a post URL and that URL's slug again: the row's remains.
_URL_SLUG_LINE: Final = re.compile(r'"?(?P<url>https?://\S+?/\d{4}/\d\d/(?P<slug>[^\s/"]+)\.html)(?P=slug)"?\s*')
_SEPARATOR: Final = re.compile(r"[._]")
_DOMAIN: Final = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")


@dataclass(frozen=True)
class Author:
    """The author cells of a row. ``raw`` is the field as found."""

    raw: str
    login: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None


@dataclass(frozen=True)
class WordPressRow:
    """A parsed export row. Fields that could not be read are None."""

    parse: str
    raw: str
    post_date: str | None = None
    url: str | None = None
    path: str | None = None
    terms: str | None = None
    status: str | None = None
    author_id: int | None = None
    author: Author | None = None
    slug: str | None = None
    modified: str | None = None
    spill: str | None = None
    excerpt: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowSplit:
    """The body without the row, and the row found in it (None when there is none)."""

    body: str
    row: WordPressRow | None
    problems: tuple[Problem, ...] = field(default=())


def split_wordpress_row(body: str, file_slug: str | None = None) -> RowSplit:
    """Cut the trailing export row (and the spill after it) out of ``body`` and parse it.

    Layouts, recorded in ``WordPressRow.parse``: ``quoted_line_start`` (the row opens a line
    with ``"``), ``quoted_after_text`` (glued after body text by its ``"``),
    ``unquoted_after_text`` (no quote: the text before it is the excerpt cell, kept in
    ``excerpt``), ``unquoted_line_start``, and ``url_slug_only`` (only URL and slug left).
    ``+slug_unanchored`` is appended when the slug could not be anchored on the URL.

    >>> s = split_wordpress_row('Text.\\n"2010-01-04 15:25:19/2010/01/04/a-b/Energie|TICpublish18gabriel plassata-b2010-01-05 10:00:00')
    >>> s.body, s.row.slug, s.row.author.login, s.row.status, s.row.parse
    ('Text.', 'a-b', 'gabriel plassat', 'publish', 'quoted_line_start')
    """
    match = _last_row(body)
    if match is None:
        return _split_url_slug_line(body)
    line_start = body.rfind("\n", 0, match.start()) + 1
    before = body[line_start : match.start()]
    remainder = body[match.end() :]
    quoted = bool(match.group("quote"))
    if quoted:
        layout = "quoted_after_text" if before else "quoted_line_start"
        kept_body, excerpt = body[: match.start()], None
    else:
        layout = "unquoted_after_text" if before.strip() else "unquoted_line_start"
        kept_body, excerpt = body[:line_start], (before or None)
    row = _parse_fields(match, remainder, layout, file_slug)
    if excerpt is not None:
        row = evolve(row, excerpt=excerpt)
    problems = [problem("wp_row_found", f"export row found ({row.parse})", body.count("\n", 0, match.start()) + 1)]
    if row.spill:
        problems.append(problem("wp_row_spill", f"{len(row.spill)} characters after the row kept in wp_spill"))
    if excerpt:
        problems.append(problem("wp_row_excerpt"))
    if "+" in row.parse or row.modified is None:
        problems.append(
            problem(
                "wp_row_partial",
                f"export row only partly read ({row.parse}); its raw text is kept in wp_row_raw",
                body.count("\n", 0, match.start()) + 1,
            )
        )
    return RowSplit(kept_body.rstrip(), row, tuple(problems))


def _last(matches: Iterator[re.Match[str]]) -> re.Match[str] | None:
    found = None
    for found in matches:  # noqa: B007 - the last match is the one wanted
        pass
    return found


def _last_row(body: str) -> re.Match[str] | None:
    """The last match of ``_ROW`` in ``body``, found from the end.

    ``_ROW`` opens with an optional quote, so the regex engine tries it at every position of
    the body (a quarter of the pipeline's regex time). The seconds of the row's date glued
    to its URL (``:SS`` then ``http`` or ``/YYYY/``) is a cheap literal-led hint; ``_ROW`` is
    tried only there, from the last hint back. No row can start inside another (a URL holds
    no space, a date does), so this is the match ``finditer`` would give last.
    """
    for hint in reversed([m.start() for m in _ROW_HINT.finditer(body)]):
        start = hint - _SECONDS_OFFSET
        if start < 0:
            continue
        if start and body[start - 1] == '"':
            start -= 1
        match = _ROW.match(body, start)
        if match:
            return match
    return None


def has_glued_date(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` holds a row's date glued to a URL, the mark of a row.

    Searched from the ``:`` before the seconds (``_ROW_HINT``), a literal the regex engine
    scans for fast; a pattern that starts with the date's ``\\d`` is tried at every
    character (30x slower on the archive's conflict blocks).

    >>> has_glued_date("x 2010-01-04 15:25:00/2010/01/a.html", 0, 99), has_glued_date("2010-01-04 15:25:00 /2010/", 0, 99)
    (True, False)
    """
    for hint in _ROW_HINT.finditer(text, start, end):
        date_start = hint.start() - _SECONDS_OFFSET
        if date_start >= start and _DATE_TO_MINUTES.match(text, date_start, hint.start()):
            return True
    return False


def _split_url_slug_line(body: str) -> RowSplit:
    stripped = body.rstrip()
    line_start = stripped.rfind("\n") + 1
    match = _URL_SLUG_LINE.fullmatch(stripped[line_start:])
    if not match:
        return RowSplit(body, None)
    url = match.group("url")
    row = WordPressRow(
        parse="url_slug_only",
        raw=stripped[line_start:],
        url=url,
        path=urlsplit(url).path,
        slug=match.group("slug"),
    )
    line = stripped.count("\n") + 1
    return RowSplit(
        stripped[:line_start].rstrip(),
        row,
        (
            problem("wp_row_found", "export row remains found (url_slug_only)", line),
            problem("wp_row_partial", "only the URL and slug of the export row are left; no date, status or author", line),
        ),
    )


def _parse_fields(match: re.Match[str], remainder: str, layout: str, file_slug: str | None) -> WordPressRow:
    url = match.group("url")
    url_slug = match.group("slug1") or match.group("slug2")
    residue = match.group("residue") or ""
    line_end = remainder.find("\n")
    rest = remainder if line_end == -1 else remainder[:line_end]
    modified_match = _MODIFIED.search(rest)
    if modified_match is None:
        head, modified, spill_at = rest, None, len(rest)
    else:
        head, modified, spill_at = rest[: modified_match.start()], modified_match.group(0), modified_match.end()
    # Everything after the row, verbatim, so that nothing of the file is lost.
    spill = remainder[spill_at:] if remainder[spill_at:].strip() else None
    raw = match.group(0) + rest[:spill_at]
    slug, head_without_slug = _anchor_slug(head, url_slug, residue, file_slug)
    parse = layout if slug is not None else f"{layout}+slug_unanchored"
    status_match = _last(_STATUS.finditer(head_without_slug))
    path = urlsplit(url).path if url.startswith("http") else url.split("?")[0]
    if status_match is None:
        return WordPressRow(
            parse=f"{layout}+no_status",
            raw=raw,
            post_date=match.group("date"),
            url=url,
            path=path,
            terms=head or None,
            modified=modified,
            spill=spill,
        )
    author_blob = head_without_slug[status_match.end() :]
    return WordPressRow(
        parse=parse,
        raw=raw,
        post_date=match.group("date"),
        url=url,
        path=path,
        terms=head_without_slug[: status_match.start()],
        status=status_match.group(1),
        author_id=int(status_match.group(2)),
        author=split_author(author_blob) if slug is not None else Author(raw=author_blob),
        slug=slug,
        modified=modified,
        spill=spill,
    )


def _anchor_slug(head: str, url_slug: str, residue: str, file_slug: str | None) -> tuple[str | None, str]:
    residue_slug = residue.split(".html")[0]
    candidates = [url_slug + residue_slug, url_slug, unquote(url_slug)]
    if file_slug:
        candidates.append(file_slug)
    for candidate in candidates:
        if candidate and head.endswith(candidate):
            return candidate, head[: -len(candidate)]
    return None, head


def split_author(blob: str) -> Author:
    """Split an author field into login, email, first and last name.

    Without an ``@`` the field is one value (a login that also serves as display name).
    With one, the email's local part must match the names glued after the domain,
    ignoring case and separators; the local part's first ``.`` or ``_`` splits first from
    last name. The email spelling the names fixes every split; among several that fit, the
    ranking is: a local part with a separator, an all-lowercase domain, names starting with a
    capital, then the longest names (``tom`` + ``jean.dupont@gmail.com``, not ``to`` +
    ``mjean.dupont@gmail.co``). Case only ranks splits the email allows; it never makes one.
    When none fits, only ``raw`` is set.

    >>> a = split_author("jpd12jean-pierre.dupont@example.orgJean-PierreDupont")
    >>> a.login, a.email, a.first_name, a.last_name
    ('jpd12', 'jean-pierre.dupont@example.org', 'Jean-Pierre', 'Dupont')
    """
    if "@" not in blob:
        name = blob.strip() or None
        return Author(raw=blob, login=name, display_name=name)
    at = blob.index("@")
    local_side, domain_side = blob[:at], blob[at + 1 :]
    candidates = []
    for names_length in range(len(domain_side) - 1, 0, -1):
        domain, names = domain_side[:-names_length], domain_side[-names_length:]
        if not _DOMAIN.fullmatch(domain) or not names[0].isalpha():
            continue
        local = _matching_local_part(local_side, names)
        # A local part without a separator could be any tail of the login: accept it only
        # when it is the whole local side (``jdupont@`` cannot tell where Jean ends).
        if local is None or not (_SEPARATOR.search(local) or local == local_side):
            continue
        rank = (bool(_SEPARATOR.search(local)), domain == domain.lower(), names[0].isupper(), len(names))
        candidates.append((rank, local, domain, names))
    if not candidates:
        return Author(raw=blob)
    _, local, domain, names = max(candidates)
    first, last = _split_names(local, names)
    return Author(
        raw=blob,
        login=local_side[: -len(local)] or None,
        email=f"{local}@{domain}",
        first_name=first,
        last_name=last,
        display_name=" ".join(x for x in (first, last) if x) or None,
    )


def _squash(text: str) -> str:
    return _SQUASHED.sub("", text).casefold()


_SQUASHED: Final = re.compile(r"[\s._]")


def _matching_local_part(local_side: str, names: str) -> str | None:
    """The shortest suffix of ``local_side`` that spells ``names`` (case and separators aside)."""
    target = _squash(names)
    for start in range(len(local_side) - 1, -1, -1):
        local = local_side[start:]
        squashed = _squash(local)
        if squashed == target and local[0].isalnum():
            return local
        if len(squashed) > len(target):
            return None
    return None


def _split_names(local: str, names: str) -> tuple[str | None, str | None]:
    separator = _SEPARATOR.search(local)
    if separator is None:
        return names, None
    first_len = len(_squash(local[: separator.start()]))
    taken = 0
    for index, char in enumerate(names):
        if taken == first_len:
            return names[:index].strip(), names[index:].strip()
        if not char.isspace():
            taken += 1
    return names, None


def split_terms(terms: str, front_matter_tags: list[str]) -> tuple[list[str], list[str], bool]:
    """Split the term cell into (categories, tags, tags_agree) using the front-matter tags.

    The cell is the tags joined by ``|``, with WordPress category names glued in front.
    When the front-matter tags close the cell, what precedes them is the category part.
    When they do not (or there are none), the cell's items are the tags and no category
    can be told apart.

    >>> split_terms("MétaNotesdonnées|vélo", ["données", "vélo"])
    (['MétaNotes'], ['données', 'vélo'], True)
    """
    items = [x for x in terms.split("|") if x]
    if not front_matter_tags:
        return [], items, not items
    joined = "|".join(front_matter_tags)
    if terms == joined:
        return [], list(front_matter_tags), True
    if terms.endswith(joined):
        prefix = terms[: -len(joined)]
        return [x for x in prefix.split("|") if x], list(front_matter_tags), True
    return [], items, False
