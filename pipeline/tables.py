"""The Parquet side of the filesystem edge: the tables' schemas, building rows into Arrow
tables, writing them in row groups, reading them back and checking them, and merging a
previous run's tables with fresh rows.

Split from ``pipeline.io`` because of what it imports: pyarrow takes 0.05 s of a run's
start-up (0.09 s with numpy, which the ``pipeline`` command leaves out: ``ARROW_WITHOUT``),
and the first pass never uses it. ``pipeline.io`` imports this module where
a table is first needed, not at its top, so that ``pipeline run`` forks its first-pass
workers before the main process has imported Arrow and imports it while they work (see
``runner.run_pipeline``).
"""

from __future__ import annotations

import json
import mmap
import re
import sys
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import chain, groupby, pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pipeline
from pipeline.conflicts import Block
from pipeline.errors import InputError, OutputInvalid, PatchRefused
from pipeline.io import AtomicDir, link_or_copy
from pipeline.ondisk import DiskMap
from pipeline.problems import Problem
from pipeline.record import Change, Doc
from pipeline.wordpress_row import Author, WordPressRow

if TYPE_CHECKING:
    from pipeline.outputs import FinalPost


@contextmanager
def refusing(names: tuple[str, ...]) -> Iterator[None]:
    """While inside, importing any of ``names`` fails as if it were not installed.

    >>> with refusing(("antigravity",)):
    ...     import antigravity
    Traceback (most recent call last):
    ModuleNotFoundError: antigravity is left out of this process (pipeline.tables)
    """
    finder = _Refusing(names)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


@dataclass(frozen=True)
class _Refusing:
    """An import finder that refuses some names (``refusing``)."""

    names: tuple[str, ...]

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name in self.names:
            raise ModuleNotFoundError(f"{name} is left out of this process (pipeline.tables)", name=name)


# pyarrow imports numpy when it finds it (0.04 s of CPU; pyarrow.lib: ``np = None`` without),
# only to convert numpy objects, which this package never hands it, and other optional
# modules (``pipeline.ARROW_WITHOUT``). The ``pipeline`` command leaves them out; a library
# user's process keeps them, as pyarrow asks for numpy once and remembers: ``to_pandas()``
# there needs it.
_LEFT_OUT: Final = tuple(name for name in pipeline.ARROW_WITHOUT if name not in sys.modules)
with refusing(_LEFT_OUT):
    import pyarrow as pa
    import pyarrow.parquet as pq

_STR: Final = pa.string()


_LIST_STR: Final = pa.list_(pa.string())


_UTC: Final = pa.timestamp("us", tz="UTC")


POSTS_SCHEMA: Final = pa.schema(
    [
        pa.field("source_path", _STR, nullable=False),
        pa.field("sha256", _STR, nullable=False),
        pa.field("output_path", _STR),
        pa.field("url", _STR, nullable=False),
        pa.field("old_paths", _LIST_STR, nullable=False),
        pa.field("slug", _STR, nullable=False),
        pa.field("slug_source", _STR, nullable=False),
        pa.field("title", _STR, nullable=False),
        pa.field("title_source", _STR, nullable=False),
        pa.field("date", _UTC),
        pa.field("date_local", _STR),
        pa.field("lastmod", _UTC),
        pa.field("author", _STR),
        pa.field("tags", _LIST_STR, nullable=False),
        pa.field("categories", _LIST_STR, nullable=False),
        pa.field("draft", pa.bool_(), nullable=False),
        pa.field("duplicate_of", _STR),
        pa.field("body", _STR, nullable=False),
        pa.field("problems", _LIST_STR, nullable=False),
        pa.field("conflict_blocks", pa.int32(), nullable=False),
        pa.field("wp_row_parse", _STR, nullable=False),
        pa.field("wp_post_date", _UTC),
        pa.field("wp_url", _STR),
        pa.field("wp_path", _STR),
        pa.field("wp_terms", _STR),
        pa.field("wp_categories", _LIST_STR, nullable=False),
        pa.field("wp_tags", _LIST_STR, nullable=False),
        pa.field("wp_status", _STR),
        pa.field("wp_author_id", pa.int64()),
        pa.field("wp_author_login", _STR),
        pa.field("wp_author_email", _STR),
        pa.field("wp_author_first_name", _STR),
        pa.field("wp_author_last_name", _STR),
        pa.field("wp_author_display_name", _STR),
        pa.field("wp_author_raw", _STR),
        pa.field("wp_slug", _STR),
        pa.field("wp_modified", _UTC),
        pa.field("wp_excerpt", _STR),
        pa.field("wp_spill", _STR),
        pa.field("wp_row_raw", _STR),
    ]
)


CONFLICTS_SCHEMA: Final = pa.schema(
    [
        pa.field("source_path", _STR, nullable=False),
        pa.field("start_line", pa.int32(), nullable=False),
        pa.field("end_line", pa.int32(), nullable=False),
        pa.field("region", _STR, nullable=False),
        pa.field("side", _STR, nullable=False),
        pa.field("ours_lines", pa.int32(), nullable=False),
        pa.field("theirs_lines", pa.int32(), nullable=False),
        pa.field("base_lines", pa.int32(), nullable=False),
        pa.field("ours_label", _STR, nullable=False),
        pa.field("theirs_label", _STR, nullable=False),
        pa.field("has_export_row", pa.bool_(), nullable=False),
        pa.field("equivalent", pa.bool_(), nullable=False),
    ]
)


QUARANTINE_SCHEMA: Final = pa.schema(
    [
        pa.field("source_path", _STR, nullable=False),
        pa.field("sha256", _STR, nullable=False),
        pa.field("reason", _STR, nullable=False),
        pa.field("message", _STR, nullable=False),
        pa.field("line", pa.int32()),
        pa.field("raw", pa.binary(), nullable=False),
    ]
)


PROBLEMS_SCHEMA: Final = pa.schema(
    [
        pa.field("source_path", _STR, nullable=False),
        pa.field("code", _STR, nullable=False),
        pa.field("severity", _STR, nullable=False),
        pa.field("line", pa.int32()),
        pa.field("message", _STR, nullable=False),
    ]
)


LINKS_SCHEMA: Final = pa.schema(
    [
        pa.field("source_path", _STR, nullable=False),
        pa.field("post_url", _STR, nullable=False),
        pa.field("original_target", _STR, nullable=False),
        pa.field("new_target", _STR),
        pa.field("status", _STR, nullable=False),
        pa.field("rule", _STR),
    ]
)


AUTHORS_SCHEMA: Final = pa.schema(
    [
        pa.field("wp_author_id", pa.int64(), nullable=False),
        pa.field("login", _STR),
        pa.field("email", _STR),
        pa.field("first_name", _STR),
        pa.field("last_name", _STR),
        pa.field("display_name", _STR),
        pa.field("post_count", pa.int64(), nullable=False),
    ]
)


# Intermediate stage outputs (data/NN_stage/docs.parquet): a Doc per row, nested parts as JSON.
DOCS_SCHEMA: Final = pa.schema(
    [
        pa.field("source_path", _STR, nullable=False),
        pa.field("sha256", _STR, nullable=False),
        pa.field("raw", pa.binary(), nullable=False),
        pa.field("text", _STR, nullable=False),
        pa.field("front_matter", _STR),
        pa.field("has_front_matter", pa.bool_(), nullable=False),
        pa.field("body", _STR, nullable=False),
        pa.field("row", _STR),
        pa.field("blocks", _STR, nullable=False),
        pa.field("problems", _STR, nullable=False),
        pa.field("changes", _STR, nullable=False),
    ]
)


DOCS_FILE: Final = "docs.parquet"


# The tables that get rows post by post, in the order a run writes them.
PER_POST_TABLES: Final = {
    "posts": POSTS_SCHEMA,
    "links": LINKS_SCHEMA,
    "conflicts": CONFLICTS_SCHEMA,
    "quarantine": QUARANTINE_SCHEMA,
    "problems": PROBLEMS_SCHEMA,
}

# Row groups of the tables beside posts.parquet hold this many times ``export.batch_size`` rows.
SMALL_ROWS_FACTOR: Final = 8


def group_rows(table: str, batch_size: int) -> int:
    """Rows per row group of a per-post table: ``export.batch_size`` for posts.parquet, eight
    times that for the others.

    A Parquet writer keeps the metadata of every column chunk it wrote (870 bytes each,
    whatever the rows) until it writes the footer, so a run's memory grows with its number
    of row groups times columns. posts.parquet's rows are large (a body each) and a rerun
    re-encodes the group of a changed post, so its groups stay small. The other tables'
    rows are small and many (links: four to five a post), and at ``batch_size`` rows their
    groups were two thirds of the column chunks of a run (100,000 posts: 9,300 of 17,300).
    Like a full run's, a group ends after the post that brings it to this size.

    >>> group_rows("posts", 500), group_rows("links", 500)
    (500, 4000)
    """
    return batch_size if table == "posts" else batch_size * SMALL_ROWS_FACTOR


def keep_arrow_off_pandas() -> None:
    """Let pyarrow find pandas absent on its first array, unless pandas is imported already.

    On its first ``pa.array`` pyarrow tries ``import pandas`` (0.3 s of CPU, 350 modules) to
    recognise pandas objects, which this package never hands it; a cached rerun spent a third
    of its time there. While the name is blocked, pyarrow takes its own path for a machine
    without pandas (both its Python and its C++ side ask once per process and remember the
    answer); an explicit ``to_pandas()`` later still imports it, because pyarrow tries again
    whenever pandas is required. Called once, when this module is imported. The C++ side
    also looks for ``dateutil`` there (and at every later inference): refused too where the
    process leaves it out (``pipeline.ARROW_WITHOUT``).
    """
    if "pandas" in sys.modules:
        return
    with refusing(("pandas", *_LEFT_OUT)):
        pa.lib._pandas_api.have_pandas  # noqa: B018  # the Python side asks here, once
        pa.array([0])  # the C++ side asks on its first type inference, once


keep_arrow_off_pandas()


def rows_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Row dicts as a table of ``schema`` (a missing key is null), built the one way every
    writer builds them, so that a patched table's rows equal a full run's.

    >>> rows_table([{"source_path": "a.md"}], pa.schema([("source_path", pa.string()), ("n", pa.int64())])).to_pylist()
    [{'source_path': 'a.md', 'n': None}]
    """
    # Column lists from the row dicts: twice as fast as Table.from_pylist.
    return pa.Table.from_pydict({name: [row.get(name) for row in rows] for name in schema.names}, schema=schema)


def parquet_writer(sink: Any, schema: pa.Schema) -> pq.ParquetWriter:
    """The one Parquet writer of every table (a run's, a patch's splice or merge, the Dask
    engine's): zstd, and statistics only on ``statistics_columns``.

    A patch in place splices a row group encoded alone into a file written whole
    (``splice_table``): the two must be written with the same settings to give the same bytes.
    """
    return pq.ParquetWriter(sink, schema, compression="zstd", write_statistics=statistics_columns(schema))


def statistics_columns(schema: pa.Schema) -> list[str]:
    """The columns whose row groups get min/max statistics: ``source_path`` (a rerun finds a
    post's row group by it, ``_places``) and those of dates, numbers and flags (a reader
    skips row groups by them); not text (bodies, export rows, URLs, messages).

    The writer keeps every row group's statistics in memory until it closes, and writes them
    all into the footer. On 200,000 synthetic posts, text statistics made the main process
    grow by 11 MiB per 400 row groups of posts.parquet alone, against 1 MiB with these, and
    the footer 2.5 times larger (3.37 against 1.33 MB for those 400 groups); a rerun walks
    that footer.

    >>> statistics_columns(pa.schema([("source_path", pa.string()), ("body", pa.string()), ("year", pa.int16())]))
    ['source_path', 'year']
    """
    types = pa.types
    return [
        field.name
        for field in schema
        if field.name == "source_path"
        or types.is_temporal(field.type)
        or types.is_integer(field.type)
        or types.is_floating(field.type)
        or types.is_boolean(field.type)
    ]


class TableWriter:
    """Writes rows to a Parquet file in row groups of ``batch_size``, checked against ``schema``."""

    def __init__(self, path: Path, schema: pa.Schema, batch_size: int) -> None:
        self.schema = schema
        self.batch_size = batch_size
        self.rows: list[dict[str, Any]] = []
        self.tables: list[pa.Table] = []
        self.table_rows = 0
        self.writer = parquet_writer(path, schema)
        self.count = 0

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        self.rows.extend(rows)
        if len(self.rows) >= self.batch_size:
            self._flush()

    def add_table(self, table: pa.Table) -> None:
        """Rows already built (one per post, as the second pass builds posts rows): cut into
        the same row groups as ``add``, each in one chunk as ``rows_table`` makes it (the
        page breaks depend on it), so the file is the one ``add`` would write."""
        self.tables.append(table)
        self.table_rows += table.num_rows
        if self.table_rows < self.batch_size:
            return
        pending = pa.concat_tables(self.tables)
        start = 0
        while self.table_rows - start >= self.batch_size:
            self._write(pending.slice(start, self.batch_size).combine_chunks())
            start += self.batch_size
        self.tables = [pending.slice(start)]
        self.table_rows -= start

    def _write(self, table: pa.Table) -> None:
        self.writer.write_table(table)
        self.count += table.num_rows

    def _flush(self) -> None:
        if self.rows:
            self._write(rows_table(self.rows, self.schema))
            self.rows = []
        if self.table_rows:
            self._write(pa.concat_tables(self.tables).combine_chunks())
            self.tables, self.table_rows = [], 0

    def close(self) -> None:
        self._flush()
        self.writer.close()


def read_report_inputs(out_dir: Path, columns: dict[str, list[str]]) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """An output folder's report.json and the ``columns`` of its ``<table>.parquet`` files as rows.

    A missing report.json is an InputError (run the pipeline first); an absent table is empty.
    """
    report_path = out_dir / "report.json"
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(str(report_path), "no report.json here; run `pipeline run --out DIR` (or `dvc repro`) first") from None
    except (OSError, ValueError) as err:
        raise InputError(str(report_path), f"cannot read the report ({err}); rerun the pipeline into this folder") from None
    if not isinstance(report, dict):
        raise InputError(str(report_path), "not a JSON object; rerun the pipeline into this folder")
    tables = {}
    for name, wanted in columns.items():
        path = out_dir / f"{name}.parquet"
        # A file, or a folder of parts: the Dask engine writes each table as a partitioned dataset.
        tables[name] = pq.read_table(path, columns=wanted).to_pylist() if path.exists() else []
    return report, tables


def doc_to_record(doc: Doc) -> dict[str, Any]:
    """A Doc as a DOCS_SCHEMA row."""
    return {
        "source_path": doc.source_path,
        "sha256": doc.sha256,
        "raw": doc.raw,
        "text": doc.text,
        "front_matter": None if doc.front_matter is None else json.dumps(doc.front_matter, ensure_ascii=False),
        "has_front_matter": doc.has_front_matter,
        "body": doc.body,
        "row": None if doc.row is None else json.dumps(asdict(doc.row), ensure_ascii=False),
        "blocks": json.dumps([asdict(b) for b in doc.blocks], ensure_ascii=False),
        "problems": json.dumps([asdict(p) for p in doc.problems], ensure_ascii=False),
        "changes": json.dumps([asdict(c) for c in doc.changes], ensure_ascii=False),
    }


def record_to_doc(record: dict[str, Any]) -> Doc:
    """The Doc of a DOCS_SCHEMA row (inverse of doc_to_record)."""
    row = None
    if record["row"] is not None:
        fields = json.loads(record["row"])
        author = Author(**fields.pop("author")) if fields.get("author") else None
        fields["categories"] = tuple(fields["categories"])
        fields["tags"] = tuple(fields["tags"])
        row = WordPressRow(**{**fields, "author": author})
    return Doc(
        source_path=record["source_path"],
        sha256=record["sha256"],
        raw=record["raw"],
        text=record["text"],
        front_matter=None if record["front_matter"] is None else json.loads(record["front_matter"]),
        has_front_matter=record["has_front_matter"],
        body=record["body"],
        row=row,
        blocks=tuple(Block(**b) for b in json.loads(record["blocks"])),
        problems=tuple(Problem(**p) for p in json.loads(record["problems"])),
        changes=tuple(Change(**c) for c in json.loads(record["changes"])),
    )


def read_docs(directory: Path) -> Iterator[Doc]:
    """Stream the Docs of a stage folder, one record batch at a time."""
    path = directory / DOCS_FILE
    if not path.is_file():
        raise InputError(str(path), "stage input not found; run the previous stage first (dvc repro does)")
    parquet = pq.ParquetFile(path)
    if not parquet.schema_arrow.equals(DOCS_SCHEMA):
        raise InputError(str(path), "stage input has an unexpected schema; rerun the previous stage")
    for batch in parquet.iter_batches():
        for record in batch.to_pylist():
            yield record_to_doc(record)


_ESCAPED: Final = re.compile(r"\\u[0-9a-fA-F]{4}|_x000D_")


def validate_posts(path: Path) -> None:
    """Read posts.parquet back and check it against the schema and the rules a CMS relies on:
    typed columns as documented, a title on every post, one post per URL, tags without
    escapes or debris. Raises OutputInvalid naming the rule and examples."""
    # The schema from the footer and only the columns the rules read: the bodies of a large
    # archive would otherwise double the run's peak memory at its very end.
    schema = pq.read_schema(path)
    if not schema.equals(POSTS_SCHEMA):
        raise OutputInvalid(path.name, "schema differs from POSTS_SCHEMA", [f"{path}: schema differs from the documented one"])
    # A row group at a time and on this thread: iter_batches's reader threads left 35 MB more
    # in this process (20,000 posts; measured with the RSS), for no gain at this size.
    parquet = pq.ParquetFile(path, pre_buffer=False)
    groups = (parquet.read_row_group(i, columns=POST_RULE_COLUMNS, use_threads=False) for i in range(parquet.num_row_groups))
    check_post_rules(chain.from_iterable(group.to_pylist() for group in groups), path.name)


POST_RULE_COLUMNS: Final = ["source_path", "title", "url", "tags", "duplicate_of"]


def check_post_rules(rows: Iterable[dict[str, Any]], name: str) -> None:
    """The rules of ``validate_posts`` on rows of ``POST_RULE_COLUMNS`` (also used on a partitioned posts.parquet).

    One pass over the rows, which may stream: only the URLs are kept, for the clash rule, on
    disk (``DiskMap``).
    """
    empty_titles: list[str] = []
    clashes: list[str] = []
    escaped: list[str] = []
    seen = DiskMap()
    for r in rows:
        if not r["title"].strip():
            empty_titles.append(r["source_path"])
        first = r["source_path"] if r["duplicate_of"] is not None else seen.setdefault(r["url"], r["source_path"])
        if first != r["source_path"]:
            clashes.append(f"{r['url']} ({first}, {r['source_path']})")
        if any(_ESCAPED.search(t) for t in r["tags"]):
            escaped.append(r["source_path"])
    if empty_titles:
        raise OutputInvalid(name, "empty title", empty_titles)
    if clashes:
        raise OutputInvalid(name, "two posts share a URL", clashes)
    if escaped:
        raise OutputInvalid(name, "escaped unicode or Excel debris left in tags", escaped)


def check_schema(path: Path, schema: pa.Schema) -> pa.Table:
    """Read a Parquet file back with pyarrow and fail unless its schema is exactly ``schema``."""
    table = pq.read_table(path)
    if not table.schema.equals(schema):
        raise AssertionError(f"{path}: schema differs from the documented one:\n{table.schema}\nexpected:\n{schema}")
    return table


@dataclass(frozen=True)
class Finished:
    """Posts after the second pass, light (``light_post``), and their posts.parquet rows as
    ``finish_post`` made them, before the claims (``with_claims`` puts those in)."""

    posts: list[FinalPost]
    table: pa.Table

    @staticmethod
    def join(parts: list[Finished]) -> Finished:
        """Parts finished apart (by worker processes), as one, in order."""
        tables = [part.table for part in parts] or [rows_table([], POSTS_SCHEMA)]
        return Finished([post for part in parts for post in part.posts], pa.concat_tables(tables))


def with_claims(table: pa.Table, claimed: list[FinalPost]) -> pa.Table:
    """Posts rows with what the claims changed in them (``claim_file_name``, ``claim_redirects``):
    the output path and the problems, from the claimed posts of the same rows, in order."""
    if len(claimed) != table.num_rows:
        raise AssertionError(f"{len(claimed)} claimed posts for {table.num_rows} posts rows")
    for name in ("output_path", "problems"):
        column = pa.array([post.row[name] for post in claimed], POSTS_SCHEMA.field(name).type)
        table = table.set_column(table.schema.get_field_index(name), POSTS_SCHEMA.field(name), column)
    return table


class DocWriter:
    """Writes a stage's Docs to ``<out>/docs.parquet`` atomically (the DVC stage outputs)."""

    def __init__(self, out_dir: Path, batch_size: int) -> None:
        self.dir = AtomicDir(out_dir)
        self.table = TableWriter(self.dir.path(DOCS_FILE), DOCS_SCHEMA, batch_size)

    def add(self, doc: Doc) -> None:
        self.table.add([doc_to_record(doc)])

    def finish(self) -> int:
        self.table.close()
        self.dir.commit()
        return self.table.count

    def abandon(self) -> None:
        self.dir.abandon()


def merge_table(previous: Path, target: Path, schema: pa.Schema, fresh: dict[str, list[dict[str, Any]]], position: dict[str, int], batch_size: int) -> int:
    """Write ``target``: the previous table with the rows of every post in ``fresh``
    replaced by its fresh rows, in the order of each post's ``position`` in the run (the
    previous run's order too), in the row groups a full run cuts. The previous table streams
    through one row group at a time (a full run's groups end where a post ends); unchanged
    rows are sliced, never copied row by row. Returns the number of rows."""
    try:
        source = pq.ParquetFile(previous)
    except (OSError, pa.ArrowException) as err:
        raise PatchRefused(f"{previous.name} of the previous run is unreadable ({err})") from None
    with source:
        if source.schema_arrow.equals(schema) and _same_rows(source, schema, fresh):
            # The fresh posts' rows are the ones the previous run wrote, at the same places:
            # the merged table would be the previous file, byte for byte.
            link_or_copy(str(previous), str(target))
            return int(source.metadata.num_rows)
        return _merge_groups(source, previous.name, target, schema, fresh, position, batch_size)


def splice_table(previous: Path, target: Path, schema: pa.Schema, fresh: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]] | None:
    """Write ``target``: the previous table with each fresh post's rows replaced by its
    fresh rows, as many as before, by re-encoding only the row groups that hold them
    (``parquet_splice``); no file when the rows are the ones already there. Returns the
    replaced rows, or None (and no file) when a post has another number of rows than
    before: the row groups' ends move, and only ``merge_table`` can write it."""
    from pipeline.parquet_splice import SpliceRefused, splice_group

    try:
        source = pq.ParquetFile(previous)
    except (OSError, pa.ArrowException) as err:
        raise PatchRefused(f"{previous.name} of the previous run is unreadable ({err})") from None
    with source:
        if not source.schema_arrow.equals(schema):
            raise PatchRefused(f"{previous.name} of the previous run has another schema")
        groups = _places(source, fresh)
        if groups is None:
            return None
        old_rows: list[dict[str, Any]] = []
        new_groups: dict[int, pa.Table] = {}
        for group, places in groups.items():
            table = source.read_row_group(group)
            parts, taken = [], 0
            for start, path in places:
                count = len(fresh[path])
                old_rows.extend(table.slice(start, count).to_pylist())
                parts += [table.slice(taken, start - taken), rows_table(fresh[path], schema)]
                taken = start + count
            new = pa.concat_tables([*parts, table.slice(taken)]).combine_chunks()
            if not new.equals(table):
                new_groups[group] = new
    if not new_groups:
        return old_rows
    # Mapped, not read: the unchanged row groups go from the page cache to the new file. Not
    # closed by hand: the mapping goes with the last view of it, whatever was raised.
    with previous.open("rb") as handle:
        pieces: list[bytes | memoryview] = [memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))]
    try:
        for group, table in sorted(new_groups.items()):
            sink = pa.BufferOutputStream()
            with parquet_writer(sink, schema) as writer:
                writer.write_table(table)
            pieces = splice_group(pieces[0] if len(pieces) == 1 else b"".join(pieces), group, sink.getvalue().to_pybytes())
        with target.open("wb") as out:
            for piece in pieces:
                out.write(piece)
    except SpliceRefused as err:
        target.unlink(missing_ok=True)
        raise PatchRefused(f"{previous.name}: {err}") from None
    return old_rows


def _places(source: pq.ParquetFile, fresh: dict[str, list[dict[str, Any]]]) -> dict[int, list[tuple[int, str]]] | None:
    """The row groups that hold the fresh posts' rows, in file order, each with where each of
    its posts' rows start in it; None if some post has another number of rows there than
    fresh, or rows not in one run within one group (a full run never cuts a post's rows).

    Only the row groups whose ``source_path`` statistics (min and max, in the footer) could
    hold a fresh post are read: a full run writes posts in input order, so that is one
    group a post, where reading the column of 100,000 posts took a fifth of a rerun.
    """
    found: dict[str, list[tuple[int, int]]] = {path: [] for path in fresh}  # (group, row in it)
    metadata = source.metadata
    leaf = next(i for i in range(metadata.num_columns) if metadata.schema.column(i).path == "source_path")
    for number in range(metadata.num_row_groups):
        stats = metadata.row_group(number).column(leaf).statistics
        if stats is None or not stats.has_min_max or any(stats.min <= path <= stats.max for path in found):
            for offset, path in enumerate(source.read_row_group(number, columns=["source_path"]).column(0).to_pylist()):
                if path in found:
                    found[path].append((number, offset))
    groups: dict[int, list[tuple[int, str]]] = {}
    for path, rows in fresh.items():
        at = found[path]
        if len(at) != len(rows) or (at and (at[-1][0] != at[0][0] or at[-1][1] - at[0][1] != len(rows) - 1)):
            return None
        if at:
            groups.setdefault(at[0][0], []).append((at[0][1], path))
    return {group: sorted(groups[group]) for group in sorted(groups)}


def _same_rows(source: pq.ParquetFile, schema: pa.Schema, fresh: dict[str, list[dict[str, Any]]]) -> bool:
    """Whether the previous table holds exactly the fresh rows for every fresh post (a body
    edit leaves the conflicts, problems and quarantine tables as they were). Only the
    source paths and the row groups that hold a fresh post are read."""
    groups = _places(source, fresh)
    if groups is None:
        return False
    old: list[pa.Table] = []
    for group, places in groups.items():
        table = source.read_row_group(group)  # once, however many fresh posts it holds
        old += [table.slice(start, len(fresh[path])) for start, path in places]
    new = [rows_table(fresh[path], schema) for places in groups.values() for _, path in places]
    return not old or bool(pa.concat_tables(old).equals(pa.concat_tables(new)))


def _merge_groups(
    source: pq.ParquetFile, name: str, target: Path, schema: pa.Schema, fresh: dict[str, list[dict[str, Any]]], where: dict[str, int], batch_size: int
) -> int:
    if not source.schema_arrow.equals(schema):
        raise PatchRefused(f"{name} of the previous run has another schema")
    waiting = sorted(fresh, key=where.__getitem__)  # fresh posts not written yet, in run order

    def rows_of(path: str) -> tuple[pa.Table, list[int]]:
        return rows_table(fresh[path], schema), [where[path]] * len(fresh[path])

    groups = _RowGroups(parquet_writer(target, schema), batch_size)
    try:
        for number in range(source.num_row_groups):
            old = source.read_row_group(number)
            # The fresh posts' old rows go as slices around them: Table.filter (and take)
            # would import pyarrow.compute, 57 to 85 ms of a rerun.
            paths = old.column("source_path").to_pylist()
            if any(path in fresh for path in paths):
                runs = [(start, length) for gone, start, length in _runs(path in fresh for path in paths) if not gone]
                old = pa.concat_tables([old.slice(start, length) for start, length in runs]) if runs else old.slice(0, 0)
                paths = [path for path in paths if path not in fresh]
            if not old.num_rows:
                continue
            try:
                positions = [where[path] for path in paths]
            except KeyError:
                raise PatchRefused(f"{name} of the previous run holds rows of a post that is not in this run") from None
            if any(later < earlier for earlier, later in pairwise(positions)) or (groups.last is not None and positions[0] < groups.last):
                raise PatchRefused(f"{name} of the previous run is not in this run's post order")
            taken = 0
            while waiting and where[waiting[0]] < positions[-1]:
                cut = bisect_left(positions, where[waiting[0]])
                groups.add(old.slice(taken, cut - taken), positions[taken:cut])
                groups.add(*rows_of(waiting.pop(0)))
                taken = cut
            groups.add(old.slice(taken), positions[taken:])
        for path in waiting:
            groups.add(*rows_of(path))
    finally:
        written = groups.close()
    return written


def _runs(flags: Iterable[bool]) -> Iterator[tuple[bool, int, int]]:
    """Runs of equal flags, as (flag, start, length).

    >>> list(_runs([True, True, False, True]))
    [(True, 0, 2), (False, 2, 1), (True, 3, 1)]
    """
    start = 0
    for flag, run in groupby(flags):
        length = sum(1 for _ in run)
        yield flag, start, length
        start += length


class _RowGroups:
    """Rows, whole posts at a time, cut into the row groups ``TableWriter`` makes: a group
    closes after the post that brings it to ``batch_size`` rows."""

    def __init__(self, writer: pq.ParquetWriter, batch_size: int) -> None:
        self.writer = writer
        self.batch_size = batch_size
        self.tables: list[pa.Table] = []
        self.positions: list[int] = []  # each row's post's place in the run
        self.rows = 0
        self.written = 0
        self.last: int | None = None

    def add(self, table: pa.Table, positions: list[int]) -> None:
        if not table.num_rows:
            return
        self.tables.append(table)
        self.positions += positions
        self.rows += table.num_rows
        self.last = positions[-1]
        if self.rows < self.batch_size:
            return
        pending = pa.concat_tables(self.tables)
        # A group may end where the next row is another post's.
        ends = [*(row for row in range(1, self.rows) if self.positions[row] != self.positions[row - 1]), self.rows]
        start = 0
        for end in ends:
            if end - start >= self.batch_size:
                self._write(pending.slice(start, end - start))
                start = end
        self.tables = [pending.slice(start)] if start < self.rows else []
        self.positions = self.positions[start:]
        self.rows -= start

    def _write(self, table: pa.Table) -> None:
        # One chunk per group, as TableWriter builds it: the page breaks depend on it.
        self.writer.write_table(table.combine_chunks())
        self.written += table.num_rows

    def close(self) -> int:
        if self.rows:
            self._write(pa.concat_tables(self.tables))
        self.writer.close()
        return self.written
