"""The command line: arguments, messages and exit codes. All printing happens here.

Exit codes: 0 done; 1 done but ``--strict`` and something was quarantined or a problem of
error severity was found (or the accounting failed); 2 bad usage or config.
"""

from __future__ import annotations

import argparse
import atexit
import ctypes
import errno
import gc
import json
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Final, NoReturn

import pipeline
from pipeline import __version__
from pipeline.config import Config, load_config
from pipeline.errors import ConfigError, PipelineError
from pipeline.explain import explain_post
from pipeline.io import InputNotices, InputSnapshot, compare_trees, forget_run_log, load_params, read_input, scratch_dir, snapshot_inputs, write_json_file
from pipeline.runner import compare_sides, run_export, run_first_stage, run_middle_stage, run_pipeline
from pipeline.watch import Settled, settled_changes

EXAMPLES = {
    "run": "example: pipeline run --raw ../shared/corpus/transportsdufutur-blog/_posts --out clean --side ours",
    "resolve": "example: pipeline resolve --raw raw --out data/01_resolve",
    "decode": "example: pipeline decode --in data/01_resolve --out data/02_decode",
    "extract": "example: pipeline extract --in data/02_decode --out data/03_extract",
    "export": "example: pipeline export --in data/03_extract --out clean",
    "explain": "example: pipeline explain ../shared/corpus/transportsdufutur-blog/_posts/2021-01-26-made-for-you.md",
    "report": "example: pipeline report --out clean   (then open clean/report.html in a browser)",
    "sides": "example: pipeline sides --raw ../shared/corpus/transportsdufutur-blog/_posts --report sides.json",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pipeline",
        description="Clean a WordPress-to-Jekyll blog archive with git conflicts into Parquet and Markdown.",
    )
    parser.add_argument("--version", action="version", version=f"pipeline {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES[name])
        sub.add_argument("--params", type=Path, default=Path("params.yaml"), help="settings file (default: params.yaml)")
        sub.add_argument("-q", "--quiet", action="store_true", help="print errors only")
        sub.add_argument("-v", "--verbose", action="store_true", help="also print counts by problem code and by step")
        sub.add_argument("--log-format", choices=("text", "json"), default="text", help="json: one JSON object per message on stderr, for CI logs")
        if name in ("run", "resolve", "decode", "extract", "export"):
            sub.add_argument("--dry-run", action="store_true", help="write into a scratch folder and report what would change in --out")
        return sub

    run = add("run", "Run all four stages in one process: raw folder to cleaned outputs.")
    run.add_argument("--raw", type=_folder, default="raw", help="input folder (default: raw); with --engine dask also an fsspec URL (s3://bucket/_posts)")
    run.add_argument("--out", type=_folder, default="clean", help="output folder (default: clean); with --engine dask also an fsspec URL")
    run.add_argument("--side", choices=("ours", "theirs"), help="conflict side to keep (overrides resolve.side)")
    run.add_argument("--strict", action="store_true", help="exit 1 if a post is quarantined or has an error")
    run.add_argument("--metrics", type=Path, help="also write DVC metrics and plots (report.json, per_year.csv) to this folder")
    run.add_argument("--cache", type=Path, help="per-file result cache: a rerun reworks only changed inputs (overrides run.cache_dir)")
    run.add_argument("--engine", choices=("local", "dask"), help="local process pool or a Dask cluster (overrides run.engine; see docs/DASK.md)")
    run.add_argument("--scheduler", metavar="ADDRESS", help="engine dask: join this scheduler (tcp://host:8786), not a local cluster (overrides run.scheduler)")
    run.add_argument(
        "--watch",
        action="store_true",
        help="keep running: whenever the inputs or the params file change, run again, reworking only what changed (needs --cache); Ctrl-C stops",
    )
    run.add_argument(
        "--poll",
        action="store_true",
        help="--watch: look at the inputs at the pace --interval sets rather than wait for the system's notices of changes "
        "(for a network file system written from other machines, which sends none)",
    )
    run.add_argument(
        "--interval",
        type=_seconds,
        default=0.25,
        metavar="SECONDS",
        help="--watch: how long the inputs must be still before a run (default 0.25); where the system does not tell of changes, "
        "the pause between two looks at them (longer on large folders, so that looking takes at most a fifth of a core)",
    )

    resolve = add("resolve", "Stage 1: remove conflict blocks; write data/01_resolve.")
    resolve.add_argument("--raw", type=Path, default=Path("raw"), help="input folder (default: raw)")
    resolve.add_argument("--out", type=Path, required=True, help="stage output folder")
    resolve.add_argument("--side", choices=("ours", "theirs"), help="conflict side to keep (overrides resolve.side)")
    for name, text in (
        ("decode", "Stage 2: decode escapes, mojibake and Excel debris."),
        ("extract", "Stage 3: cut and parse the WordPress export row."),
    ):
        sub = add(name, text)
        sub.add_argument("--in", dest="in_dir", type=Path, required=True, help="previous stage's folder")
        sub.add_argument("--out", type=Path, required=True, help="stage output folder")
    export = add("export", "Stage 4: write posts.parquet, Markdown and the reports.")
    export.add_argument("--in", dest="in_dir", type=Path, required=True, help="extract stage's folder")
    export.add_argument("--out", type=Path, default=Path("clean"), help="output folder (default: clean)")
    export.add_argument("--strict", action="store_true", help="exit 1 if a post is quarantined or has an error")
    export.add_argument("--metrics", type=Path, help="also write DVC metrics and plots (report.json, per_year.csv) to this folder")
    explain = add("explain", "Show what every stage does to one raw post, as diffs, with its problems and export row; writes nothing.")
    explain.add_argument("path", type=Path, help="a raw post file")
    explain.add_argument("--side", choices=("ours", "theirs"), help="conflict side to keep (overrides resolve.side)")
    report = add("report", "Write OUT/report.html: the data-quality report of an output folder, one self-contained page with plots.")
    report.add_argument("--out", type=Path, default=Path("clean"), help="output folder of a run, with its report.json (default: clean); needs no params")
    sides = add("sides", "Clean with ours and with theirs (writing nothing else) and report where posts differ.")
    sides.add_argument("--raw", type=Path, default=Path("raw"), help="input folder (default: raw)")
    sides.add_argument("--report", type=Path, help="write the differences as JSON to this file")
    sides.add_argument("--strict", action="store_true", help="exit 1 if any post differs between the sides")
    return parser


def run() -> NoReturn:
    """The ``pipeline`` command: ``main``, then an exit that skips the interpreter's teardown.

    Python's teardown frees every object one at a time (pyarrow's and numpy's modules, a
    run's index) and collects the whole heap once more, for memory the system takes back at
    once anyway: skipping it took the archive's run from 1.335 to 1.21 s (CPU 2.26 → 2.12 s,
    medians of 10 alternating runs on a busy machine). What teardown would do that matters
    still happens, in the interpreter's order: threads that are not daemons are waited for,
    the exit handlers run (multiprocessing's, ``weakref.finalize``'s, logging's) and the
    standard streams are flushed. Every output file is closed before ``main`` returns; an
    unexpected exception still goes through the normal exit. Its process imports pyarrow
    without numpy and the other modules ``pipeline.COMMAND_ARROW_WITHOUT`` names.
    """
    pipeline.ARROW_WITHOUT = pipeline.COMMAND_ARROW_WITHOUT
    try:
        code = main()
    except SystemExit as done:  # argparse: --help, --version, a bad flag
        code = done.code if isinstance(done.code, int) else 0 if done.code is None else _say_exit(done.code)
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe or stream: nothing more can be said
            stream.flush()
    os._exit(code)


def _say_exit(message: object) -> int:
    print(message, file=sys.stderr)  # what sys.exit does with a message
    return 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _steady_heap()
    try:
        if args.command == "report":
            return _report(args)
        config = _config(args)
        with _bulk_gc():
            if getattr(args, "watch", False):
                return _watch(args, config)
            return _dispatch(args, config)
    except PipelineError as err:
        _say(args, "error", f"error: {err}")
        return err.exit_code
    except OSError as err:
        if (refused := system_refusal(err)) is None:
            raise  # a bug's: its traceback says where
        _say(args, "error", f"error: {refused}")
        return 3
    except KeyboardInterrupt:
        # A full run writes a new folder swapped in at the end; a patch in place holds the
        # interruption until it is whole (io.signals_held): either way, no half-written output.
        _say(args, "error", "interrupted; the output folder is left whole")
        return 130


# What the system refuses for want of room, rights or a working disk, not for a bug: one
# line and exit code 3, never a traceback (a full disk was seen mid-run in session 19).
SYSTEM_REFUSALS: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EMFILE, errno.ENFILE})


def system_refusal(err: BaseException) -> str | None:
    """The one line for an ``OSError`` in ``SYSTEM_REFUSALS``; None for any other error.

    >>> system_refusal(OSError(errno.ENOSPC, "No space left on device", "clean/.spill.pickle"))
    'the system refused: No space left on device (clean/.spill.pickle); nothing in the output folder was replaced: free space or fix the rights, then run again'
    >>> system_refusal(OSError(errno.EINVAL, "Invalid argument")) is None
    True
    """
    if not isinstance(err, OSError) or err.errno not in SYSTEM_REFUSALS:
        return None
    where = f" ({err.filename})" if err.filename else ""
    return f"the system refused: {err.strerror}{where}; nothing in the output folder was replaced: free space or fix the rights, then run again"


def _config(args: argparse.Namespace) -> Config:
    """The params file, with the command line's overrides; a bad key or value is a ConfigError."""
    overrides: dict[str, Any] = {"resolve.side": args.side} if getattr(args, "side", None) else {}
    if getattr(args, "cache", None):
        overrides["run.cache_dir"] = str(args.cache)
    if getattr(args, "scheduler", None):
        overrides["run.scheduler"] = args.scheduler
        overrides.setdefault("run.engine", "dask")
    if getattr(args, "engine", None):
        overrides["run.engine"] = args.engine
    return load_config(load_params(args.params), overrides)


# glibc's mallopt parameter for the size from which malloc maps blocks of their own (malloc.h).
_M_MMAP_THRESHOLD: Final = -3
MMAP_THRESHOLD: Final = 256 * 1024


def _steady_heap() -> None:
    """Blocks of 256 KiB and more mapped on their own, so that the heap does not grow with the run.

    By default glibc raises that threshold to the size of every mapped block freed, up to
    32 MiB, and then serves the run's large transient buffers (windows of pickled posts,
    Arrow columns) from the heap. There they sit between small blocks that live to the end
    of the run, chiefly the metadata Arrow's Parquet writer keeps for each column chunk until
    it writes the footer (``tables.group_rows``), and the heap cannot reuse their room for the
    next, larger buffer: on 40,000 posts the main process's heap grew from 30 to 70 MiB with
    29 in use (``mallinfo2``). With the threshold fixed, a large block goes back to the system
    when freed. 100,000 posts: the main process peaked at 169 MiB against 193, its growth in
    the second pass went from 46 to 11 MiB; 64 KiB gave the same and cost 0.5 s more kernel
    time per 10,000 posts (BENCHMARKS.md). Left alone where ``MALLOC_MMAP_THRESHOLD_`` is set
    (the user chose) or there is no glibc; the forked workers inherit it.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


@contextmanager
def _bulk_gc() -> Iterator[None]:
    """Python's cycle collector tuned for bulk work, and put back afterwards.

    A run holds hundreds of thousands of live objects (index entries, a rerun's logged
    records), and by default the collector walks them again every 700 allocations: a
    100,000-post rerun with nothing changed took 18.5 s, 14.5 s like this (measured twice
    each, alternating). ``freeze`` also keeps the collector off the objects of the imports,
    which the forked workers then share without copying. The run makes few reference
    cycles, so collecting them less often costs no measurable memory (same peak RSS).
    """
    previous = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


def _say(args: argparse.Namespace, level: str, message: str, **fields: Any) -> None:
    """One message: text (results on stdout, the rest on stderr) or a JSON line on stderr."""
    if getattr(args, "quiet", False) and level != "error":
        return
    if level == "debug" and not getattr(args, "verbose", False):
        return
    if getattr(args, "log_format", "text") == "json":
        print(json.dumps({"level": level, "command": args.command, "message": message, **fields}, ensure_ascii=False, default=str), file=sys.stderr)
    elif level == "result":
        print(message)
    else:
        print(message if level in ("info", "debug") else f"pipeline {args.command}: {message}", file=sys.stderr)


def _report(args: argparse.Namespace) -> int:
    # Reads only the output folder, so no params are needed; matplotlib loads only here.
    from pipeline.report_html import write_report

    _say(args, "result", f"pipeline report: written to {write_report(args.out)}")
    return 0


def _dispatch(args: argparse.Namespace, config: Config) -> int:
    if getattr(args, "dry_run", False):
        return _dry_run(args, config)
    if args.command == "run":
        return _run(args, config)
    if args.command == "explain":
        print(explain_post(args.path.name, read_input(args.path), config), end="")
        return 0
    if args.command == "sides":
        return _sides(args, config)

    if args.command == "resolve":
        count = run_first_stage(args.raw, args.out, config)
    elif args.command in ("decode", "extract"):
        count = run_middle_stage(args.command, args.in_dir, args.out, config)
    else:
        return _finish(args, run_export(args.in_dir, args.out, config, args.metrics), args.out)
    _say(args, "result", f"pipeline {args.command}: {count} posts written to {args.out}", posts=count)
    return 0


def _run(args: argparse.Namespace, config: Config, listing: tuple[list[str], dict[str, int]] | None = None) -> int:
    stats: dict[str, int] = {}
    notes: list[str] = []
    report = _run_engine(args, config, args.out, _progress_bar(), stats, args.metrics, notes, listing)
    if config.run.cache_dir:
        how = "; ".join(notes)
        if "patched" in stats:
            done = f"previous output patched{' in place' if stats.get('in_place') else ''}, {stats['patched']} post(s) redone"
            how = f"{done}{f'; {how}' if how else ''}"
        reused = f"{stats.get('cache_hits', 0)}/{report['inputs']} inputs reused from {config.run.cache_dir}"
        _say(args, "info", f"cache: {reused}{f' ({how})' if how else ''}", **stats)
    return _finish(args, report, args.out)


def _watch(args: argparse.Namespace, config: Config) -> int:
    """``pipeline run --watch``: a run, then another each time the inputs or params settle
    after a change (``watch.settled_changes``), in this one process.

    A rerun here skips what a new process pays before its first step (the interpreter, the
    imports, 0.2 to 0.3 s), which is most of a small archive's rerun. The params are read
    again before each run; a broken params file or a failed run is reported and the watch
    goes on, waiting for the next change. Ctrl-C between runs stops it with the last run's
    exit code; during a run, as for ``pipeline run``: 130, the output folder whole. SIGTERM
    ends the process at once, but never half way through a patch in place (``io.signals_held``).
    """
    if args.dry_run:
        raise ConfigError("--watch", "writes --out at every change; it does not go with --dry-run")
    if not config.run.cache_dir:
        raise ConfigError("--watch", "reruns from the result cache: add --cache DIR (or set run.cache_dir)")
    if "://" in str(args.raw):
        raise ConfigError("--raw", f"--watch watches a local folder, not {args.raw}")
    hashes: dict[str, tuple[bytes, bytes]] = {}
    snapshots: list[InputSnapshot] = []  # the last one taken: what the change settled on, and the listing the run takes

    def snapshot() -> InputSnapshot:
        snapshots[:] = [snapshot_inputs(Path(args.raw), (args.params,), hashes)]
        return snapshots[0]

    notices = None if args.poll else InputNotices.open(Path(args.raw), (args.params,))
    try:
        return _watch_runs(args, settled_changes(snapshot, args.interval, notices=notices), snapshots, notices)
    finally:
        if notices is not None:
            notices.close()


def _watch_runs(args: argparse.Namespace, changes: Iterator[Settled], snapshots: list[InputSnapshot], notices: InputNotices | None) -> int:
    code, number = 0, 0
    while True:
        number += 1
        try:
            settled = next(changes)
        except KeyboardInterrupt:
            _say(args, "info", f"watch: stopped after {number - 1} run(s)", runs=number - 1)
            return code
        started = time.perf_counter()
        try:
            config = _config(args)  # read at each run: the params may have changed since
            last = snapshots[0] if snapshots else None
            listing = None if last is None or last.relatives is None or config.run.engine != "local" else (last.relatives, last.stamps)
            code = _run(args, config, listing)
        except PipelineError as err:
            if number == 1:
                raise  # a watch that cannot run once is a setup error: say so and stop
            _say(args, "error", f"error: {err}")
            code = err.exit_code
        except Exception as err:  # a bug or a full disk must not end a watch that ran before
            if number == 1:
                raise
            if (refused := system_refusal(err)) is not None:
                _say(args, "error", f"error: {refused}; the watch goes on")
                code = 3
            else:
                _say(args, "error", f"error: unexpected {type(err).__name__}: {err}; the watch goes on (please report this)\n{traceback.format_exc()}")
                code = 1
        seconds = time.perf_counter() - started
        how = "the system tells of changes" if notices is not None and notices.reliable else "polling for changes"
        watching = f"watching {args.raw} and {args.params} ({how}; Ctrl-C stops)"
        seen = {"notice": " after a notice of change", "poll": " after a change seen by a poll"}.get(settled.seen_by, "")
        _say(args, "info", f"watch: run {number} took {seconds:.3f} s{seen}; {watching}", run=number, seconds=round(seconds, 4), seen_by=settled.seen_by)


def _dry_run(args: argparse.Namespace, config: Config) -> int:
    if "://" in str(args.out):
        raise ConfigError("--dry-run", f"compares with a local --out folder, not {args.out}; drop --dry-run or give a local folder")
    with scratch_dir() as scratch:
        target = scratch / "out"
        if args.command == "run":
            report = _run_engine(args, config, target)
            if config.run.cache_dir:
                forget_run_log(Path(config.run.cache_dir), target)  # the scratch folder goes; its log would only litter the cache
            summary = f"would clean {report['cleaned']} and quarantine {report['quarantined']} of {report['inputs']} inputs"
        elif args.command == "resolve":
            summary = f"would write {run_first_stage(args.raw, target, config)} resolved posts"
        elif args.command in ("decode", "extract"):
            summary = f"would write {run_middle_stage(args.command, args.in_dir, target, config)} posts"
        else:
            report = run_export(args.in_dir, target, config)
            summary = f"would clean {report['cleaned']} and quarantine {report['quarantined']} of {report['inputs']} inputs"
        changes = compare_trees(Path(args.out), target)
    counts = {kind: len(paths) for kind, paths in changes.items()}
    _say(
        args, "result", f"dry run: {summary}; in {args.out}: {counts['added']} files added, {counts['changed']} changed, {counts['removed']} removed", **counts
    )
    for kind, paths in changes.items():
        for path in paths[:5]:
            _say(args, "info", f"  {kind}: {path}", kind=kind, path=path)
    return 0


def _sides(args: argparse.Namespace, config: Config) -> int:
    result = compare_sides(args.raw, config)
    if args.report:
        write_json_file(args.report, result)
    _say(args, "result", f"{result['equal']}/{result['posts']} posts equal from ours and theirs on {len(result['fields_compared'])} fields")
    for difference in result["differences"][:20]:
        _say(args, "info", f"  {difference['source_path']}: {difference['field']}: ours {difference['ours']!r} / theirs {difference['theirs']!r}")
    return 1 if args.strict and result["differences"] else 0


def _progress_bar() -> Callable[[int, int], None] | None:
    """A one-line progress bar on a terminal (count, rate, time left); none in CI or a pipe."""
    if not sys.stderr.isatty() or os.environ.get("CI"):
        return None
    started = time.monotonic()
    shown = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - shown[0] < 0.2:
            return
        shown[0] = now
        rate = done / max(now - started, 1e-9)
        left = (total - done) / rate if rate else 0.0
        filled = int(30 * done / max(total, 1))
        end = "\n" if done == total else ""
        print(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} posts, {rate:,.0f}/s, {left:,.0f} s left ", end=end, file=sys.stderr, flush=True)

    return show


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"expected seconds between 0 and 3600, got {text!r}")
    return value


def _folder(text: str) -> str:
    """A folder argument: a path, or an fsspec URL kept as written (Path would fold its ``//``)."""
    return text if "://" in text else str(Path(text))


def _run_engine(
    args: argparse.Namespace,
    config: Config,
    out: str | Path,
    progress: Callable[[int, int], None] | None = None,
    stats: dict[str, int] | None = None,
    metrics: Path | None = None,
    notes: list[str] | None = None,
    listing: tuple[list[str], dict[str, int]] | None = None,
) -> dict[str, Any]:
    """`pipeline run` on the configured engine; only the Dask engine reads and writes URLs."""
    if config.run.engine == "dask":
        try:
            from pipeline.engine_dask import run_dask  # an optional extra: imported only when asked for
        except ImportError as err:
            raise ConfigError("run.engine", f"the dask engine needs its extra ({err}); pip install 'wp-archive-pipeline[dask]'") from None
        return run_dask(args.raw, out, config, progress, stats, metrics)
    for flag, value in (("--raw", args.raw), ("--out", out)):
        if "://" in str(value):
            raise ConfigError(flag, f"{value} is a URL, which only --engine dask reads; give a local folder or add --engine dask")
    return run_pipeline(Path(args.raw), Path(out), config, progress, stats, metrics, notes, listing)


def _in(folder: Path | str, name: str) -> str:
    return f"{folder}/{name}" if "://" in str(folder) else str(Path(folder) / name)


def _finish(args: argparse.Namespace, report: dict[str, Any], out: Path | str) -> int:
    _say(
        args,
        "result",
        f"{report['inputs']} inputs: {report['cleaned']} cleaned, {report['quarantined']} quarantined; "
        f"{report['conflict_blocks']} conflict blocks resolved ({report['side']}); "
        f"{report['export_rows']} export rows; report in {_in(out, 'report.json')}",
        **{k: report[k] for k in ("inputs", "cleaned", "quarantined", "conflict_blocks", "export_rows")},
    )
    for reason, count in report["quarantine_reasons"].items():
        _say(args, "warning", f"quarantined: {count} x {reason} (see {_in(out, 'quarantine.parquet')})", reason=reason, count=count)
    for key in ("problems_by_code", "changes_by_step"):
        for name, count in report[key].items():
            _say(args, "debug", f"  {key}: {name}: {count}", name=name, count=count)
    errors = report["posts_by_severity"].get("error", 0)
    if args.strict and (report["quarantined"] or errors):
        _say(args, "error", f"strict: {report['quarantined']} quarantined, {errors} posts with errors (see {_in(out, 'problems.parquet')})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
