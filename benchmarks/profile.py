"""Where a run's time goes: py-spy's samples of one ``pipeline run``, by process role and function.

    python -m benchmarks.profile [--posts 10000] [--raw DIR] [--rate 200] [--top 12]
                                 [--nonblocking] [--seed 20240601] [--work DIR]
                                 [--out docs/PROFILE.md] [--params params.yaml]

Issue 6 asks for the profile of where the remaining time goes. This script samples a whole
``pipeline run`` with py-spy (``record --subprocesses --threads --function``: every process
and thread, each sample aggregated by function) on a synthetic archive of ``--posts``
posts (``benchmarks.synthetic``) or on ``--raw``, and sorts the samples by the role of the
process that was sampled:

- **main**: the command's own process. Its threads are told apart by the functions they
  run: the main thread (the first pass's bookkeeping, the index, the claims, the tables,
  the spill), the pool's threads (handing tasks out, reading results off the pipes), the
  read-ahead thread, and other threads (none in a local run).
- **first pass**: the worker processes that cleaned and built posts (``_clean_in_worker``).
- **second pass**: the worker processes that finished and wrote posts (``_finish_in_worker``).
- **other**: any other process (none in a local run).

For each role it prints the functions that were running when sampled (own samples: the
function at the top of the stack, which includes the C code and system calls it made) and
the package's functions below the role's own entry point by inclusive samples. py-spy
leaves out a thread that the system says is asleep when it looks, just before it pauses
the process; the check is racy, and many samples of waiting threads get in. The Python
calls that mostly wait (locks, conditions, selectors, pipes) are flagged ``blocking call``;
a thread asleep inside another system call, such as a worker waiting for the other one to
let go of the output folder's lock while it creates a file, cannot be told apart. And
sampling pauses the processes, which makes system calls and allocation-heavy code look
larger than they are (BENCHMARKS.md, session 18, measures both against ``perf`` and A/B
runs): read the tables as a ranking, not as seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Final

from benchmarks.bench import PYTHON, ROOT, VENV_BIN, compile_bytecode, machine, probe_file_creation, scratch_input

# The functions that mark a worker process's role (pipeline.runner): whichever a process
# ran at least once is its role for all its samples, its idle waits for tasks included.
FIRST_PASS_MARK = "_clean_in_worker"
SECOND_PASS_MARK = "_finish_in_worker"
ROLES = ("main", "first pass", "second pass", "other")
# py-spy's frame for a thread: ``thread (TID)``, and ``: NAME`` when it has one. The id is
# decimal where py-spy knows the system's thread id, else hexadecimal (``{:#X}``).
_THREAD = re.compile(r"thread \((\d+|0x[0-9a-fA-F]+)\)(?:: .*)?")
# A process's frame: ``process PID:"COMMAND LINE"``, the command line unescaped, so it may
# hold quotes and semicolons. Where the command line is known (the script ran it; the pool's
# workers are forked and keep it), the frame is matched with it exactly, or empty: py-spy
# writes ``""`` for the whole run when it read the process too early (seen in 2 of 6 runs).
# Otherwise it is taken to end where the next process's or the thread's frame starts.
_ANY_PROCESS = r'process (\d+):".*?";(?=process \d+:"|thread \()'


@cache
def _process_frame(command: str | None) -> re.Pattern[str]:
    return re.compile(_ANY_PROCESS if command is None else f'process (\\d+):"(?:{re.escape(command)})?";')


# Python functions whose samples are mostly a thread waiting, on a lock, a selector or a
# pipe (a pipe's read or write also copies the bytes): py-spy counts some of these waits
# (its idle detection is racy), so the tables flag them rather than call them work.
BLOCKING: Final = frozenset(
    {
        "Condition.wait",
        "Event.wait",
        "_PollLikeSelector.select",
        "Connection._recv",
        "Connection._send",
        "Connection._poll",
        "wait",
        "SimpleQueue.get",
        "Thread.join",
    }
)


def function_of(frame: str) -> str:
    """The function a frame (``function (file:line)``) names.

    >>> function_of("reading_ahead.<locals>.run (pipeline/io.py:136)")
    'reading_ahead.<locals>.run'
    """
    return frame.split(" (", 1)[0]


def is_blocking(frame: str) -> bool:
    """Whether a frame is one of the ``BLOCKING`` calls.

    >>> is_blocking("Condition.wait (threading.py:295)"), is_blocking("duplicate_key (pipeline/site.py:73)")
    (True, False)
    """
    return function_of(frame) in BLOCKING


def thread_kind(tid: str, pid: str, frames: Sequence[str]) -> str:
    """What a thread of the main process does, from the functions it runs (and its id when
    it has no frame): not from the name py-spy gives it, which it caches by Python thread id
    and may give a later thread that reuses the id (seen: a pool thread under another pool
    thread's name). A thread that ``threading`` started has ``Thread._bootstrap`` outermost.

    >>> thread_kind("8896", "8887", ["Thread._bootstrap (threading.py:995)", "Pool._handle_results (multiprocessing/pool.py:573)"])
    'pool threads'
    >>> thread_kind("0x7F3A2B", "8887", ["_run_module_as_main (<frozen runpy>:198)", "run_pipeline (pipeline/runner.py:144)"])
    'main thread'
    """
    if not frames:
        return "main thread" if tid == pid else "other threads"
    names = [function_of(frame) for frame in frames]
    if names[0] != "Thread._bootstrap":
        return "main thread"
    if any(name.startswith("Pool._handle_") for name in names):
        return "pool threads"
    return "read-ahead thread" if "reading_ahead.<locals>.run" in names else "other threads"


@dataclass(frozen=True)
class Stack:
    """One line of py-spy's raw output: the process chain, the thread and the frames."""

    pids: tuple[str, ...]  # from the command's process down to the sampled one
    thread: str  # thread_kind of a thread of the main process; "" in a worker
    frames: tuple[str, ...]  # outermost first, each ``function (file:line)``
    count: int


def parse_stack(line: str, command: str | None = None) -> Stack | None:
    """A raw line (``frame;frame;... COUNT``) as a Stack; None for a blank or cut line, or
    one whose process frames do not hold ``command``, the command line run, when given.

    >>> stack = parse_stack('process 7:"python -m pipeline run";thread (7): MainThread;main (pipeline/cli.py:153) 3')
    >>> stack.pids, stack.thread, stack.frames, stack.count
    (('7',), 'main thread', ('main (pipeline/cli.py:153)',), 3)
    """
    text, _, count = line.strip().rpartition(" ")
    if not text or not count.isdigit():
        return None
    pids: list[str] = []
    frame = _process_frame(command)
    while (process := frame.match(text)) is not None:
        pids.append(process[1])
        text = text[process.end() :]
    tid, _, rest = text.partition(";")
    thread = _THREAD.fullmatch(tid)
    if thread is None:  # no thread frame: not what ``record --threads`` writes
        return None
    if not pids:  # no process frame: not what ``record --subprocesses`` writes
        return None
    frames = tuple(rest.split(";")) if rest else ()
    kind = thread_kind(thread[1], pids[-1], frames) if len(pids) == 1 else ""
    return Stack(tuple(pids), kind, frames, int(count))


@dataclass
class Profile:
    """Samples added up by role; within each, by function (own samples, and inclusive
    samples below the role's ``ANCHORS`` function)."""

    samples: Counter[str] = field(default_factory=Counter)
    blocked: Counter[str] = field(default_factory=Counter)  # samples in a BLOCKING call, by role
    threads: Counter[str] = field(default_factory=Counter)  # the main process's, by kind
    own: dict[str, Counter[str]] = field(default_factory=lambda: {role: Counter() for role in ROLES})
    below: dict[str, Counter[str]] = field(default_factory=lambda: {role: Counter() for role in ROLES})
    processes: dict[str, set[str]] = field(default_factory=lambda: {role: set() for role in ROLES})
    unread: int = 0  # lines of the raw file that parse_stack could not read

    @property
    def total(self) -> int:
        return sum(self.samples.values())


# Where each role's own work starts: the inclusive tables count the frames below it, not the
# command's call chain above it, which every sample of the role shares.
ANCHORS: Final = {"main": "run_pipeline", "first pass": FIRST_PASS_MARK, "second pass": SECOND_PASS_MARK}


def profile_of(stacks: Sequence[Stack]) -> Profile:
    """Sort the samples by role: the command's process is ``main``; a worker takes the role
    of the mark (``FIRST_PASS_MARK``, ``SECOND_PASS_MARK``) found in any of its stacks.

    >>> main = Stack(("1",), "main thread", ("run_pipeline (pipeline/runner.py:144)",), 2)
    >>> worker = Stack(("1", "2"), "", ("worker (pool.py:1)", "_clean_in_worker (pipeline/runner.py:441)", "read_doc (pipeline/io.py:178)"), 5)
    >>> profile = profile_of([main, worker])
    >>> dict(profile.samples), profile.own["first pass"].most_common(1), dict(profile.below["first pass"])
    ({'main': 2, 'first pass': 5}, [('read_doc (pipeline/io.py:178)', 5)], {'read_doc (pipeline/io.py:178)': 5})
    """
    marks: dict[str, str] = {}
    named = [(stack, [function_of(frame) for frame in stack.frames]) for stack in stacks]
    for stack, names in named:
        if FIRST_PASS_MARK in names:
            marks.setdefault(stack.pids[-1], "first pass")
        elif SECOND_PASS_MARK in names:
            marks.setdefault(stack.pids[-1], "second pass")
    profile = Profile()
    for stack, names in named:
        role = "main" if len(stack.pids) == 1 else marks.get(stack.pids[-1], "other")
        profile.samples[role] += stack.count
        profile.processes[role].add(stack.pids[-1])
        if role == "main":
            profile.threads[stack.thread] += stack.count
        if stack.frames:
            profile.own[role][stack.frames[-1]] += stack.count
            if is_blocking(stack.frames[-1]):
                profile.blocked[role] += stack.count
        if role in ANCHORS and ANCHORS[role] in names:
            for frame in set(stack.frames[names.index(ANCHORS[role]) + 1 :]):
                profile.below[role][frame] += stack.count
    return profile


def read_profile(raw_file: Path, command: str | None = None) -> Profile:
    """The samples of a raw file; ``command``: the command line py-spy ran (``parse_stack``)."""
    with raw_file.open(encoding="utf-8", errors="replace") as lines:
        stacks = [(line, parse_stack(line, command)) for line in lines]
    profile = profile_of([stack for _, stack in stacks if stack is not None])
    profile.unread = sum(1 for line, stack in stacks if stack is None and line.strip())
    return profile


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def report_lines(profile: Profile, rate: int, top: int) -> list[str]:
    """The profile as Markdown: samples by role, then each role's functions."""
    total = profile.total
    lines = [f"{profile.unread:,} line(s) of py-spy's output could not be read and are left out.", ""] if profile.unread else []
    lines += [
        "| role | processes | samples | share | thread-seconds sampled | of which in a blocking call |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for role in ROLES:
        if profile.samples[role]:
            samples, blocked = profile.samples[role], profile.blocked[role]
            lines.append(
                f"| {role} | {len(profile.processes[role])} | {samples:,} | {_share(samples, total)} | {samples / rate:.2f} | {_share(blocked, samples)} |"
            )
    lines += ["", "The main process's samples by thread:", "", "| thread | samples | share of the main process |", "| --- | --- | --- |"]
    for kind, samples in profile.threads.most_common():
        lines.append(f"| {kind} | {samples:,} | {_share(samples, profile.samples['main'])} |")
    for role in ROLES:
        samples = profile.samples[role]
        if not samples:
            continue
        lines += ["", f"### {role}: own samples (where each sample was)", "", "| function | samples | share of the role |", "| --- | --- | --- |"]
        lines += [
            f"| `{frame}`{' (blocking call)' if is_blocking(frame) else ''} | {count:,} | {_share(count, samples)} |"
            for frame, count in profile.own[role].most_common(top)
        ]
        package = [(frame, count) for frame, count in profile.below[role].most_common() if "(pipeline/" in frame]
        if package:
            anchor = ANCHORS[role]
            lines += [
                "",
                f"### {role}: the package's functions below `{anchor}`, inclusive",
                "",
                "| function | samples | share of the role |",
                "| --- | --- | --- |",
            ]
            lines += [f"| `{frame}` | {count:,} | {_share(count, samples)} |" for frame, count in package[:top]]
    return lines


def find_py_spy() -> str | None:
    return shutil.which("py-spy", path=os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=10_000, help="synthetic archive size (default: 10000)")
    parser.add_argument("--raw", type=Path, help="profile a run on this input folder instead of a synthetic archive")
    parser.add_argument("--rate", type=int, default=200, help="samples a second, per thread (default: 200)")
    parser.add_argument("--top", type=int, default=12, help="functions listed per table (default: 12)")
    parser.add_argument("--nonblocking", action="store_true", help="sample without pausing the processes (less overhead, stacks may be torn)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "out", help="scratch folder (default: benchmarks/out)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "PROFILE.md", help="Markdown report (default: docs/PROFILE.md)")
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml", help="the run's settings (default: the repository's params.yaml)")
    args = parser.parse_args(argv)
    # The run starts in the repository, so every path given here is made absolute first.
    work_root, out_file, params = args.work.resolve(), args.out.resolve(), args.params.resolve()
    raw_dir = args.raw.resolve() if args.raw is not None else None
    if raw_dir is not None and not raw_dir.is_dir():
        print(f"profile: {args.raw}: no such input folder; pass --raw DIR, or --posts N for a synthetic archive", file=sys.stderr)
        return 2
    try:  # both folders now, not after a run of a minute
        work_root.mkdir(parents=True, exist_ok=True)
        out_file.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"profile: cannot make the folder {err.filename}: {err.strerror}; pass --work DIR and --out FILE where folders can be made", file=sys.stderr)
        return 2
    py_spy = find_py_spy()
    if py_spy is None:
        print("profile: py-spy not found beside the interpreter or on PATH; install the dev extras (make test does) or `pip install py-spy`", file=sys.stderr)
        return 2
    compile_bytecode()
    with scratch_input(work_root, "profile-", raw_dir, args.posts, args.seed) as (work, raw, posts):
        # What a file costs to create here depends on what was deleted lately (see
        # probe_file_creation), and the second pass creates one a post: the header says.
        probe = probe_file_creation(work / "probe")
        out, samples = work / "out", work / "samples.txt"
        run = [str(x) for x in (PYTHON, "-m", "pipeline", "run", "--params", params, "--raw", raw, "--out", out, "-q")]
        spy = [
            py_spy,
            "record",
            *(["--nonblocking"] if args.nonblocking else []),
            "--rate",
            str(args.rate),
            "--subprocesses",
            "--threads",
            "--function",
            "--format",
            "raw",
            "--output",
            samples,
            "--",
        ]
        print(f"profile: sampling a run on {posts:,} posts ({raw})", file=sys.stderr, flush=True)
        started = time.perf_counter()
        done = subprocess.run([*map(str, spy), *map(str, run)], capture_output=True, text=True, check=False, cwd=ROOT)
        wall = time.perf_counter() - started
        # py-spy exits 0 when the program it ran failed: the run's report tells.
        said = (done.stderr or done.stdout).strip()[-2000:] or "(nothing on its output)"
        if done.returncode != 0 or not (out / "report.json").is_file():
            # py-spy's own words when the system refuses it the child's memory.
            hint = (
                " py-spy traces its child: allow ptrace (kernel.yama.ptrace_scope 0 or 1, CAP_SYS_PTRACE in a container)."
                if "Permission Denied" in said
                else ""
            )
            print(f"profile: the run under py-spy failed (py-spy's exit {done.returncode}, no report.json).{hint} It said: {said}", file=sys.stderr)
            return 1
        try:
            report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        except ValueError as err:
            print(f"profile: the profiled run's report.json is not JSON ({err})", file=sys.stderr)
            return 1
        if not report.get("accounting_ok"):
            print(f"profile: the profiled run's accounting does not add up (see {out / 'report.json'})", file=sys.stderr)
            return 1
        profile = read_profile(samples, " ".join(run)) if samples.is_file() else Profile()
        if not profile.total:
            print(f"profile: py-spy wrote no sample it could read ({profile.unread} line(s) unread). It said: {said}", file=sys.stderr)
            return 1
        command = ["python", "-m", "benchmarks.profile", *(argv if argv is not None else sys.argv[1:])]
        lines = [
            "# Where a run's time goes",
            "",
            "Written by `benchmarks/profile.py` (its docstring says how to read the tables). py-spy's",
            "samples of one `pipeline run`, all processes and threads, sorted by the role of the",
            "process sampled. py-spy counts some waits in the kernel as work" + ("" if args.nonblocking else ", and sampling pauses the processes") + ":",
            "read a ranking, not seconds (BENCHMARKS.md, session 18, measures what it overstates).",
            "",
            *machine(),
            f"- input: {raw if raw_dir else f'synthetic, {posts:,} posts, seed {args.seed}'}; the run under py-spy took {wall:.2f} s",
            f"- py-spy {_version(py_spy)}, {args.rate} samples a second a thread{', without pausing' if args.nonblocking else ''}; {profile.total:,} samples",
            f"- creating 1,000 files of 4 KB beside the run's output took {probe:.3f} s before it",
            f"- command: `{' '.join(command)}`",
            "",
            *report_lines(profile, args.rate, args.top),
        ]
        out_file.parent.mkdir(parents=True, exist_ok=True)
        out_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"profile: {profile.total:,} samples of {posts:,} posts written to {out_file}", file=sys.stderr)
        return 0


def _version(py_spy: str) -> str:
    done = subprocess.run([py_spy, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip().removeprefix("py-spy ") or "unknown"


if __name__ == "__main__":
    sys.exit(main())
