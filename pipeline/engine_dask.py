"""The Dask engine (``run.engine: dask``): the per-post work of ``run_pipeline`` on a Dask cluster.

Same functions, same outputs. Each task runs the local engine's own per-post code
(``clean_one``/``clean_doc``, ``apply_vocabulary``, ``build_post``, ``finish_post``, the row
builders of ``pipeline.outputs``) on one partition of inputs; only what needs every post runs
on the client, exactly as the local ``Exporter`` does it, from small per-post summaries:

1. **clean** (tasks): read, resolve, decode, extract and build each post of a partition;
   spill the results; return each post's kind, its ``site.Entry`` and its row's categories.
2. **vocabulary** (client, then tasks for the few partitions that need it): the archive's
   category names, then the posts whose tags were recovered from their row are rebuilt.
3. **index** (client): every ``Entry`` in the local engine's stream order (the held-back
   posts last) into one ``SiteIndex``, settled, written once for the workers to load.
4. **finish** (tasks): ``finish_post`` for each post; return what the run-wide claims need.
5. **claims** (client): ``claim_file_name`` and the old-URL claims, in stream order.
6. **write** (tasks): Markdown files and one Parquet part per table and partition, plus
   the partition's ``Tally``; the client merges the tallies, writes authors.parquet,
   redirects.csv and report.json, checks accounting and rules, then renames into place.

Inputs and outputs are fsspec URLs or paths (``file://``, ``memory://``, ``s3://`` with s3fs).
Every file a task writes has a name fixed by its partition or post and is written whole
(temporary name then rename on a local disk; one PUT on object storage), so a task retried
after its worker died overwrites its own files with the same bytes: nothing is lost or
doubled. The Parquet tables are partitioned datasets (``posts.parquet/part-00000.parquet``);
the Markdown files are byte-identical to the local engine's. See docs/DASK.md.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem

from pipeline.config import Config
from pipeline.errors import AccountingError, ConfigError, InputError, OutputInvalid, PipelineError
from pipeline.frozen import evolve
from pipeline.io import (
    AtomicDir,
    claim_redirects,  # the local Exporter's own claim and CSV helpers, so both engines share them
    code_version,
    discover,
    json_text,
    read_bytes_doc,
    read_doc,
    redirects_csv,
    refused_doc,
    write_metrics,
)
from pipeline.outputs import FinalPost, Tally, build_post, claim_file_name, finish_post, table_rows
from pipeline.problems import problem
from pipeline.record import Doc
from pipeline.runner import Cache, Done, Progress, clean_doc, worker_count
from pipeline.site import Entry, SiteIndex
from pipeline.tables import (
    AUTHORS_SCHEMA,
    CONFLICTS_SCHEMA,
    LINKS_SCHEMA,
    POST_RULE_COLUMNS,
    POSTS_SCHEMA,
    PROBLEMS_SCHEMA,
    QUARANTINE_SCHEMA,
    check_post_rules,
    group_rows,
    parquet_writer,
    rows_table,
)
from pipeline.vocabulary import apply_vocabulary, needs_vocabulary

if TYPE_CHECKING:
    from distributed import Client

# Partitions: about sixteen per worker thread. Each step ends when its last partition does,
# so smaller partitions leave less idle time at the end of a step and cost less when a
# worker dies; at least _MIN_PARTITION posts keep the per-task cost (a few ms) negligible,
# and at most _MAX_PARTITION bound a task's memory (about 100 MB at the archive's post sizes).
_PARTITIONS_PER_THREAD: Final = 16
_MIN_PARTITION: Final = 50
_MAX_PARTITION: Final = 1000
_WRITE_THREADS: Final = 4  # Markdown files are written on threads: creating a file waits on the disk, not the CPU
_CONNECT_TIMEOUT: Final = "20s"
_TASK_RETRIES: Final = 2  # a task that raises (a storage hiccup) is tried again; worker deaths are Dask's own retries
TABLES: Final = {
    "posts": POSTS_SCHEMA,
    "links": LINKS_SCHEMA,
    "conflicts": CONFLICTS_SCHEMA,
    "quarantine": QUARANTINE_SCHEMA,
    "problems": PROBLEMS_SCHEMA,
}
_WORK: Final = ".dask-work"  # inside the output's temporary folder, removed before the rename
_POST, _QUARANTINED, _HELD = "p", "q", "h"


def partition_size(posts: int, threads: int) -> int:
    """Posts per partition for ``posts`` inputs on ``threads`` worker threads.

    >>> partition_size(998, 2), partition_size(100_000, 2), partition_size(100, 8), partition_size(10**6, 400)
    (50, 1000, 50, 157)
    """
    return max(_MIN_PARTITION, min(_MAX_PARTITION, math.ceil(posts / (max(threads, 1) * _PARTITIONS_PER_THREAD))))


# --- where files are: a filesystem and a path in it ---------------------------------------


@dataclass(frozen=True)
class Place:
    """A folder given as an fsspec URL or a local path: its filesystem and its path there.

    >>> Place.of("memory://archive/_posts").join("a.md")
    '/archive/_posts/a.md'
    """

    fs: Any
    path: str

    @classmethod
    def of(cls, url: str | Path) -> Place:
        fs, path = fsspec.core.url_to_fs(str(url))
        return cls(fs, path.rstrip("/") or "/")

    @property
    def local(self) -> bool:
        return isinstance(self.fs, LocalFileSystem)

    @property
    def in_process(self) -> bool:
        """An in-memory filesystem: only threads of this process can see it."""
        return isinstance(self.fs, MemoryFileSystem)

    def join(self, *parts: str) -> str:
        return "/".join((self.path.rstrip("/"), *parts))

    def child(self, *parts: str) -> Place:
        return Place(self.fs, self.join(*parts))


def discover_place(raw: Place) -> list[str]:
    """Input files under ``raw`` as sorted relative POSIX paths, as ``io.discover`` lists them."""
    if raw.local:
        return discover(Path(raw.path))
    try:
        found = raw.fs.find(raw.path, withdirs=False) if raw.fs.isdir(raw.path) else None
    except OSError as err:
        raise InputError(raw.path, f"cannot list the raw folder ({err}); check the URL and the storage credentials") from None
    if found is None:
        raise InputError(raw.path, "raw folder not found; pass --raw DIR")
    prefix = raw.path.rstrip("/") + "/"
    relatives = (path[len(prefix) :] if path.startswith(prefix) else path.lstrip("/") for path in found)
    return sorted(r for r in relatives if r and not any(part.startswith(".") for part in r.split("/")))


def read_place_doc(raw: Place, relative: str, max_bytes: int) -> Doc:
    """One input as a Doc: ``io.read_doc`` on a local disk; the same checks through fsspec elsewhere."""
    if raw.local:
        return read_doc(Path(raw.path), relative, max_bytes)
    path = raw.join(relative)
    try:
        size = raw.fs.size(path)
        if size is not None and size > max_bytes:
            return refused_doc(
                relative,
                problem("too_large", f"the file has {size} bytes, over resolve.max_bytes={max_bytes}; raise the limit if it is a real post"),
            )
        data = raw.fs.cat_file(path)
    except OSError as err:
        return refused_doc(relative, problem("unreadable", f"cannot read the file ({err.strerror or err}); check its permissions"))
    return read_bytes_doc(relative, data)


def _put(place: Place, path: str, data: bytes) -> None:
    """Write a whole file: readers never see half of it, and a retried task just overwrites it."""
    if place.local:
        # Beside the work files, not in posts/: a worker killed mid-write leaves its
        # temporary file where the client removes it before the output is renamed into place.
        tmp = f"{place.path}/{_WORK}/tmp/{uuid.uuid4().hex}"
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    else:
        place.fs.pipe_file(path, data)  # one PUT: an object appears whole or not at all


def _put_pickle(place: Place, path: str, value: Any) -> None:
    _put(place, path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def _get_pickle(place: Place, path: str) -> Any:
    return pickle.loads(place.fs.cat_file(path))  # written by this run's own tasks


def _parquet_bytes(rows: list[dict[str, Any]], schema: pa.Schema, batch_size: int) -> bytes:
    """One Parquet part, in row groups of ``batch_size`` rows (``group_rows``), checked against ``schema``."""
    sink = pa.BufferOutputStream()
    with parquet_writer(sink, schema) as writer:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            writer.write_table(rows_table(batch, schema))
    return bytes(sink.getvalue().to_pybytes())


class OutputDir:
    """The output folder written under a temporary name and renamed into place by ``commit``.

    On a local disk this is ``io.AtomicDir`` (one atomic exchange). On other filesystems the
    same steps run as fsspec moves: the previous output is moved aside, the new one moved
    in, the old one removed; object stores copy to move, so the swap is not atomic there,
    but a run that fails before ``commit`` leaves the previous output untouched.
    """

    def __init__(self, out: Place) -> None:
        self.out = out
        self.atomic = AtomicDir(Path(out.path)) if out.local else None
        parent, _, name = out.path.rstrip("/").rpartition("/")
        self.tmp = Place(out.fs, str(self.atomic.tmp)) if self.atomic else Place(out.fs, f"{parent}/.{name}.tmp")
        self.old = f"{parent}/.{name}.old"
        if self.atomic is None:
            fs = out.fs
            if fs.exists(self.old) and not fs.exists(out.path):
                fs.mv(self.old, out.path, recursive=True)
            for leftover in (self.tmp.path, self.old):
                if fs.exists(leftover):
                    fs.rm(leftover, recursive=True)
            fs.makedirs(self.tmp.path, exist_ok=True)

    def commit(self) -> None:
        if self.atomic is not None:
            self.atomic.commit()
            return
        fs = self.out.fs
        if fs.exists(self.out.path):
            fs.mv(self.out.path, self.old, recursive=True)
        fs.mv(self.tmp.path, self.out.path, recursive=True)
        if fs.exists(self.old):
            fs.rm(self.old, recursive=True)

    def abandon(self) -> None:
        if self.atomic is not None:
            self.atomic.abandon()
        elif self.out.fs.exists(self.tmp.path):
            self.out.fs.rm(self.tmp.path, recursive=True)


# --- the tasks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """What every task of a run needs: where to read and write, the settings, the code version."""

    raw: Place
    tmp: Place  # the output's temporary folder
    config: Config
    version: str
    run: str  # a fresh id per run: what a worker loaded for one run is never used by the next

    def work(self, kind: str, part: int) -> str:
        return self.tmp.join(_WORK, kind, f"part-{part:05d}.pickle")


@dataclass(frozen=True)
class Cleaned:
    """What the client needs of a cleaned partition: each post's kind, entries and categories."""

    kinds: str  # one letter per input, in input order: p post, q quarantined, h held for the vocabulary
    entries: tuple[Entry, ...]  # of the ``p`` posts, in input order
    categories: frozenset[str]
    cache_hits: int


@dataclass(frozen=True)
class Written:
    """What a partition's write task returns: its tally, where its authors come first, its row count."""

    tally: Tally
    author_positions: dict[int, int]
    posts: int


def _check_version(job: Job) -> None:
    if code_version() != job.version:
        raise PipelineError(
            f"Dask worker runs pipeline code {code_version()[:12]}, the client {job.version[:12]}; install the same pipeline version on every worker"
        )


def clean_part(job: Job, part: int, relatives: list[str]) -> Cleaned:
    """Task 1: every per-post stage on one partition (``runner.clean_doc``, as the local engine)."""
    _check_version(job)
    cache_ = Cache.open(job.config)
    done = [clean_doc(read_place_doc(job.raw, relative, job.config.resolve.max_bytes), job.config, cache_) for relative in relatives]
    _put_pickle(job.tmp, job.work("clean", part), done)
    return Cleaned(
        kinds="".join(_kind(d.doc) for d in done),
        entries=tuple(d.post.entry for d in done if d.post is not None),
        categories=frozenset(c for d in done if d.doc.row is not None for c in d.doc.row.categories),
        cache_hits=sum(d.cached for d in done),
    )


def _kind(doc: Doc) -> str:
    # As vocabulary.with_learned_categories decides what to hold back until the end.
    if doc.fatal:
        return _QUARANTINED
    return _HELD if needs_vocabulary(doc) else _POST


def rebuild_held(job: Job, part: int, learned: frozenset[str]) -> tuple[Entry, ...]:
    """Task 2: the partition's held-back posts with the archive's category names applied."""
    _check_version(job)
    done: list[Done] = _get_pickle(job.tmp, job.work("clean", part))
    rebuilt = []
    for item in done:
        if _kind(item.doc) == _HELD:
            doc = apply_vocabulary(item.doc, learned)
            rebuilt.append(Done(doc, build_post(doc, job.config)))  # what runner._rebuild does
    _put_pickle(job.tmp, job.work("held", part), rebuilt)
    return tuple(d.post.entry for d in rebuilt if d.post is not None)


_loaded_index: dict[str, SiteIndex] = {}


def _index(job: Job) -> SiteIndex:
    # Loaded once per worker process and run, not shipped with every task.
    index = _loaded_index.get(job.run)
    if index is None:  # a local, not a second lookup: another thread of the worker may clear the dict
        index = _get_pickle(job.tmp, job.tmp.join(_WORK, "index.pickle"))
        _loaded_index.clear()
        _loaded_index[job.run] = index
    return index


def _stream(job: Job, part: int, first_post: int, first_held: int) -> Iterator[tuple[int, Done]]:
    """The partition's posts with their place in the local engine's stream (held-back ones last)."""
    done: list[Done] = _get_pickle(job.tmp, job.work("clean", part))
    in_place = [d for d in done if _kind(d.doc) != _HELD]
    yield from enumerate(in_place, start=first_post)
    if len(in_place) < len(done):
        yield from enumerate(_get_pickle(job.tmp, job.work("held", part)), start=first_held)


def finish_part(job: Job, part: int, first_post: int, first_held: int) -> list[tuple[int, FinalPost]]:
    """Task 3: second pass (``finish_post``) on one partition; returns what the claims need."""
    _check_version(job)
    index = _index(job)
    finished = []
    claims = []
    for position, item in _stream(job, part, first_post, first_held):
        final = finish_post(item.post, index, job.config) if item.post is not None else None
        finished.append((position, item.doc, final))
        if final is not None:
            claims.append((position, _claim_view(final)))
    _put_pickle(job.tmp, job.work("finish", part), finished)
    return claims


def _claim_view(final: FinalPost) -> FinalPost:
    """The part of a post the run-wide claims read: its name, old URLs and problem codes."""
    row = {key: final.row[key] for key in ("source_path", "output_path", "problems")}
    return FinalPost(row, final.file_name, None, (), (), final.redirects)


def _with_claim(final: FinalPost, claim: FinalPost) -> FinalPost:
    """The post with what the claims decided on its view: name, output path, old URLs, problems."""
    return evolve(final, row={**final.row, **claim.row}, file_name=claim.file_name, redirects=claim.redirects, problems=(*final.problems, *claim.problems))


def write_part(job: Job, part: int, claims: dict[str, FinalPost]) -> Written:
    """Task 4: the partition's Markdown files and Parquet parts, and its tally."""
    _check_version(job)
    config = job.config
    finished: list[tuple[int, Doc, FinalPost | None]] = _get_pickle(job.tmp, job.work("finish", part))
    tally = Tally(side=config.resolve.side)
    authors: dict[int, int] = {}
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    markdown: list[tuple[str, bytes]] = []
    # As the local Exporter.finish loop, on this partition's posts (the same table_rows).
    for position, doc, final in finished:
        if final is not None and doc.source_path in claims:
            final = _with_claim(final, claims[doc.source_path])
        tally.add(doc, final)
        for table, table_part in table_rows(doc, final).items():
            rows[table].extend(table_part)
        if final is None:
            continue
        if final.row["wp_author_id"] is not None:
            authors.setdefault(final.row["wp_author_id"], position)
        if final.markdown is not None and final.file_name is not None:
            markdown.append((job.tmp.join("posts", final.file_name), final.markdown.encode("utf-8")))
    with ThreadPoolExecutor(_WRITE_THREADS) as pool:
        list(pool.map(lambda item: _put(job.tmp, *item), markdown))  # list(): raise the first error here
    for name, schema in TABLES.items():
        data = _parquet_bytes(rows[name], schema, group_rows(name, config.export.batch_size))
        _put(job.tmp, job.tmp.join(f"{name}.parquet", f"part-{part:05d}.parquet"), data)
    return Written(tally, authors, len(rows["posts"]))


# --- the client --------------------------------------------------------------------------


def run_dask(
    raw_url: str | Path,
    out_url: str | Path,
    config: Config,
    progress: Progress | None = None,
    stats: dict[str, int] | None = None,
    metrics_dir: Path | None = None,
    client: Client | None = None,
    partition: int | None = None,
) -> dict[str, Any]:
    """Run every stage on ``raw_url`` with Dask and write the export outputs to ``out_url``.

    ``client``: an existing Dask client; otherwise ``run.scheduler`` is joined, or a local
    cluster of ``run.workers`` processes is started for the run. ``partition``: posts per
    task (default: ``partition_size``). Returns report.json's content, as ``run_pipeline``.
    """
    raw, out = Place.of(raw_url), Place.of(out_url)
    relatives = discover_place(raw)
    with _client(config, client, raw.in_process or out.in_process) as dask:
        target = OutputDir(out)
        try:
            job = Job(raw, target.tmp, config, code_version(), uuid.uuid4().hex[:12])
            report, tally = _run(dask, job, relatives, partition, progress, stats)
        except BaseException:
            target.abandon()
            raise
        target.commit()
    if metrics_dir is not None:
        write_metrics(metrics_dir, report, tally.per_year_rows())
    return report


@contextmanager
def _client(config: Config, given: Client | None, in_process: bool) -> Iterator[Client]:
    if given is not None:
        yield given
        return
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("run.engine", "dask is not installed; pip install 'wp-archive-pipeline[dask]' or use run.engine: local") from None
    if config.run.scheduler:
        if in_process:
            raise ConfigError("run.scheduler", "memory:// lives in this process only and a cluster's workers cannot see it; use a shared disk or s3://")
        try:
            client = Client(config.run.scheduler, timeout=_CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as err:
            raise ConfigError(
                "run.scheduler", f"cannot reach the Dask scheduler at {config.run.scheduler} ({err}); start it or leave run.scheduler empty for a local cluster"
            ) from None
        with client:
            yield client
        return
    workers = worker_count(config)
    # Processes, one thread each: the per-post work is pure Python and holds the GIL. An
    # in-memory filesystem is private to this process, so it gets one worker of threads.
    # The workers' sampling profiler (for a dashboard nobody watches here) costs ~10% of a task.
    with dask.config.set({"distributed.worker.profile.enabled": False}):
        cluster = LocalCluster(
            n_workers=1 if in_process else workers,
            threads_per_worker=workers if in_process else 1,
            processes=not in_process,
            dashboard_address=":0",  # None still binds the scheduler's HTTP server to 8787, which another cluster may hold
            silence_logs=logging.ERROR,
        )
    with cluster, Client(cluster) as client:
        yield client


def _run(
    client: Client, job: Job, relatives: list[str], partition: int | None, progress: Progress | None, stats: dict[str, int] | None
) -> tuple[dict[str, Any], Tally]:
    times = stats if stats is not None else {}
    threads = sum(client.nthreads().values()) or 1
    size = partition or partition_size(len(relatives), threads)
    chunks = [relatives[start : start + size] for start in range(0, len(relatives), size)] or [[]]
    fs = job.tmp.fs
    for folder in ("posts", *(f"{name}.parquet" for name in TABLES), *(f"{_WORK}/{kind}" for kind in ("clean", "held", "finish", "tmp"))):
        fs.makedirs(job.tmp.join(folder), exist_ok=True)
    tasks = _Tasks(client, job, len(chunks))
    with _timed(times, "clean"):
        summaries = _clean(tasks, chunks, len(relatives), progress)
    if stats is not None:
        stats["cache_hits"] = stats.get("cache_hits", 0) + sum(c.cache_hits for c in summaries)
    with _timed(times, "index"):
        first_post, first_held, total = _settle_index(tasks, summaries)
    with _timed(times, "finish"):
        views = tasks.gather(tasks.map("finish", finish_part, first_post, first_held))
    with _timed(times, "claims"):
        decided, redirects = _claims(views, total, len(chunks))
    with _timed(times, "write"):
        written: list[Written] = tasks.gather(tasks.map("write", write_part, decided))
    with _timed(times, "report"):
        tally = merge_tallies(written, job.config.resolve.side)
        report = _write_run_files(job, tally, redirects, sum(w.posts for w in written), len(relatives))
    fs.rm(job.tmp.join(_WORK), recursive=True)
    return report, tally


@contextmanager
def _timed(times: dict[str, int], phase: str) -> Iterator[None]:
    # Milliseconds per phase in ``stats`` (dask_<phase>_ms): where a run's time goes, for docs/DASK.md.
    started = time.perf_counter()
    yield
    times[f"dask_{phase}_ms"] = round((time.perf_counter() - started) * 1000)


class _Tasks:
    """Maps a step over the run's partitions (or some of them) with keys unique to the run."""

    def __init__(self, client: Client, job: Job, partitions: int) -> None:
        self.client, self.job, self.partitions = client, job, partitions

    def map(self, step: str, function: Any, *per_part: Sequence[Any], parts: Sequence[int] | None = None) -> list[Any]:
        which = list(range(self.partitions)) if parts is None else list(parts)
        # Unique per run: Dask would hand back a finished task of the same key from an earlier run.
        keys = [f"pipeline-{step}-{self.job.run}-{part:05d}" for part in which]
        futures: list[Any] = self.client.map(function, [self.job] * len(which), which, *per_part, key=keys, retries=_TASK_RETRIES)
        return futures

    def gather(self, futures: list[Any]) -> list[Any]:
        results: list[Any] = self.client.gather(futures)
        return results


def _clean(tasks: _Tasks, chunks: list[list[str]], inputs: int, progress: Progress | None) -> list[Cleaned]:
    from distributed import as_completed

    futures = tasks.map("clean", clean_part, chunks)
    part_of = {future.key: part for part, future in enumerate(futures)}
    cleaned: dict[int, Cleaned] = {}
    count = 0
    for future in as_completed(futures):
        result = cleaned[part_of[future.key]] = future.result()
        count += len(result.kinds)
        if progress is not None:
            progress(count, inputs)
    return [cleaned[part] for part in range(len(chunks))]


def _settle_index(tasks: _Tasks, summaries: list[Cleaned]) -> tuple[list[int], list[int], int]:
    """Rebuild the held-back posts, then settle the SiteIndex of every post, in stream order.

    Returns where each partition's posts and held-back posts start in the stream, and its length.
    """
    # The held-back posts wait for every row's categories, as in vocabulary.with_learned_categories.
    learned = frozenset().union(*(c.categories for c in summaries))
    with_held = [part for part, summary in enumerate(summaries) if _HELD in summary.kinds]
    rebuilt = tasks.gather(tasks.map("held", rebuild_held, [learned] * len(with_held), parts=with_held))
    held_entries: dict[int, tuple[Entry, ...]] = dict(zip(with_held, rebuilt, strict=True))
    # The local engine's stream order: posts in input order, held-back ones after all of them.
    first_post, first_held = [], []
    next_post = 0
    next_held = sum(len(c.kinds) - c.kinds.count(_HELD) for c in summaries)
    index = SiteIndex(extra_hosts=tuple(tasks.job.config.export.site_hosts))
    held_ordered: list[Entry] = []
    for part, summary in enumerate(summaries):
        first_post.append(next_post)
        first_held.append(next_held)
        entries = iter(summary.entries)
        for kind in summary.kinds:
            if kind == _POST:
                index.add(evolve(next(entries), order=next_post))
            next_post += kind != _HELD
        for entry in held_entries.get(part, ()):
            held_ordered.append(evolve(entry, order=next_held))
            next_held += 1
    for entry in held_ordered:
        index.add(entry)
    index.settle()
    _put_pickle(tasks.job.tmp, tasks.job.tmp.join(_WORK, "index.pickle"), index)
    return first_post, first_held, next_held


def _claims(per_part: list[list[tuple[int, FinalPost]]], total: int, partitions: int) -> tuple[list[dict[str, FinalPost]], dict[str, str]]:
    """File names and old URLs claimed in stream order, as the local Exporter claims them.

    Returns, per partition, the posts whose claim changed something (rare), and the redirects.
    """
    views: list[tuple[int, FinalPost] | None] = [None] * total
    for part, claims in enumerate(per_part):
        for position, view in claims:
            views[position] = (part, view)
    names: set[str] = set()
    redirects: dict[str, str] = {}
    decided: list[dict[str, FinalPost]] = [{} for _ in range(partitions)]
    for slot in views:
        if slot is None:
            continue
        part, view = slot
        claimed = claim_redirects(claim_file_name(view, names), redirects)
        if claimed is not view:  # a colliding file name or old URL; its problems are the new ones
            decided[part][view.row["source_path"]] = claimed
    return decided, redirects


def _write_run_files(job: Job, tally: Tally, redirects: dict[str, str], posts_rows: int, inputs: int) -> dict[str, Any]:
    """authors.parquet, redirects.csv and report.json, after the accounting and the posts rules hold."""
    _put(job.tmp, job.tmp.join("authors.parquet"), _parquet_bytes(tally.author_rows(), AUTHORS_SCHEMA, job.config.export.batch_size))
    _put(job.tmp, job.tmp.join("redirects.csv"), "".join(redirects_csv(sorted(redirects.items()))).encode("utf-8"))
    report = tally.report()
    if not report["accounting_ok"] or posts_rows != report["cleaned"] or report["inputs"] != inputs:
        raise AccountingError(inputs, report["cleaned"], report["quarantined"])
    validate_dataset(job.tmp.child("posts.parquet"))
    _put(job.tmp, job.tmp.join("report.json"), json_text(report).encode("utf-8"))
    return report


def merge_tallies(parts: Sequence[Written], side: str) -> Tally:
    """One Tally from the partitions' tallies: counts added, each author's first post in stream order.

    Every field of ``Tally`` must have a rule here; a new field without one fails loudly
    instead of being dropped from report.json.
    """
    total = Tally(side=side)
    first: dict[int, int] = {}
    for written in parts:
        tally = written.tally
        for spec in fields(Tally):
            name = spec.name
            mine, theirs = getattr(total, name), getattr(tally, name)
            if name == "side":
                continue
            if name == "authors":
                for author_id, entry in theirs.items():
                    position = written.author_positions[author_id]
                    if author_id not in mine or position < first[author_id]:
                        count = mine[author_id]["post_count"] if author_id in mine else 0
                        mine[author_id] = {**entry, "post_count": count}
                        first[author_id] = position
                    mine[author_id]["post_count"] += entry["post_count"]
            elif name == "per_year":
                for year, counts in theirs.items():
                    mine.setdefault(year, Counter()).update(counts)
            elif isinstance(mine, Counter):
                mine.update(theirs)
            elif isinstance(mine, int) and not isinstance(mine, bool):
                setattr(total, name, mine + theirs)
            else:
                raise TypeError(f"Tally.{name}: no rule to merge it; add one to engine_dask.merge_tallies")
    return total


def validate_dataset(posts: Place) -> None:
    """``tables.validate_posts`` for a partitioned posts.parquet: each part's schema, then the rules."""
    fs = posts.fs
    rows: list[dict[str, Any]] = []
    for path in sorted(fs.find(posts.path)):
        with fs.open(path, "rb") as handle:
            parquet = pq.ParquetFile(handle)
            if not parquet.schema_arrow.equals(POSTS_SCHEMA):
                raise OutputInvalid("posts.parquet", "schema differs from POSTS_SCHEMA", [path])
            rows.extend(parquet.read(columns=POST_RULE_COLUMNS).to_pylist())
    check_post_rules(rows, "posts.parquet")


def read_table(url: str | Path, name: str) -> pa.Table:
    """An output table (``posts``, ``links``...) of a run of either engine, as one pyarrow Table."""
    place = Place.of(url).child(f"{name}.parquet")
    if place.local:
        return pq.read_table(place.path)
    return pq.read_table(place.path, filesystem=place.fs)
