"""Two ways to run the same stage functions: all at once, or one stage per process (DVC).

``run_pipeline`` streams each post through every stage and straight into the export
writers, with no intermediate files. ``run_first_stage``, ``run_middle_stage`` and
``run_export`` read and write ``data/NN_stage/docs.parquet`` so that DVC can rerun one
stage. Both give the same outputs; a test proves it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from itertools import chain
from multiprocessing.pool import Pool
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pipeline.config import Config, RunParams
from pipeline.errors import PatchRefused
from pipeline.frozen import evolve
from pipeline.io import (
    Exporter,
    FinishMany,
    Logged,
    PickledPost,
    PreviousRun,
    ResultCache,
    RunLog,
    SecondPass,
    as_post,
    code_version,
    discover,
    patch_in_place,
    printable_path,
    read_doc,
    read_run_log,
    reading_ahead,
    stamp_inputs,
)
from pipeline.ondisk import SpillList
from pipeline.outputs import FinalPost, Post, build_post, finish_post
from pipeline.record import Doc, slim_doc
from pipeline.stages import STAGES, run_stage
from pipeline.vocabulary import needs_vocabulary, with_learned_categories

if TYPE_CHECKING:
    from pipeline.tables import Finished

STAGE_NAMES = tuple(name for name, _ in STAGES)
T = TypeVar("T")


def read_inputs(raw_dir: Path, config: Config) -> Iterator[Doc]:
    """Every input under ``raw_dir`` as a Doc, in sorted path order."""
    relatives = discover(raw_dir)
    with reading_ahead(raw_dir, relatives, config.run.read_ahead) as passed:
        yield from _passing((read_doc(raw_dir, relative, config.resolve.max_bytes) for relative in relatives), passed)


def process(docs: Iterable[Doc], config: Config, stages: tuple[str, ...] = STAGE_NAMES) -> Iterator[Doc]:
    """Docs through the named stages in order; after extract, the archive-wide category step."""
    for name in stages:
        docs = _apply(name, docs, config)
        if name == "extract":
            docs = with_learned_categories(docs, _same, _same, SpillList[Doc]())
    return iter(docs)


def _same(doc: Doc) -> Doc:
    return doc


def _apply(name: str, docs: Iterable[Doc], config: Config) -> Iterator[Doc]:
    for doc in docs:
        yield run_stage(name, doc, config)


@dataclass(frozen=True)
class Done:
    """A post after every stage, with its export values when they could be built already
    (``pickled`` instead of ``post`` when a worker process built them: ``PickledPost``)."""

    doc: Doc
    post: Post | None
    cached: bool = False
    pickled: PickledPost | None = None

    def built(self) -> Post | PickledPost | None:
        return self.pickled or self.post


def clean_one(raw_dir: Path, relative: str, config: Config, cache: Cache | None = None) -> Done:
    """All per-post work for one input: read, resolve, decode, extract, build its outputs.

    With a cache, a file whose bytes, path, params and code are unchanged is not reworked.
    """
    return clean_doc(read_doc(raw_dir, relative, config.resolve.max_bytes), config, cache)


def clean_doc(doc: Doc, config: Config, cache: Cache | None = None) -> Done:
    """``clean_one`` after the read: the Dask engine reads its inputs through fsspec, then calls this."""
    # An input that was not read (too large, unreadable) has no bytes to key on: every such
    # input would share the key of empty bytes, so it is never cached.
    cache = cache if doc.raw else None
    key = cache.key(doc) if cache is not None else ""
    if cache is not None and isinstance(hit := cache.store.get(key), Done):
        return evolve(hit, cached=True)
    for name in STAGE_NAMES:
        doc = run_stage(name, doc, config)
    post = None if doc.fatal or needs_vocabulary(doc) else build_post(doc, config)
    done = Done(doc if post is None else slim_doc(doc), post)
    if cache is not None:
        cache.store.put(key, done)
    return done


@dataclass(frozen=True)
class Cache:
    """The result cache of a run and what makes its keys: code version and params."""

    store: ResultCache
    salt: str

    @classmethod
    def open(cls, config: Config) -> Cache | None:
        if not config.run.cache_dir:
            return None
        params = json.dumps(asdict(evolve(config, run=RunParams())), sort_keys=True, default=str)
        return cls(ResultCache(Path(config.run.cache_dir)), hashlib.sha256(f"{code_version()}\0{params}".encode()).hexdigest())

    def key(self, doc: Doc) -> str:
        return hashlib.sha256(f"{self.salt}\0{doc.source_path}\0{doc.sha256}".encode()).hexdigest()


Progress = Callable[[int, int], None]


def run_pipeline(
    raw_dir: Path,
    out_dir: Path,
    config: Config,
    progress: Progress | None = None,
    stats: dict[str, int] | None = None,
    metrics_dir: Path | None = None,
    notes: list[str] | None = None,
    listing: tuple[list[str], dict[str, int]] | None = None,
) -> dict[str, Any]:
    """Run every stage on ``raw_dir`` and write the export outputs to ``out_dir``.

    The per-post work runs in ``run.workers`` processes; results come back in input order
    and are written by this process, so the outputs are byte-identical to a serial run.
    With a cache, a rerun first tries to patch the previous output (``patch_run``); when
    it cannot, ``notes`` get the reason and the run goes on in full, reusing cached posts.
    ``listing`` is the inputs and their stamps, taken before any was read, when the caller
    has them (a watch's last snapshot, ``io.snapshot_inputs``); otherwise they are taken here.
    """
    cache = Cache.open(config)
    if listing is not None:
        relatives, stamps = listing
        stamps = stamps if cache is not None else {}
    else:
        relatives = discover(raw_dir)
        stamps = {} if cache is None else stamp_inputs(raw_dir, relatives)  # before any input is read
    if cache is not None:
        try:
            return patch_run(raw_dir, relatives, out_dir, config, cache, progress, stats, metrics_dir, stamps, notes)
        except PatchRefused as refused:
            if notes is not None:
                notes.append(f"whole second pass: {refused.reason}")
    log = None if cache is None else RunLog(cache.store.directory, out_dir, cache.salt, stamps)
    exporter = _exporter(out_dir, config, metrics_dir, log)
    try:
        _first_pass(raw_dir, relatives, config, exporter, progress, stats)
        # The second pass reads the posts from the exporter, not the input list: let it go.
        # It is about 126 bytes an input (a million inputs: 120 MiB of this process), which
        # the second pass, where this process's memory peaks, would otherwise carry.
        del relatives
        if stats is not None:
            stats["spilled"] = exporter.spilled
        with _finisher(exporter.settle(), config, exporter.count) as finish_many:
            return exporter.finish(finish_many)
    except BaseException:
        exporter.abandon()  # the temporary folder and the log's temporary files go
        raise


def _first_pass(raw_dir: Path, relatives: list[str], config: Config, exporter: Exporter, progress: Progress | None, stats: dict[str, int] | None) -> None:
    """Every input cleaned and built (by the workers), and added to ``exporter`` in input order."""
    with _results(raw_dir, relatives, config) as results:
        redo = partial(_rebuild, config=config)
        for count, done in enumerate(with_learned_categories(results, _doc_of, redo, SpillList[Doc]()), start=1):
            exporter.add(done.doc, done.built())
            if stats is not None:
                stats["cache_hits"] = stats.get("cache_hits", 0) + done.cached
            if progress is not None:
                progress(count, len(relatives))


def _exporter(out_dir: Path, config: Config, metrics_dir: Path | None, log: RunLog | None) -> Exporter:
    try:
        return Exporter(out_dir, config, metrics_dir, log)
    except BaseException:
        if log is not None:
            log.abandon()
        raise


def patch_run(
    raw_dir: Path,
    relatives: list[str],
    out_dir: Path,
    config: Config,
    cache: Cache,
    progress: Progress | None = None,
    stats: dict[str, int] | None = None,
    metrics_dir: Path | None = None,
    stamps: dict[str, int] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """A rerun that reworks only the inputs that changed and patches the previous output.

    An input whose stamp (``stamp_inputs``, taken before this run read anything) is the
    one logged is unchanged; every other input is read and hashed. The changed ones go
    through all stages and both passes here, in this process; every other post keeps what
    the previous run made of it: its Markdown file (linked), its table rows (copied), its
    logged claims and counts. That holds only while a changed post cannot change another
    one, so it raises PatchRefused unless: the previous run of this folder is logged and
    the folder is as it left it; code and params are the same; no input was added or
    removed; at most an eighth changed; no changed input went into or out of quarantine, or
    waits for the archive's category names (``vocabulary``); the changed posts' category
    names, the settled site index (``SiteIndex.fingerprint``) and the changed posts' wanted
    file names and old URLs are what they were.

    Where no changed post changes its index entry, its claims or its rows' count either,
    the folder is patched in place (``io.patch_in_place``: only the changed posts' files
    and the tables' row groups that hold them are written); otherwise ``notes`` get the
    reason, and every unchanged post's claims, counts and rows are taken from the log into
    a new folder.
    """
    previous = read_run_log(cache.store.directory, out_dir)
    if previous is None:
        raise PatchRefused("no log of a previous run into this folder, or the folder changed since")
    if previous.salt != cache.salt:
        raise PatchRefused("the code or the params changed since the previous run")
    if not previous.records_whole():
        raise PatchRefused("the run log's records are unreadable (the file is not the size the log wrote)")
    position = {post[0]: i for i, post in enumerate(previous.posts)}  # by printable_path, as the log names posts
    if sorted(position) != sorted(map(printable_path, relatives)):
        raise PatchRefused("inputs were added or removed")
    stamps = stamps or {}
    fresh: dict[str, Done] = {}
    for count, relative in enumerate(relatives, start=1):
        _, old_sha256, old_quarantined, old_held, old_categories, old_stamp = previous.posts[position[printable_path(relative)]]
        unchanged = old_stamp is not None and stamps.get(relative) == old_stamp
        doc = None if unchanged else read_doc(raw_dir, relative, config.resolve.max_bytes)
        if doc is not None and (doc.sha256 != old_sha256 or not doc.raw):  # an unread input has no bytes to compare
            if len(fresh) >= max(1, len(relatives) // 8):
                raise PatchRefused("more than an eighth of the inputs changed")
            done = clean_doc(doc, config, cache)
            if bool(done.doc.fatal) != old_quarantined:
                raise PatchRefused(f"{done.doc.source_path} went into or out of quarantine")
            if needs_vocabulary(done.doc) or old_held:
                raise PatchRefused(f"{done.doc.source_path} waits for the archive's category names")
            if set(done.doc.row.categories if done.doc.row else ()) != set(old_categories):
                raise PatchRefused(f"{done.doc.source_path} changes the archive's category names")
            fresh[done.doc.source_path] = done
        if progress is not None:
            progress(count, len(relatives))
    changed = sorted((position[relative], done.doc, done.post) for relative, done in fresh.items())
    try:
        report = patch_in_place(previous, out_dir, config, changed, stamps, metrics_dir)
        in_place = True
    except PatchRefused as refused:
        if notes is not None:
            notes.append(f"not in place: {refused.reason}")
        log = RunLog(cache.store.directory, out_dir, cache.salt, stamps)
        exporter = _exporter(out_dir, config, metrics_dir, log)
        try:
            report = _patch_from_log(previous, out_dir, exporter, fresh, position, config)
        except BaseException:
            exporter.abandon()
            raise
        in_place = False
    if stats is not None:
        stats["cache_hits"] = stats.get("cache_hits", 0) + len(relatives) - len(fresh)
        stats["patched"] = len(fresh)
        if in_place:
            stats["in_place"] = 1
    return report


def _patch_from_log(
    previous: PreviousRun, out_dir: Path, exporter: Exporter, fresh: dict[str, Done], position: dict[str, int], config: Config
) -> dict[str, Any]:
    """The slower patch: every post's claims, counts and table rows again, from the log."""
    posts = {relative: evolve(done.post, entry=evolve(done.post.entry, order=position[relative])) for relative, done in fresh.items() if done.post is not None}
    fingerprint, logged_entries = previous.index()
    index = exporter.index  # settled into the exporter's database, which the log keeps
    for entry in logged_entries:
        index.add(posts[entry.source_path].entry if entry.source_path in posts else entry)
    index.settle()
    if index.fingerprint() != fingerprint:
        raise PatchRefused("a changed post changes the site index (slug, date, old URL, twin or link host)")

    def items() -> Iterator[tuple[Doc, FinalPost | None, Logged | None]]:
        for logged in previous.records():
            doc, _, light = logged[0]
            if doc.source_path not in fresh:
                yield doc, light, logged
                continue
            finished = None if doc.source_path not in posts else finish_post(posts[doc.source_path], index, config)
            if finished is not None and light is not None and (finished.file_name, finished.redirects) != (light.file_name, light.redirects):
                raise PatchRefused(f"{doc.source_path} now wants another file name or other old URLs")
            yield fresh[doc.source_path].doc, finished, None

    if exporter.log is not None:
        exporter.log.begin(fingerprint, index.entries())
    return exporter.patch(out_dir, items())


@contextmanager
def _finisher(second: SecondPass, config: Config, posts: int) -> Iterator[FinishMany | None]:
    """The second pass (``SecondPass.finish``) on worker processes (None: serially, here)."""
    workers = min(worker_count(config), max(1, posts // _MIN_POSTS_PER_WORKER))
    if workers == 1:
        yield None
        return
    # A new pool, forked once the index has settled: the workers inherit it without pickling.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with QuietPool(workers, _init_finisher, (second,), context=multiprocessing.get_context(method)) as pool:
        yield partial(_finish_in_pool, pool, workers)


class QuietPool(Pool):
    """multiprocessing's process pool, without its worker handler's busy loop.

    CPython's worker handler thread (``Pool._handle_workers``) sleeps in a ``wait`` on the
    worker processes' sentinels, the pool's notices and the result pipe
    (``Pool._get_sentinels``). While a result waits in that pipe for the result handler
    thread, the ``wait`` returns at once, and the handler polls every worker process and
    waits again, over and over: at 10,000 posts, most of the 1.4 s of CPU the pool's
    threads took in the main process during the second pass, fighting its main thread
    for the GIL. The handler acts only when a worker exits or the pool changes state, and
    both wake it without the result pipe: a worker's sentinel, the pool's notice queue
    (work drained, close, terminate).
    """

    def _get_sentinels(self) -> list[Any]:
        return [self._change_notifier._reader]  # type: ignore[attr-defined]  # CPython's own attribute, set in Pool.__init__


# Below this many posts per worker, starting processes costs more than it saves.
_MIN_POSTS_PER_WORKER = 64


def _init_finisher(second: SecondPass) -> None:
    _worker_state.update(second=second)


def _finish_in_pool(pool: Pool, workers: int, posts: list[Post | bytes]) -> Callable[[], Finished]:
    from pipeline.tables import Finished  # Arrow, imported where used (pipeline.tables)

    size = max(1, len(posts) // (workers * 4))
    parts = pool.map_async(_finish_in_worker, [posts[start : start + size] for start in range(0, len(posts), size)], chunksize=1)
    return lambda: Finished.join(parts.get())


def _finish_in_worker(posts: list[Post | bytes]) -> Finished:
    return cast(SecondPass, _worker_state["second"]).finish_chunk(posts)


def _doc_of(done: Done) -> Doc:
    return done.doc


def _rebuild(doc: Doc, config: Config) -> Done:
    post = None if doc.fatal else build_post(doc, config)
    return Done(doc if post is None else slim_doc(doc), post)


def worker_count(config: Config) -> int:
    return config.run.workers or os.cpu_count() or 1


@contextmanager
def _results(raw_dir: Path, relatives: list[str], config: Config) -> Iterator[Iterator[Done]]:
    workers = min(worker_count(config), max(1, len(relatives)))
    cache = Cache.open(config)
    if workers == 1:
        with reading_ahead(raw_dir, relatives, config.run.read_ahead) as passed:
            yield _passing((clean_one(raw_dir, relative, config, cache) for relative in relatives), passed)
        return
    # fork shares the imported modules; Arrow is not imported yet (pipeline.tables), so no
    # pyarrow thread pool exists at this point. (In a watch, a later full run forks after an
    # earlier run used Arrow; its pools and allocator reset themselves in a forked child,
    # and these workers call no Arrow code.)
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with QuietPool(workers, _init_worker, (raw_dir, config, cache), context=multiprocessing.get_context(method)) as pool:
        results = _ordered(pool, relatives, workers)
        # Started once the workers are forked (a fork copies no thread, and none runs then),
        # and before the import below, so that the hints run ahead of the first reads.
        with reading_ahead(raw_dir, relatives, config.run.read_ahead) as passed:
            # The workers have their first posts: this process imports Arrow meanwhile, which
            # only its second pass needs (0.05 s of CPU, once spent alone at start-up; less
            # is gained, as the import holds the GIL that the pool's result thread waits for).
            importlib.import_module("pipeline.tables")
            yield _passing(results, passed)


def _passing(items: Iterator[T], passed: Callable[[], None]) -> Iterator[T]:
    """The items, each telling the read-ahead that one more input has been read."""
    for item in items:
        passed()
        yield item


def _ordered(pool: Pool, relatives: list[str], workers: int) -> Iterator[Done]:
    """The results in input order; the first window is handed to the workers at once."""
    # Windows of inputs keep memory flat: at most one window of results waits to be written.
    chunk = max(1, min(64, len(relatives) // (workers * 8)))
    windows = (relatives[start : start + _WINDOW] for start in range(0, len(relatives), _WINDOW))
    first = pool.imap(_clean_in_worker, next(windows, []), chunksize=chunk)
    return chain(first, chain.from_iterable(pool.imap(_clean_in_worker, window, chunksize=chunk) for window in windows))


_WINDOW = 4096
_worker_state: dict[str, Any] = {}


def _init_worker(raw_dir: Path, config: Config, cache: Cache | None) -> None:
    _worker_state.update(raw_dir=raw_dir, config=config, cache=cache)


def _clean_in_worker(relative: str) -> Done:
    done = clean_one(_worker_state["raw_dir"], relative, _worker_state["config"], _worker_state["cache"])
    return evolve(done, post=None, pickled=PickledPost.of(done.post))


def run_first_stage(raw_dir: Path, out_dir: Path, config: Config) -> int:
    """resolve: read the raw folder, write resolved Docs."""
    return _write_docs(process(read_inputs(raw_dir, config), config, ("resolve",)), out_dir, config)


def run_middle_stage(name: str, in_dir: Path, out_dir: Path, config: Config) -> int:
    """decode or extract: read the previous stage's Docs, write this stage's."""
    from pipeline.tables import read_docs  # Arrow, imported where used (pipeline.tables)

    return _write_docs(process(read_docs(in_dir), config, (name,)), out_dir, config)


def run_export(in_dir: Path, out_dir: Path, config: Config, metrics_dir: Path | None = None) -> dict[str, Any]:
    """export: read extracted Docs, write the final outputs (and DVC metrics, if asked)."""
    from pipeline.tables import read_docs  # Arrow, imported where used (pipeline.tables)

    exporter = Exporter(out_dir, config, metrics_dir)
    try:
        for doc in read_docs(in_dir):
            exporter.add(doc)
    except BaseException:
        exporter.abandon()
        raise
    return exporter.finish()


def _write_docs(docs: Iterator[Doc], out_dir: Path, config: Config) -> int:
    from pipeline.tables import DocWriter  # Arrow, imported where used (pipeline.tables)

    writer = DocWriter(out_dir, config.export.batch_size)
    try:
        for doc in docs:
            writer.add(doc)
    except BaseException:
        writer.abandon()
        raise
    return writer.finish()


# Fields a post must get identically from either side of its conflicts; URL forms, raw row
# text and bodies may differ (theirs rewrote links), and so may the problems found.
CONVERGENCE_FIELDS = (
    *("slug", "title", "date", "author", "tags", "categories", "output_path"),
    *("wp_row_parse", "wp_post_date", "wp_terms", "wp_categories", "wp_tags", "wp_status", "wp_slug", "wp_modified"),
    *("wp_author_id", "wp_author_login", "wp_author_email", "wp_author_first_name", "wp_author_last_name"),
    *("wp_author_display_name", "wp_excerpt", "wp_spill"),
)


def compare_sides(raw_dir: Path, config: Config) -> dict[str, Any]:
    """Clean ``raw_dir`` keeping ours, then theirs, and list every field where a post differs.

    Nothing is written. Posts quarantined on either side are listed as differing.
    """
    relatives = discover(raw_dir)
    rows: dict[str, dict[str, dict[str, Any] | None]] = {printable_path(relative): {} for relative in relatives}
    for side in ("ours", "theirs"):
        sided = evolve(config, resolve=evolve(config.resolve, side=side))
        with _results(raw_dir, relatives, sided) as results:
            redo = partial(_rebuild, config=sided)
            for done in with_learned_categories(results, _doc_of, redo, SpillList[Doc]()):
                post = done.built()
                rows[done.doc.source_path][side] = as_post(post).row if post else None
    differences = []
    for relative, by_side in rows.items():
        ours, theirs = by_side["ours"], by_side["theirs"]
        if ours is None or theirs is None:
            differences.append({"source_path": relative, "field": "quarantined", "ours": ours is None, "theirs": theirs is None})
            continue
        differences.extend(
            {"source_path": relative, "field": key, "ours": str(ours[key]), "theirs": str(theirs[key])}
            for key in CONVERGENCE_FIELDS
            if ours[key] != theirs[key]
        )
    differing = {d["source_path"] for d in differences}
    return {
        "posts": len(relatives),
        "equal": len(relatives) - len(differing),
        "fields_compared": list(CONVERGENCE_FIELDS),
        "differences": differences,
    }
