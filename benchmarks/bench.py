"""Benchmark harness: ``pipeline run`` against the naive baseline, on the real and synthetic archives.

    python -m benchmarks.bench [--repeat 5] [--sizes 998,10000,100000] [--out BENCHMARKS.md]
                               [--pipeline-args "--params my.yaml"] [--baseline-on-synthetic]

Every command runs as a child process, measured from outside:

- wall time: ``time.perf_counter`` around the child, from spawn to reap;
- CPU time: user + system of the child and of every process it reaped (pool workers), from
  ``os.wait4``;
- peak RSS: ``ru_maxrss`` from ``os.wait4``, the largest single process of the tree; and
  Σ RSS, the largest sum of the resident sets of the whole tree, sampled every 50 ms from
  ``/proc`` (it counts pages shared by forked workers once per process, so it overstates).

1. Real archive (``../shared/corpus/.../_posts``; skipped with a message when absent): one
   untimed warm-up of each, then ``pipeline run`` and the baseline alternately, ``--repeat``
   times each, each run into a fresh output folder. Medians and the ratio baseline/pipeline.
2. Synthetic archives, one per ``--sizes`` entry, generated once (``--seed``) with
   ``benchmarks.synthetic``: ``pipeline run`` ``--repeat`` times up to 2,000 posts, at most 3
   up to 20,000, once above; the run's report is checked against the generator's counts.
3. Incremental rerun, on a copy of the real archive and on each synthetic archive: a full
   run, one input changed (a line appended to its body), a rerun into the same output
   folder, and a fresh full run into a new folder; the two output trees must be
   byte-identical. Then ``pipeline run --watch`` on the same folders, the same input edited
   up to 5 times under it: each rerun's time as the watch reports it, the time from the edit
   to that report, and its output compared with a fresh full run's.

The pipeline runs from the repository root, so its default ``params.yaml`` applies (its
``run`` section is recorded in the output); ``--pipeline-args`` is appended to every
``pipeline run``. Paths are resolved from this file, never from a fixed location.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from benchmarks.synthetic import generate
from pipeline.io import STAMP_MARGIN_NS
from pipeline.wordpress_row import has_glued_date

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus" / "transportsdufutur-blog" / "_posts"
BASELINE = SHARED / "bench" / "naive_baseline.py"
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = VENV_BIN / "python" if (VENV_BIN / "python").exists() else Path(sys.executable)
# Beside the repository's own outputs (clean/), not in the system's temporary folder: see
# probe_file_creation for why the folder matters on this machine.
SCRATCH = ROOT / "benchmarks" / "out"
MARKER = "<!-- Everything below this line is written by benchmarks/bench.py; edit above it. -->"
INTRO = """# Benchmarks

How fast `pipeline run` cleans an archive, next to the naive "afternoon script"
(`../shared/bench/naive_baseline.py`: one regex per defect, ftfy's default `fix_text`, pandas),
on the real archive (998 posts) and on synthetic archives with the same mix of defects
(`benchmarks/synthetic.py`, proportions from `../shared/corpus/DEFECTS.md`).

The baseline is a speed anchor, not a competitor on output: on the real archive it straightens
every curly apostrophe and quote (ftfy's default `fix_text`), leaves the unquoted export rows in
the body, glues the slug into the author field and writes no conflict, problem or author tables.

Every figure is a child process measured from outside: wall time from spawn to reap,
user+system CPU of the process and of the workers it reaped (`os.wait4`), peak RSS of the
largest process (`ru_maxrss`) and the sampled peak of the whole process tree's RSS. On the
real archive the two programs alternate, run by run, so that drift on the machine hits both
alike. A CPU/wall ratio well under 1 for a serial program means it waited: for the disk, or
for a CPU taken by other processes (see the load average). Regenerate with the command below;
the text above the marker line is kept.

Synthetic archives: `python -m benchmarks.synthetic OUT_DIR --posts N --seed S` writes N posts
with the archive's mix (tag-line conflicts with Python-repr vs `\\u00e9`-escaped JSON sides,
blocks swallowing the closing `---`, `_x000D_` debris and rewritten links on theirs, export rows
in every layout with CSV spills, twins, NBSP, curly quotes); `tests/test_synthetic.py` checks
that the pipeline's report finds exactly what the generator put in. Sizes are chosen with
`--sizes`; 100,000 posts (about 520 MB of Markdown) is only run when asked:
`.venv/bin/python -m benchmarks.bench --sizes 998,10000,100000`.

Two caveats for this machine: the figures move by ±30% with the other work running on it
(the load average is recorded), and the result cache keys on the pipeline's source, so an edit
of `pipeline/*.py` during a run empties the reruns' reuse (the run flags it).
"""
_REUSED = re.compile(r"cache: (\d+)/(\d+) inputs reused from \S+(?: \((.*)\))?$", re.MULTILINE)
# How the watch says it learns of changes, in the message of each run.
_LEARNS = re.compile(r"\((the system tells of changes|polling for changes); Ctrl-C stops\)")


@dataclass(frozen=True)
class Measure:
    """One child process, measured."""

    wall: float  # seconds
    cpu: float  # user + system seconds, reaped descendants included
    maxrss_kb: int  # largest single process
    tree_rss_kb: int  # largest sampled sum over the process tree
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Series:
    """Repeated measures of one command."""

    name: str
    runs: list[Measure] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return float(statistics.median(getattr(m, attribute) for m in self.runs))

    def spread(self, attribute: str) -> tuple[float, float]:
        values = [float(getattr(m, attribute)) for m in self.runs]
        return min(values), max(values)


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as handle:
                found += [int(x) for x in handle.read().split()]
    except OSError:
        pass
    return found


def _tree_rss_kb(root: int, page_kb: int) -> int:
    total, stack, seen = 0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            with open(f"/proc/{pid}/statm", encoding="ascii") as handle:
                total += int(handle.read().split()[1]) * page_kb
        except (OSError, IndexError, ValueError):
            continue
        stack += _children(pid)
    return total


def measure(command: Sequence[str | Path], cwd: Path = ROOT) -> Measure:
    """Run ``command`` as a child and measure wall time, CPU time and memory from outside."""
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    peak = [0]
    done = threading.Event()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen([str(x) for x in command], cwd=cwd, stdout=out, stderr=err)

        def sample() -> None:
            while not done.wait(0.05):
                peak[0] = max(peak[0], _tree_rss_kb(child.pid, page_kb))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Measure(
            wall=wall,
            cpu=usage.ru_utime + usage.ru_stime,
            maxrss_kb=usage.ru_maxrss,
            tree_rss_kb=max(peak[0], usage.ru_maxrss),
            returncode=child.returncode,
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
        )


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.extra = shlex.split(args.pipeline_args or "")
        pipeline = VENV_BIN / "pipeline"
        self.pipeline: list[str | Path] = [pipeline] if pipeline.exists() else [PYTHON, "-m", "pipeline"]
        self.sections: list[str] = []
        self.problems: list[str] = []
        self.incremental_rows: list[tuple[str, dict[str, Any]]] = []
        self.probes: list[float] = []
        self._fresh = 0
        self.aside = work / "set-aside"
        self.aside.mkdir()
        usage = subprocess.run([*map(str, self.pipeline), "run", "--help"], capture_output=True, text=True, check=False, cwd=ROOT).stdout
        self.has_cache = "--cache" in usage
        self.has_watch = "--watch" in usage and self.has_cache
        self.params_cache = bool(_run_params().get("cache_dir"))
        self.code_at_start = _code_fingerprint()

    # -- commands -----------------------------------------------------------------------

    def set_aside(self, folder: Path) -> None:
        """Move a finished run's folder out of the way; it is deleted once the benchmark ends.

        Deleting it here would tax the next run, whichever program it is: on this machine's
        ext4 (no journal), creating a file scans past every inode freed in the last 30 s
        (the kernel's ``recently_deleted``), so the 1,000 files of a run deleted just before
        cost the next run 0.3 to 0.9 s of kernel time (measured with ``perf``). Renaming frees
        no inode.
        """
        if folder.exists():
            self._fresh += 1
            folder.rename(self.aside / str(self._fresh))

    def fresh_dir(self, name: str) -> Path:
        self._fresh += 1
        return self.work / f"{name}-{self._fresh}"

    def run_pipeline(self, raw: Path, out: Path, cache: Path | None = None) -> Measure:
        """``pipeline run``; with ``cache`` (when the pipeline has ``--cache``) its result cache is that folder.

        Without ``cache``, a run is cold: if ``params.yaml`` names a cache folder, an empty one
        is passed instead, so that repeated runs never reuse each other's results.
        """
        if cache is None and self.params_cache:
            cache = self.fresh_dir("cold-cache")
        caching: list[str | Path] = ["--cache", cache] if cache is not None and self.has_cache else []
        m = measure([*self.pipeline, "run", "--raw", raw, "--out", out, *caching, *self.extra])
        if m.returncode != 0:
            self.fail(f"`pipeline run` exited {m.returncode} on {raw.name}: {m.stderr.strip()[-800:]}")
        return m

    def run_baseline(self, raw: Path, out: Path) -> Measure:
        m = measure([PYTHON, BASELINE, raw, out])
        if m.returncode != 0:
            self.fail(f"the baseline exited {m.returncode} on {raw.name}: {m.stderr.strip()[-800:]}")
        return m

    def fail(self, message: str) -> None:
        print(f"bench: {message}", file=sys.stderr)
        self.problems.append(message)

    def timed(self, series: Series, run: Callable[[Path], Measure], out: Path, keep: bool = False) -> Path:
        """One measured run into ``out``, added to ``series``; ``out`` is set aside unless ``keep``."""
        m = run(out)
        series.runs.append(m)
        print(
            f"  {series.name:<10} wall {m.wall:7.2f} s  cpu {m.cpu:7.2f} s  max RSS {m.maxrss_kb / 1024:6.0f} MiB  Σ RSS {m.tree_rss_kb / 1024:6.0f} MiB",
            flush=True,
        )
        if not keep:
            self.set_aside(out)
        return out

    # -- sections -----------------------------------------------------------------------

    def real_archive(self) -> Series | None:
        if not CORPUS.is_dir() or not BASELINE.is_file():
            message = f"Real archive skipped: `{_rel(CORPUS)}` or `{_rel(BASELINE)}` is absent (../shared is not beside this clone)."
            print(f"bench: {message}")
            self.sections.append(f"## Real archive\n\n{message}\n")
            return None
        posts = sum(1 for p in CORPUS.iterdir() if p.is_file())
        print(f"real archive: {posts} posts, {self.args.repeat} alternating runs each (after one warm-up each)", flush=True)
        for run in (self.run_pipeline, self.run_baseline):
            out = self.fresh_dir("warmup")
            run(CORPUS, out)
            self.set_aside(out)
        pipeline, baseline = Series("pipeline"), Series("baseline")
        for _ in range(self.args.repeat):
            self.timed(pipeline, partial(self.run_pipeline, CORPUS), self.fresh_dir("real-pipeline"))
            self.timed(baseline, partial(self.run_baseline, CORPUS), self.fresh_dir("real-baseline"))
        lines = [
            "## Real archive",
            "",
            f"`{_rel(CORPUS)}`: {posts} posts. {self.args.repeat} runs of each, alternating (after one untimed warm-up of each); "
            "median, with min–max in brackets.",
            "",
            "| program | wall (s) | CPU (s) | CPU / wall | peak RSS, largest process (MiB) | Σ RSS, process tree (MiB) | posts/s |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for series in (pipeline, baseline):
            lines.append(_row(series, posts))
        ratio = [baseline.median(a) / pipeline.median(a) for a in ("wall", "cpu", "maxrss_kb")]
        lines += [
            f"| **baseline / pipeline** | **{ratio[0]:.2f}×** | **{ratio[1]:.2f}×** | | **{ratio[2]:.2f}×** | | |",
            "",
            f"`pipeline run` command: `{_show([*self.pipeline, 'run', '--raw', CORPUS, '--out', 'OUT', *self.extra])}`  ",
            f"baseline command: `{_show([PYTHON, BASELINE, CORPUS, 'OUT'])}`",
            "",
        ]
        self.sections.append("\n".join(lines))
        return pipeline

    def synthetic(self, sizes: list[int]) -> None:
        if not sizes:
            return
        lines = [
            "## Synthetic archives",
            "",
            f"`python -m benchmarks.synthetic RAW --posts N --seed {self.args.seed}`, generated once per size (generation not timed "
            "in the table's runs). Repeats: all up to 2,000 posts, at most 3 up to 20,000, 1 above. The report of every run is "
            "checked against the generator's counts (accounting, conflict blocks, export rows by layout).",
            "",
            "| posts | MB | generate (s) | runs | wall (s) | CPU (s) | CPU / wall | peak RSS, largest process (MiB) | Σ RSS, process tree (MiB) "
            "| posts/s | counts match |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        baseline_lines: list[str] = []
        incremental: list[tuple[str, dict[str, Any]]] = []
        for n in sizes:
            raw = self.work / f"synthetic-{n}" / "raw"
            print(f"synthetic: generating {n} posts (seed {self.args.seed})", flush=True)
            start = time.perf_counter()
            counts = generate(raw, n, self.args.seed)
            generated = time.perf_counter() - start
            repeats = self.args.repeat if n <= 2000 else min(self.args.repeat, 3) if n <= 20000 else 1
            if n <= 2000:
                warm = self.fresh_dir("warmup")
                self.run_pipeline(raw, warm)
                self.set_aside(warm)
            series = Series("pipeline")
            baseline = Series("baseline")
            matches: list[bool] = []
            for _ in range(repeats):
                out = self.timed(series, partial(self.run_pipeline, raw), self.fresh_dir(f"synthetic-{n}-pipeline"), keep=True)
                matches.append(self.check_report(out, counts))
                self.set_aside(out)
                if self.args.baseline_on_synthetic:
                    self.timed(baseline, partial(self.run_baseline, raw), self.fresh_dir(f"synthetic-{n}-baseline"))
            wall, cpu = series.median("wall"), series.median("cpu")
            lo, hi = series.spread("wall")
            lines.append(
                f"| {n:,} | {counts['bytes'] / 1e6:.0f} | {generated:.1f} | {repeats} | {wall:.2f} [{lo:.2f}–{hi:.2f}] | {cpu:.2f} | {cpu / wall:.2f} "
                f"| {series.median('maxrss_kb') / 1024:.0f} | {series.median('tree_rss_kb') / 1024:.0f} | {n / wall:,.0f} "
                f"| {'yes' if all(matches) else '**no**'} |"
            )
            if baseline.runs:
                ratio = baseline.median("wall") / wall
                baseline_lines.append(f"{_row(baseline, n, label=f'baseline, {n:,} posts')[:-1]} ratio {ratio:.2f}× |")
            if not self.args.skip_incremental:
                incremental.append((f"synthetic, {n:,} posts", self.incremental(raw, series)))
            self.set_aside(raw.parent)
        if baseline_lines:
            lines += [
                "",
                "Baseline on the same synthetic archives, alternating with the pipeline runs above (last column: baseline/pipeline wall):",
                "",
                "| program | wall (s) | CPU (s) | CPU / wall | peak RSS, largest process (MiB) | Σ RSS, process tree (MiB) | posts/s |",
                "| --- | --- | --- | --- | --- | --- | --- |",
                *baseline_lines,
            ]
        lines.append("")
        self.sections.append("\n".join(lines))
        self.incremental_rows += incremental

    def check_report(self, out: Path, counts: dict[str, int]) -> bool:
        try:
            report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            self.fail(f"no report.json in {out}: {err}")
            return False
        rows = {k.removeprefix("rows."): v for k, v in counts.items() if k.startswith("rows.") and v}
        checks = {
            "accounting": report.get("accounting_ok") and report.get("inputs") == counts["posts"] and report.get("quarantined") == 0,
            "conflict blocks": report.get("conflict_blocks") == counts["blocks"],
            "export rows by layout": report.get("export_rows_by_parse") == rows,
        }
        for name, ok in checks.items():
            if not ok:
                self.fail(f"synthetic {counts['posts']} posts: {name} differs from the generator's counts (see {out / 'report.json'})")
        return all(checks.values())

    def incremental(self, raw: Path, reference: Series) -> dict[str, Any]:
        """Full run, rerun unchanged, change one input, rerun; compare with a fresh full run.

        With ``--cache`` the full run fills an empty cache folder and the reruns use it; the
        fresh run gets another empty one. Without it, the reruns just run into the same OUT.
        """
        cache, out = self.fresh_dir("cache"), self.fresh_dir("incremental")
        _let_inputs_age(raw)
        code_before = _code_fingerprint()
        full, noop, rerun, fresh = Series("full"), Series("no change"), Series("rerun"), Series("fresh")
        self.timed(full, partial(self.run_pipeline, raw, cache=cache), out, keep=True)
        self.timed(noop, partial(self.run_pipeline, raw, cache=cache), out, keep=True)
        changed = _pick_input(raw)
        with changed.open("a", encoding="utf-8") as handle:
            handle.write("\nLigne ajoutée par le benchmark pour mesurer la reprise incrémentale.\n")
        self.timed(rerun, partial(self.run_pipeline, raw, cache=cache), out, keep=True)
        fresh_out = self.timed(fresh, partial(self.run_pipeline, raw, cache=self.fresh_dir("cache")), self.fresh_dir("fresh"), keep=True)
        differences = compare_trees(out, fresh_out)
        self.set_aside(fresh_out)
        watch = self.watched(raw, out, cache, changed) if self.has_watch else None
        if _code_fingerprint() != code_before:
            self.fail("pipeline/*.py changed during the incremental measurement: the cache keys on the code, so the reruns may have reused nothing")
        for folder in (out, fresh_out, cache):
            self.set_aside(folder)
        if differences:
            self.fail(f"incremental rerun after changing {changed.name} differs from a fresh run: {', '.join(differences[:5])}")
        runs = {"reference": reference, "full": full, "noop": noop, "rerun": rerun, "fresh": fresh}
        return {**runs, "changed": changed.name, "differences": differences, "code_changed": _code_fingerprint() != code_before, "watch": watch}

    def watched(self, raw: Path, out: Path, cache: Path, changed: Path) -> dict[str, Any]:
        """``pipeline run --watch`` on the same folders: ``--repeat`` edits of one input (at
        most 5), each written aside and renamed over it as an editor saves, with the time of
        each rerun as the watch reports it and the time from the edit to that report; then
        Ctrl-C, and a fresh full run on the edited input to compare with."""
        command = [*map(str, self.pipeline), "run", "--watch", "--interval", "0.05", "--log-format", "json"]
        command += ["--raw", str(raw), "--out", str(out), "--cache", str(cache), *self.extra]
        # With Ctrl-C as at a terminal: a benchmark started in the background by a script
        # inherits SIGINT ignored, and the watch would not stop.
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)
        assert process.stderr is not None
        messages = (json.loads(line) for line in process.stderr)
        seconds: list[float] = []
        latencies: list[float] = []
        how: list[str] = []
        learns: list[str] = []  # as the watch says it learns of changes: the system's notices, or polling

        def until_run(number: int) -> None:
            for message in messages:
                found = _REUSED.search(message["message"])
                if found:
                    how.append(found[3] or "-")
                if message.get("run") == number:
                    seconds.append(message["seconds"])
                    learns.extend(_LEARNS.findall(message["message"])[:1])
                    return
                if message["level"] == "error":
                    raise RuntimeError(message["message"])
            raise RuntimeError(f"the watch ended with exit code {process.wait()}")

        print("  watch     ", end="", flush=True)
        try:
            until_run(1)
            seconds.clear()  # the first run only catches up
            text = changed.read_text(encoding="utf-8")
            for edit in range(min(self.args.repeat, 5)):
                text += f"\nLigne ajoutée par le benchmark, pendant --watch ({edit + 1}).\n"
                aside = changed.with_name(".bench-edit.tmp")
                aside.write_text(text, encoding="utf-8")
                saved = time.perf_counter()
                aside.replace(changed)
                until_run(edit + 2)
                latencies.append(time.perf_counter() - saved)
            peak_kb = _peak_rss_kb(process.pid)
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=120)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as err:
            process.kill()
            process.wait()
            self.fail(f"`pipeline run --watch` failed on {raw.name}: {err}")
            return {"seconds": seconds, "latencies": latencies, "how": how[1:], "learns": learns, "differences": ["(failed)"], "peak_kb": 0}
        fresh_out = self.fresh_dir("fresh-after-watch")
        self.run_pipeline(raw, fresh_out, cache=self.fresh_dir("cache"))
        differences = compare_trees(out, fresh_out)
        self.set_aside(fresh_out)
        if code != 0:
            self.fail(f"`pipeline run --watch` exited {code} after Ctrl-C")
        if differences:
            self.fail(f"the watch's output after {len(latencies)} edits of {changed.name} differs from a fresh run: {', '.join(differences[:5])}")
        print(f"reruns {' '.join(f'{x:.3f}' for x in seconds)} s; edit to report {' '.join(f'{x:.2f}' for x in latencies)} s", flush=True)
        return {"seconds": seconds, "latencies": latencies, "how": how[1:], "learns": learns, "differences": differences, "peak_kb": peak_kb}

    def real_incremental(self, reference: Series) -> None:
        raw = self.work / "real-copy" / "_posts"
        shutil.copytree(CORPUS, raw)
        print("incremental: real archive (a copy)", flush=True)
        self.incremental_rows.insert(0, ("real archive (a copy)", self.incremental(raw, reference)))
        self.set_aside(raw.parent)

    def incremental_section(self) -> None:
        if not self.incremental_rows:
            return
        lines = [
            "## Incremental rerun",
            "",
            (
                "A full run into OUT with `--cache CACHE` (both empty); the same run again, nothing changed; one input "
                "changed (a line appended to its body) and `pipeline run` again into the same OUT and CACHE (rerun); then "
                "a fresh full run on the changed input into an empty folder with an empty cache. The rerun's outputs must "
                "be byte-identical to the fresh run's (every file of both trees compared). One run of each; the uncached "
                "column is the median of the full runs above. A rerun patches the previous output when no change can "
                "reach another post (README, Running); the pipeline says so, or why not, in the column how. The inputs are "
                "at least 3 s old when the full run starts, as a user's are: a rerun reads again any input written in the "
                "last 3 s (`STAMP_MARGIN_NS`), and the real archive's copy is made just before."
                if self.has_cache
                else "This `pipeline run` has no `--cache`: the reruns simply run again into the same OUT. A full run into OUT; "
                "the same run again, nothing changed; one input changed (a line appended to its body) and a rerun into "
                "the same OUT; then a fresh full run on the changed input into an empty folder. The rerun's outputs must "
                "be byte-identical to the fresh run's (every file of both trees compared). One run of each."
            ),
            "",
            "| archive | full, uncached (s) | full, cold cache (s) | rerun, nothing changed (s) | rerun, 1 input changed (s) "
            "| rerun / full | inputs reused (no change; 1 changed) | how the rerun went | fresh run on changed input (s) | outputs identical "
            "| changed input |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for name, result in self.incremental_rows:
            reference, full, noop, rerun, fresh = (result[k].median("wall") for k in ("reference", "full", "noop", "rerun", "fresh"))
            same = "yes" if not result["differences"] else f"**no** ({len(result['differences'])} files differ)"
            reused = f"{_reused(result['noop'])}; {_reused(result['rerun'])}" + (" (**code changed meanwhile**)" if result["code_changed"] else "")
            lines.append(
                f"| {name} | {reference:.2f} | {full:.2f} | {noop:.2f} | {rerun:.2f} | {rerun / full:.3f} | {reused} | {_how(result['rerun'])} "
                f"| {fresh:.2f} | {same} "
                f"| `{result['changed']}` |"
            )
        lines.append("")
        lines += self.watch_table()
        self.sections.append("\n".join(lines))

    def watch_table(self) -> list[str]:
        """The section of the watch's reruns (``watched``), after the incremental table."""
        lines: list[str] = []
        if any(result.get("watch") for _, result in self.incremental_rows):
            lines += [
                "### Reruns in a watch",
                "",
                "`pipeline run --watch --interval 0.05` started on the same folders after the rows above, then one input "
                "edited several times (a line appended, written aside and renamed over it, as an editor saves). The watch "
                "process keeps the interpreter and the imports loaded, so a rerun is only its own work: it reports each "
                "rerun's time (from the change noticed to the outputs written). Edit to report adds the wait for the change to "
                "settle (`pipeline/watch.py`): told by the system (Linux's inotify), the watch waits until the inputs have been "
                "still for the interval, then takes one snapshot; polling (`--poll`, or a system that tells nothing), it acts once "
                "two polls agree. The outputs after the last edit must be "
                "byte-identical to a fresh full run's. The ratio is to the uncached full run above, interpreter start included.",
                "",
                "| archive | edits | watch rerun, median [min–max] (s) | rerun / full | edit to report, median (s) | changes seen by "
                "| how the reruns went | peak RSS of the watch (MiB) | outputs identical |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            ]
            for name, result in self.incremental_rows:
                watch = result.get("watch")
                if not watch or not watch["seconds"]:
                    continue
                reference = result["reference"].median("wall")
                median = statistics.median(watch["seconds"])
                same = "yes" if not watch["differences"] else f"**no** ({len(watch['differences'])} files differ)"
                hows = sorted(set(watch["how"]))
                lines.append(
                    f"| {name} | {len(watch['seconds'])} | {median:.3f} [{min(watch['seconds']):.3f}–{max(watch['seconds']):.3f}] "
                    f"| {median / reference:.3f} | {statistics.median(watch['latencies']):.2f} | {'; '.join(sorted(set(watch.get('learns', []))))} "
                    f"| {'; '.join(hows)} "
                    f"| {watch['peak_kb'] / 1024:.0f} | {same} |"
                )
            lines.append("")
        return lines


def interruptible() -> None:
    """In a child before it starts: SIGINT back to its default, so that Python raises
    KeyboardInterrupt on it (an ignored SIGINT is inherited, and Python keeps it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _peak_rss_kb(pid: int) -> int:
    """A live process's peak resident set so far (``VmHWM``), in KiB; 0 where /proc cannot tell."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found[1]) if found else 0


def _reused(series: Series) -> str:
    """What the pipeline said it took from its cache (``cache: N/M inputs reused``), or ``?``."""
    found = _REUSED.search(series.runs[-1].stderr + series.runs[-1].stdout) if series.runs else None
    return f"{found[1]}/{found[2]}" if found else "?"


def _how(series: Series) -> str:
    """How the pipeline said it reran (``previous output patched, ...`` or why not), or ``?``."""
    found = _REUSED.search(series.runs[-1].stderr + series.runs[-1].stdout) if series.runs else None
    return (found[3] or "-") if found else "?"


def _code_fingerprint() -> str:
    """A hash of ``pipeline/*.py``: other engineers edit it while benchmarks run."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "pipeline").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _let_inputs_age(raw: Path) -> None:
    """Wait until no input of ``raw`` was written in the last ``STAMP_MARGIN_NS`` (3 s).

    A rerun takes an input for unchanged by its stamp only when the input is older than
    that (a write in the same clock tick as the stamp would not move it), and reads any
    younger one again. A copy made a second before the runs would have every rerun read
    the whole archive, which no user's rerun does (measured in BENCHMARKS.md, session 17).
    """
    newest = 0
    for folder, _, names in os.walk(raw):
        for name in names:
            with contextlib.suppress(OSError):  # a file gone meanwhile has no age to wait for
                status = os.lstat(os.path.join(folder, name))  # as the pipeline stamps a link: not followed
                newest = max(newest, status.st_mtime_ns, status.st_ctime_ns)
    wait = (newest + STAMP_MARGIN_NS - time.time_ns()) / 1e9
    if wait > 0:
        print(f"  (waiting {wait:.1f} s: inputs written in the last {STAMP_MARGIN_NS / 1e9:.0f} s are read again by a rerun)", flush=True)
        time.sleep(wait + 0.05)


def _pick_input(raw: Path) -> Path:
    """A post near the middle of the archive, with a body and no export row, to append a line to."""
    files = sorted(p for p in raw.iterdir() if p.is_file() and p.suffix == ".md")
    middle = len(files) // 2
    for path in files[middle:] + files[:middle]:
        text = path.read_text(encoding="utf-8", errors="replace")
        body = text.split("\n---\n", 1)[-1]
        if not has_glued_date(text, 0, len(text)) and body.strip() and not text.rstrip().endswith('"'):
            return path
    return files[middle]


def compare_trees(left: Path, right: Path) -> list[str]:
    """Relative paths that differ between two folders (missing on one side or different bytes)."""

    def files(root: Path) -> dict[str, Path]:
        return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}

    a, b = files(left), files(right)
    differing = sorted(set(a) ^ set(b))
    differing += sorted(k for k in set(a) & set(b) if a[k].read_bytes() != b[k].read_bytes())
    return differing


def _row(series: Series, posts: int, label: str | None = None) -> str:
    wall, cpu = series.median("wall"), series.median("cpu")
    lo, hi = series.spread("wall")
    return (
        f"| {label or series.name} | {wall:.2f} [{lo:.2f}–{hi:.2f}] | {cpu:.2f} | {cpu / wall:.2f} | {series.median('maxrss_kb') / 1024:.0f} "
        f"| {series.median('tree_rss_kb') / 1024:.0f} | {posts / wall:,.0f} |"
    )


def _rel(path: Path | str) -> str:
    """A path as written from the repository root (``../shared/...``), for the report."""
    path = Path(path)
    if path.is_absolute() and path.is_relative_to(ROOT.parent):
        return Path(os.path.relpath(path, ROOT)).as_posix()
    return path.as_posix()


def _show(command: Sequence[str | Path]) -> str:
    return shlex.join(_rel(x) if isinstance(x, Path) else x for x in command)


def machine() -> list[str]:
    cpus = len(os.sched_getaffinity(0))
    model = "unknown"
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), model)
        mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
        memory = f"{mem_kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        memory = "unknown"
    python = subprocess.run([PYTHON, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True, check=False).stdout.strip()
    git = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "pipeline"], capture_output=True, text=True, check=False).stdout
    changed = len(dirty.splitlines())
    run_params = json.dumps(_run_params(), sort_keys=True)
    return [
        f"- machine: {cpus} CPUs (`nproc`), {model}, {memory} RAM, {platform.system()} {platform.release()}",
        f"- Python {python} (`.venv/bin/python`); date {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- code: commit `{git}`"
        + (f" with {changed} uncommitted change(s) under `pipeline/`" if changed else "")
        + f"; `params.yaml` run section: `{run_params}`",
    ]


def probe_file_creation(folder: Path, files: int = 1000) -> float:
    """Seconds to create ``files`` files of 4 KB in ``folder`` (kept: deleting them would tax what follows).

    Both programs write a file per post, and what that costs here depends on the folder,
    not on the program: on this machine's ext4 (no journal) creating a file scans past the
    inodes recently freed in its block group (the kernel's ``recently_deleted``). Where test
    suites create and delete thousands of files (the system's temporary folder), 1,000
    files took 0.37 to 0.72 s; beside the repository, 0.03 to 0.1 s. The report gives the
    figure before and after the runs, so that a slow disk shows.
    """
    folder.mkdir()
    block = b"x" * 4096
    started = time.perf_counter()
    for number in range(files):
        (folder / f"{number:04d}.md").write_bytes(block)
    return time.perf_counter() - started


@contextlib.contextmanager
def scratch_input(work_root: Path, prefix: str, raw: Path | None, posts: int, seed: int) -> Iterator[tuple[Path, Path, int]]:
    """A scratch folder under ``work_root``, removed at the end, and the input to measure:
    ``raw``, or a synthetic archive of ``posts`` posts (``seed``) generated into the folder.
    Yields (folder, input folder, number of input files)."""
    work_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=work_root))
    try:
        if raw is None:
            raw = work / "raw"
            generate(raw, posts, seed)
        yield work, raw, sum(1 for p in raw.rglob("*") if p.is_file())
    finally:
        shutil.rmtree(work)


def compile_bytecode() -> None:
    """Compile the package's modules, as installing a wheel does, so that no timed run
    compiles them: where PYTHONDONTWRITEBYTECODE is set, an editable install would compile
    ``pipeline/`` in every run (0.05 s of the archive's 1.2 s)."""
    subprocess.run([PYTHON, "-m", "compileall", "-q", ROOT / "pipeline"], check=True)


def _no_bytecode_note() -> str:
    return " (PYTHONDONTWRITEBYTECODE is set here, so no run would write it)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""


def _run_params() -> dict[str, Any]:
    """The ``run`` section of the repository's ``params.yaml`` (what ``pipeline run`` reads by default)."""
    try:
        params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return {}
    section = params.get("run") if isinstance(params, dict) else None
    return section if isinstance(section, dict) else {}


def write_report(path: Path, bench: Bench, command: str, elapsed: float, loads: tuple[float, float]) -> None:
    intro = INTRO
    if path.exists():
        old = path.read_text(encoding="utf-8")
        if MARKER in old:
            intro = old.split(MARKER, 1)[0].rstrip() + "\n"
    busy = " (other processes were running: figures are noisier)" if max(loads) > 0.5 * len(os.sched_getaffinity(0)) else ""
    lines = [
        intro,
        MARKER,
        "",
        "## Run",
        "",
        *machine(),
        f"- load average (1 min) before / after the run: {loads[0]:.2f} / {loads[1]:.2f}{busy}",
        f"- scratch folder `{_rel(bench.work.parent)}`: creating 1,000 files of 4 KB took "
        + " / ".join(f"{seconds:.3f} s" for seconds in bench.probes)
        + " before / after the runs (`probe_file_creation`; both programs pay it per file)",
        f"- bytecode: `pipeline/` compiled before the runs (`python -m compileall`), as a wheel install leaves it{_no_bytecode_note()}",
        f"- `pipeline/*.py` changed during the run: {'**yes**' if _code_fingerprint() != bench.code_at_start else 'no'}",
        f"- reproduce: `{command}` (took {elapsed / 60:.1f} min)",
        "",
    ]
    if bench.problems:
        lines += ["**Problems found during the run:**", "", *(f"- {p}" for p in bench.problems), ""]
    lines += bench.sections
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each program on the real archive and small synthetic ones (default: 5)")
    parser.add_argument("--sizes", default="998,10000", help="synthetic archive sizes, comma-separated; empty for none (default: 998,10000)")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md", help="Markdown report (default: BENCHMARKS.md at the repository root)")
    parser.add_argument("--pipeline-args", default="", help='extra arguments for every `pipeline run`, e.g. "--params fast.yaml"')
    parser.add_argument("--seed", type=int, default=20240601, help="seed of the synthetic archives (default: 20240601)")
    parser.add_argument("--baseline-on-synthetic", action="store_true", help="also time the baseline on each synthetic archive")
    parser.add_argument("--skip-real", action="store_true", help="skip the real archive")
    parser.add_argument("--skip-incremental", action="store_true", help="skip the incremental-rerun measurements")
    parser.add_argument(
        "--tmp", type=Path, default=SCRATCH, help="folder for the temporary archives and outputs (default: benchmarks/out, beside the repository's clean/)"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    try:
        sizes = [int(x.replace("_", "")) for x in args.sizes.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, not {args.sizes!r}")
    command = _show(
        [PYTHON.relative_to(ROOT) if PYTHON.is_relative_to(ROOT) else "python", "-m", "benchmarks.bench", *(argv if argv is not None else sys.argv[1:])]
    )
    compile_bytecode()
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    args.tmp.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-", dir=args.tmp) as tmp:
        bench = Bench(args, Path(tmp))
        bench.probes.append(probe_file_creation(bench.fresh_dir("probe")))
        if not args.skip_real:
            reference = bench.real_archive()
            if reference is not None and not args.skip_incremental:
                bench.real_incremental(reference)
        bench.synthetic(sizes)
        bench.incremental_section()
        bench.probes.append(probe_file_creation(bench.fresh_dir("probe")))
    write_report(args.out, bench, command, time.perf_counter() - started, (load_before, os.getloadavg()[0]))
    print(f"bench: report written to {args.out}")
    return 1 if bench.problems else 0


if __name__ == "__main__":
    sys.exit(main())
