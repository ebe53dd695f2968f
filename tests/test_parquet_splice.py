"""A row group spliced into a Parquet file gives the file pyarrow writes whole, byte for byte."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import PatchRefused
from pipeline.parquet_splice import SpliceRefused, read_footer, splice_group
from pipeline.tables import PER_POST_TABLES, POSTS_SCHEMA, SMALL_ROWS_FACTOR, group_rows, parquet_writer, rows_table, splice_table, statistics_columns

SCHEMA = pa.schema([("path", pa.string()), ("n", pa.int64()), ("tags", pa.list_(pa.string())), ("when", pa.timestamp("us", tz="UTC"))])


def _parquet(groups: list[list[dict[str, Any]]], schema: pa.Schema = SCHEMA) -> bytes:
    """Each group written as one row group, with TableWriter's settings."""
    sink = io.BytesIO()
    with parquet_writer(sink, schema) as writer:
        for rows in groups:
            writer.write_table(rows_table(rows, schema))
    return sink.getvalue()


_ROW = st.fixed_dictionaries(
    {
        "path": st.text(max_size=40),
        "n": st.none() | st.integers(-(2**63), 2**63 - 1),
        "tags": st.lists(st.text(max_size=10), max_size=4),
    }
)


@settings(max_examples=150, deadline=None)
@given(
    groups=st.lists(st.lists(_ROW, min_size=1, max_size=6), min_size=1, max_size=6),
    data=st.data(),
)
def test_a_spliced_group_equals_the_whole_file_written_with_it(groups: list[list[dict[str, Any]]], data: st.DataObject) -> None:
    number = data.draw(st.integers(0, len(groups) - 1))
    new_rows = data.draw(st.lists(_ROW, min_size=len(groups[number]), max_size=len(groups[number])))
    changed: list[list[dict[str, Any]]] = [*groups[:number], new_rows, *groups[number + 1 :]]
    spliced = b"".join(splice_group(_parquet(groups), number, _parquet([new_rows])))
    assert spliced == _parquet(changed)


def test_offsets_of_large_files_move_with_the_group() -> None:
    """Groups of different sizes on both sides, so that every later offset changes width."""
    groups: list[list[dict[str, Any]]] = [[{"path": f"{g}-{i}", "n": i, "tags": ["x" * (i % 50)]} for i in range(300)] for g in range(8)]
    longer: list[dict[str, Any]] = [{"path": "p" * 5000, "n": i, "tags": ["y" * 3000]} for i in range(300)]
    for number in (0, 3, 7):
        changed = [*groups[:number], longer, *groups[number + 1 :]]
        assert b"".join(splice_group(_parquet(groups), number, _parquet([longer]))) == _parquet(changed)
        assert b"".join(splice_group(_parquet(changed), number, _parquet([groups[number]]))) == _parquet(groups)


def test_the_posts_schema_splices_too() -> None:
    row: dict[str, Any] = {name: None for name in POSTS_SCHEMA.names}
    row |= {"source_path": "a.md", "sha256": "0", "url": "/a/", "slug": "a", "slug_source": "x"}
    row |= {"title": "A", "title_source": "x", "old_paths": [], "tags": [], "categories": [], "draft": False, "body": "b"}
    row |= {"problems": [], "conflict_blocks": 0, "wp_row_parse": "none", "wp_categories": [], "wp_tags": []}
    groups = [[row | {"source_path": f"{g}.md", "body": "b" * g}] for g in range(3)]
    new = [row | {"source_path": "1.md", "body": "a new body"}]
    spliced = b"".join(splice_group(_parquet(groups, POSTS_SCHEMA), 1, _parquet([new], POSTS_SCHEMA)))
    assert spliced == _parquet([groups[0], new, groups[2]], POSTS_SCHEMA)


def test_what_cannot_be_moved_is_refused() -> None:
    two = _parquet([[{"path": "a"}], [{"path": "b"}]])
    with pytest.raises(SpliceRefused, match="rows"):
        splice_group(two, 0, _parquet([[{"path": "a"}, {"path": "c"}]]))
    with pytest.raises(SpliceRefused, match="row group"):
        splice_group(two, 2, _parquet([[{"path": "a"}]]))
    with pytest.raises(SpliceRefused, match="PAR1"):
        read_footer(two[:-1])
    with pytest.raises(SpliceRefused):
        read_footer(two[:4] + two[-8:])  # a footer length that runs past the start
    sink = io.BytesIO()
    pq.write_table(rows_table([{"path": "a"}], SCHEMA), sink, write_page_index=True)
    with pytest.raises(SpliceRefused, match="page index"):
        splice_group(sink.getvalue(), 0, _parquet([[{"path": "b"}]]))


def test_splice_table_swaps_a_posts_rows_and_refuses_what_it_cannot_move(tmp_path: Path) -> None:
    schema = pa.schema([("source_path", pa.string()), ("n", pa.int64())])
    rows = [{"source_path": f"{i}.md", "n": i} for i in range(10)]
    previous, target = tmp_path / "t.parquet", tmp_path / "new.parquet"
    previous.write_bytes(_parquet([rows[:5], rows[5:]], schema))
    assert splice_table(previous, target, schema, {"7.md": [{"source_path": "7.md", "n": 70}]}) == [rows[7]]
    assert target.read_bytes() == _parquet([rows[:5], [*rows[5:7], {"source_path": "7.md", "n": 70}, *rows[8:]]], schema)
    target.unlink()
    assert splice_table(previous, target, schema, {"7.md": [rows[7]]}) == [rows[7]] and not target.exists()  # nothing to write
    assert splice_table(previous, target, schema, {"7.md": []}) is None and not target.exists()  # fewer rows: merge_table's job
    pq.write_table(rows_table(rows, schema), previous, compression="zstd", write_page_index=True)
    with pytest.raises(PatchRefused, match="page index"):
        splice_table(previous, target, schema, {"7.md": [{"source_path": "7.md", "n": 70}]})
    assert not target.exists()


def test_a_runs_tables_carry_statistics_only_where_they_are_read(tmp_path: Path) -> None:
    from pipeline.config import load_config
    from pipeline.runner import run_pipeline
    from tests.conftest import RAW

    run_pipeline(RAW, tmp_path / "out", load_config({}))
    for name, schema in PER_POST_TABLES.items():
        metadata = pq.ParquetFile(tmp_path / "out" / f"{name}.parquet").metadata
        for group in range(metadata.num_row_groups):
            with_statistics = {
                metadata.row_group(group).column(i).path_in_schema.split(".")[0]
                for i in range(metadata.num_columns)
                if metadata.row_group(group).column(i).is_stats_set
            }
            assert with_statistics == set(statistics_columns(schema)), name
    assert "source_path" in statistics_columns(POSTS_SCHEMA) and "body" not in statistics_columns(POSTS_SCHEMA)


def test_the_tables_beside_posts_parquet_have_larger_row_groups(tmp_path: Path) -> None:
    """posts.parquet in groups of ``batch_size`` posts, the others of ``group_rows`` rows. A
    group ends after the post that fills it: never inside a post's rows, and without that
    post it would be short of the size."""
    from benchmarks.synthetic import generate
    from pipeline.config import load_config
    from pipeline.runner import run_pipeline

    batch = 4
    generate(tmp_path / "raw", 150, 11)
    run_pipeline(tmp_path / "raw", tmp_path / "out", load_config({"export": {"batch_size": batch}}))
    assert group_rows("posts", batch) == batch and group_rows("links", batch) == batch * SMALL_ROWS_FACTOR
    for name in ("posts", "links", "conflicts", "problems"):
        source = pq.ParquetFile(tmp_path / "out" / f"{name}.parquet")
        size = group_rows(name, batch)
        paths = source.read(columns=["source_path"]).column("source_path").to_pylist()
        start = 0
        for group in range(source.num_row_groups):
            rows = source.metadata.row_group(group).num_rows
            here = paths[start : start + rows]
            if group < source.num_row_groups - 1:
                assert here[-1] != paths[start + rows], (name, group)  # the next group starts a post
                assert rows - here.count(here[-1]) < size <= rows, (name, group)
            else:
                assert rows <= size + here.count(here[-1]), name
            start += rows
        assert start == len(paths) and source.num_row_groups > 2, name
