"""Problem codes: the one list of everything the pipeline can find wrong with a post.

Each code has a severity and a one-line meaning. The README's table is tested against
this module, so a code cannot be added without being documented.

Severities:
- ``info``: something was repaired; the output is right.
- ``warning``: the output is usable but a person should look.
- ``error``: the post is cleaned but something is missing or could not be decided;
  ``--strict`` makes the run exit 1.
- ``fatal``: the post cannot be cleaned; it goes to quarantine with this code as reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Severity = Literal["info", "warning", "error", "fatal"]
SEVERITIES: Final[tuple[Severity, ...]] = ("info", "warning", "error", "fatal")


@dataclass(frozen=True)
class Code:
    severity: Severity
    meaning: str


CODES: Final[dict[str, Code]] = {
    # discovery and reading
    "empty_file": Code("fatal", "The file is empty: there is nothing to clean."),
    "binary_file": Code("fatal", "The file holds NUL bytes: it is not a text post."),
    "too_large": Code("fatal", "The file is larger than resolve.max_bytes."),
    "line_too_long": Code("fatal", "A line is longer than resolve.max_line_chars."),
    "symlink_outside": Code("fatal", "A symbolic link points outside the raw folder; it is not followed."),
    "internal_error": Code("fatal", "A stage raised an unexpected error on this file; it was quarantined and the run went on (a bug: report it)."),
    "unreadable": Code("fatal", "The file could not be read (permissions or I/O error)."),
    "file_name_not_utf8": Code("fatal", "The file name is not valid UTF-8; source_path spells its other bytes as hex escapes. Rename the file in UTF-8."),
    "invalid_utf8": Code("warning", "The file is not valid UTF-8; it was decoded as Windows-1252 instead."),
    "bom_removed": Code("info", "A UTF-8 byte-order mark at the start of the file was removed."),
    "crlf_normalised": Code("info", "CRLF or CR line endings were turned into LF."),
    # resolve
    "conflict_resolved": Code("info", "Conflict blocks were removed, keeping the configured side."),
    "conflict_sides_differ": Code("warning", "A conflict block's two sides still differ after normalisation: see conflicts.parquet."),
    "conflict_unterminated": Code("fatal", "A conflict block opened with <<<<<<< never closes."),
    "conflict_nested": Code("fatal", "A conflict block opens inside another one."),
    "conflict_stray_marker": Code("fatal", "A ||||||| or >>>>>>> marker line stands outside any conflict block."),
    "conflict_marker_midline": Code("error", "A conflict marker stands in the middle of a line; it was left as text."),
    # decode
    "no_front_matter": Code("warning", "The file has no front matter; title, date and slug were derived."),
    "front_matter_invalid": Code("fatal", "The front matter is not valid YAML."),
    "front_matter_not_mapping": Code("fatal", "The front matter is YAML but not a mapping of keys to values."),
    "front_matter_unsafe_tag": Code("fatal", "The front matter uses a YAML tag that safe loading refuses (e.g. !!python/object)."),
    "front_matter_alias": Code("fatal", "The front matter uses YAML anchors or aliases, refused to stop alias bombs."),
    "front_matter_duplicate_key": Code("error", "A front-matter key appears twice; the last value was kept."),
    "front_matter_unterminated": Code("error", "The front matter opens with --- but never closes; the file was read as body only."),
    "escapes_decoded": Code("info", "Escaped unicode (\\uXXXX, surrogate pairs, double escapes) was decoded."),
    "mojibake_fixed": Code("info", "Mojibake (UTF-8 read as another encoding) was repaired."),
    "excel_debris_removed": Code("info", "Excel _x000D_ debris was removed."),
    "tags_not_list": Code("warning", "tags was not a list; it was turned into one."),
    "title_missing": Code("error", "No title in the front matter; one was derived from the body."),
    "date_missing": Code("error", "No date could be found for the post."),
    "date_invalid": Code("error", "The date could not be read; it was left out."),
    "date_offset_corrected": Code("info", "The date's written UTC offset was wrong for its time zone; the offset was corrected."),
    # extract
    "wp_row_found": Code("info", "A WordPress export row was cut from the body and parsed."),
    "wp_row_partial": Code("warning", "A WordPress export row was found but only partly read; see wp_row_raw."),
    "wp_row_spill": Code("info", "Text after the export row (CSV spill) was cut out and kept in wp_spill."),
    "wp_row_excerpt": Code("info", "An excerpt glued before the export row was cut out and kept in wp_excerpt."),
    "wp_date_mismatch": Code("warning", "The export row's post date differs from the front-matter date."),
    "wp_slug_mismatch": Code("warning", "The export row's slug differs from the file name's slug."),
    "wp_tags_mismatch": Code("warning", "The export row's terms do not end with the front-matter tags."),
    "tags_recovered_from_row": Code("warning", "The front matter had no tags; they were recovered from the export row's terms."),
    "categories_split_from_tags": Code("info", "A category name learned from other rows was glued in front of a recovered tag; it was split off."),
    "wp_author_unsplit": Code("warning", "The export row's author field could not be split into login, email and names."),
    # export
    "title_mangled": Code("warning", "The title carries the CSV export's quote damage and no twin could repair it; check it."),
    "title_repaired": Code("info", "A CSV-mangled title was repaired from its duplicate twin."),
    "duplicate_merged": Code("info", "Same date, title and body as another post: not written, its URLs redirect to that post."),
    "empty_post": Code("warning", "Empty post without tags or export row (a media-attachment pseudo-post): drafted or omitted per export.empty_posts."),
    "link_broken": Code("warning", "A link of the body points at a page of this site that does not exist; see links.parquet."),
    "redirect_conflict": Code("warning", "An old URL already redirects to another post; the first post in input order keeps it."),
    "slug_collision": Code("error", "Two posts have the same output file name; a suffix was added."),
    "slug_sanitised": Code("warning", "The slug had characters unsafe in a file name or URL; they were replaced."),
}


@dataclass(frozen=True)
class Problem:
    """One thing found wrong with a post: a code from CODES, where, and what to do."""

    code: str
    message: str
    line: int | None = None

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise KeyError(f"unknown problem code {self.code!r}: add it to pipeline/problems.py")

    @property
    def severity(self) -> Severity:
        return CODES[self.code].severity


def problem(code: str, message: str = "", line: int | None = None) -> Problem:
    """Build a Problem, defaulting the message to the code's meaning.

    >>> problem("bom_removed").message
    'A UTF-8 byte-order mark at the start of the file was removed.'
    """
    return Problem(code, message or CODES[code].meaning, line)


def worst_severity(problems: tuple[Problem, ...]) -> Severity | None:
    """The most serious severity among ``problems`` (None when there are none).

    >>> worst_severity((problem("bom_removed"), problem("date_missing")))
    'error'
    """
    if not problems:
        return None
    return max((p.severity for p in problems), key=SEVERITIES.index)
