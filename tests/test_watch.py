"""`pipeline run --watch`: when it runs again (``watch.settled_changes``), what it looks at
(``io.snapshot_inputs``), and the command itself on a real process, edited under it."""

from __future__ import annotations

import ctypes
import errno
import itertools
import json
import os
import queue
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.bench import interruptible
from pipeline.config import load_config
from pipeline.io import InputNotices, snapshot_inputs
from pipeline.runner import run_pipeline
from pipeline.watch import NOTICED_POLL_SHARE, POLL_SHARE, QUIET_LIMIT, Settled, settled_changes
from tests.conftest import CORPUS, RAW, ROOT, same_tree


class FakeTime:
    """A clock that moves only when slept on, or by what a poll is said to cost."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def _polled(states: list[str], fake: FakeTime, cost: float = 0.0) -> tuple[Iterator[Settled], list[str]]:
    """A watch over ``states`` (one per poll); the list it returns grows with each poll's state."""
    seen: list[str] = []
    remaining = iter(states)

    def snapshot() -> str:
        fake.now += cost
        seen.append(next(remaining))
        return seen[-1]

    return settled_changes(snapshot, 0.25, fake.sleep, fake.clock), seen


def _runs(states: list[str], fake: FakeTime | None = None) -> list[tuple[int, str]]:
    """(poll at which each run starts, the state it sees) until the states run out."""
    changes, seen = _polled(states, fake or FakeTime())
    runs = []
    try:
        for _ in changes:
            runs.append((len(seen), seen[-1]))
    except StopIteration:
        pass
    except RuntimeError as err:  # the generator asked for a poll past the end of ``states``
        assert isinstance(err.__cause__, StopIteration)
    return runs


def test_the_first_run_starts_at_once_and_quiet_polls_start_none() -> None:
    assert _runs(["a", "a", "a", "a"]) == [(1, "a")]


def test_a_change_runs_once_it_held_still_for_one_poll() -> None:
    # b appears, then c before b was confirmed: one run, on c, once c was seen twice.
    assert _runs(["a", "a", "b", "c", "c", "c", "c"]) == [(1, "a"), (5, "c")]


def test_changes_during_a_run_are_seen_by_the_next_poll() -> None:
    # After the run on b, the folder moves back to a: that is a change too.
    assert _runs(["a", "b", "b", "a", "a"]) == [(1, "a"), (3, "b"), (5, "a")]


@pytest.mark.parametrize(
    ("cost", "pause"),
    [
        (0.001, 0.25),  # a quick folder is polled at the interval
        (0.5, POLL_SHARE * 0.5),  # a poll that costs 0.5 s is followed by 2 s of rest, not 0.25
    ],
)
def test_the_pause_between_polls_grows_with_what_a_poll_costs(cost: float, pause: float) -> None:
    fake = FakeTime()
    changes, _ = _polled(["a"] * 4, fake, cost=cost)
    next(changes)
    with pytest.raises(RuntimeError):  # the states ran out
        next(changes)
    assert fake.sleeps == [pause] * 4


@given(st.lists(st.sampled_from("abc"), min_size=1, max_size=30))
def test_every_run_sees_a_settled_state_other_than_the_last_run(states: list[str]) -> None:
    runs = _runs(states)
    assert runs[0] == (1, states[0])
    for (_, before), (poll, state) in itertools.pairwise(runs):
        assert state != before
        assert states[poll - 2] == state  # the poll before agreed: the change had settled
    # No change that settled before the polls ran out was left without a run.
    last_poll, last_state = runs[-1]
    tail = states[last_poll:]
    assert not any(tail[i] == tail[i + 1] != last_state for i in range(len(tail) - 1))


def test_a_change_undone_before_it_settled_runs_nothing() -> None:
    assert _runs(["a", "b", "a", "a", "a"]) == [(1, "a")]


class FakeNotices:
    """The system's notices at given moments of a FakeTime clock (``watch.Notices``)."""

    def __init__(self, fake: FakeTime, moments: list[float], reliable: bool = True) -> None:
        self.fake, self.moments, self.reliable = fake, sorted(moments), reliable
        self.waits: list[float] = []

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        if self.moments and self.moments[0] <= self.fake.now + timeout:
            self.fake.now = max(self.fake.now, self.moments[0])
            # One read takes every notice queued by then, as from the kernel.
            self.moments = [moment for moment in self.moments if moment > self.fake.now]
            return True
        self.fake.now += timeout
        return False


def _noticed(changes: dict[float, str], moments: list[float], cost: float = 0.5, reliable: bool = True) -> tuple[list[tuple[float, str]], int]:
    """A watch with notices over a folder whose state moves at the moments ``changes`` gives:
    each run as (when it starts, the state it sees), and how many snapshots were taken."""
    fake = FakeTime()
    taken: list[str] = []

    def snapshot() -> str:
        if fake.now > 60:
            raise TimeoutError  # the watch would go on: stop looking here
        state = next((changes[moment] for moment in sorted(changes, reverse=True) if moment <= fake.now), "a")
        fake.now += cost
        taken.append(state)
        return state

    notices = FakeNotices(fake, moments, reliable)
    runs = []
    with suppress(TimeoutError):
        for _ in settled_changes(snapshot, 0.25, fake.sleep, fake.clock, notices):
            runs.append((round(fake.now, 3), taken[-1]))
    return runs, len(taken)


def test_a_notice_brings_the_snapshot_without_waiting_for_a_poll() -> None:
    # A snapshot costs 0.5 s: polling would look every 2 s, and take two looks to settle.
    runs, _ = _noticed({10.0: "b", 40.0: "c"}, [10.0, 40.0])
    assert runs[:2] == [(0.5, "a"), (10.75, "b")]  # still for 0.25 s, then one snapshot


def test_a_burst_of_notices_gives_one_run_once_it_is_over() -> None:
    runs, _ = _noticed({5.0: "b", 5.2: "c", 40.0: "d"}, [5.0, 5.1, 5.2, 5.3])
    assert runs[:2] == [(0.5, "a"), (6.05, "c")]


def test_a_notice_while_the_snapshot_is_taken_takes_another() -> None:
    # Still from 5.25 s, the snapshot runs to 5.75 s; a write at 5.5 s came meanwhile.
    runs, _ = _noticed({5.0: "b", 5.5: "c", 40.0: "d"}, [5.0, 5.5])
    assert runs[:2] == [(0.5, "a"), (6.5, "c")]


def test_a_notice_of_nothing_the_snapshot_sees_runs_nothing() -> None:
    # Notices at 2 and 3 s with the listing unchanged (a file written and removed, say): a
    # snapshot each, no run; the change at 40 s, with no notice, waits for a poll (20 s apart).
    runs, taken = _noticed({40.0: "b"}, [2.0, 3.0])
    assert runs[:2] == [(0.5, "a"), (47.25, "b")]
    assert taken == 6  # the first; one after each notice; polls at 23.75 ("a"), 44.25 ("b"), 46.75 ("b")


def test_without_a_notice_a_poll_still_comes_now_and_then() -> None:
    # A change the system did not report (a network file system written from elsewhere):
    # seen by the poll after NOTICED_POLL_SHARE times a snapshot's cost, settled by a second.
    runs, _ = _noticed({3.0: "b"}, [], cost=0.1)
    assert runs[:2] == [(0.1, "a"), (round(0.1 + NOTICED_POLL_SHARE * 0.1 + 0.1 + POLL_SHARE * 0.1 + 0.1, 3), "b")]


def test_a_stream_of_notices_that_never_pauses_is_waited_out_then_settled_by_polls() -> None:
    # Notices every 0.1 s from 1 s on; the state moved once, at 1 s. The wait for quiet ends
    # after QUIET_LIMIT intervals (5 s), then two snapshots that agree settle the change.
    runs, _ = _noticed({1.0: "b"}, [1.0 + 0.1 * i for i in range(600)], cost=0.1)
    limit = QUIET_LIMIT * 0.25
    assert runs[:2] == [(0.1, "a"), (round(1.0 + limit + 0.1 + POLL_SHARE * 0.1 + 0.1, 3), "b")]


@given(st.lists(st.tuples(st.floats(0.01, 3.0), st.sampled_from("abc"), st.booleans()), max_size=12))
def test_with_notices_the_last_state_runs_and_no_run_repeats_the_one_before(steps: list[tuple[float, str, bool]]) -> None:
    # Each step: the seconds since the last change, the folder's new state, and whether the
    # system told of it (a network file system does not). Whatever the mix, the watch ends
    # on a run of the folder's last state, and never runs the same state twice in a row.
    changes: dict[float, str] = {}
    moments: list[float] = []
    moment = 1.0
    for gap, state, told in steps:
        moment = round(moment + gap, 3)
        changes[moment] = state
        if told:
            moments.append(moment)
    runs, _ = _noticed(changes, moments, cost=0.05)  # until 60 s: changes end by 37 s
    assert runs[0] == (0.05, "a")
    assert all(before != after for (_, before), (_, after) in itertools.pairwise(runs))
    assert runs[-1][1] == (changes[max(changes)] if changes else "a")


def test_a_stream_that_starts_while_the_snapshot_is_taken_is_waited_out_too() -> None:
    # A notice at 5 s, quiet, a snapshot from 5.25 s; a stream of notices from 5.3 s on. The
    # wait for quiet after that snapshot is capped too, then polls settle the change.
    runs, _ = _noticed({5.0: "b"}, [5.0] + [5.3 + 0.1 * i for i in range(300)], cost=0.1)
    assert runs[1][1] == "b"
    assert runs[1][0] < 5.35 + QUIET_LIMIT * 0.25 + 1, runs  # not at the stream's end, 35 s


def test_each_change_says_how_it_came_to_the_watch() -> None:
    fake = FakeTime()
    states = {5.0: "b", 20.0: "c"}  # b told of at 5 s; c never told of, seen by a poll

    def snapshot() -> str:
        state = next((states[moment] for moment in sorted(states, reverse=True) if moment <= fake.now), "a")
        fake.now += 0.1
        return state

    changes = settled_changes(snapshot, 0.25, fake.sleep, fake.clock, FakeNotices(fake, [5.0]))
    assert [next(changes) for _ in range(3)] == [(0, "start"), (1, "notice"), (1, "poll")]


def test_unreliable_notices_are_not_waited_on_the_watch_polls() -> None:
    fake = FakeTime()
    notices = FakeNotices(fake, [1.0], reliable=False)
    states = iter(["a", "a", "b", "b"])

    def snapshot() -> str:
        fake.now += 0.5
        return next(states)

    changes = settled_changes(snapshot, 0.25, fake.sleep, fake.clock, notices)
    assert [next(changes), next(changes)] == [(0, "start"), (1, "poll")]
    assert notices.waits == []
    assert fake.sleeps == [POLL_SHARE * 0.5] * 3


def test_the_snapshot_moves_on_every_kind_of_change(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    params = tmp_path / "params.yaml"
    params.write_text("resolve: {}\n")
    (raw / "a.md").write_text("one")
    (raw / "sub").mkdir()
    (raw / "sub" / "b.md").write_text("two")
    last = [snapshot_inputs(raw, (params,))]
    assert snapshot_inputs(raw, (params,)) == last[0], "nothing changed: the same snapshot"

    def moved() -> bool:
        last.append(snapshot_inputs(raw, (params,)))
        return last[-1] != last[-2]

    (raw / "a.md").write_text("One")  # same size, new bytes: the mtime or ctime moves
    os.utime(raw / "a.md", ns=(1, 1))  # even with the mtime set back, the ctime moves
    assert moved()
    (raw / "sub" / "c.md").write_text("three")
    assert moved()
    (raw / "sub" / "c.md").rename(raw / "sub" / "d.md")
    assert moved()
    (raw / "sub" / "d.md").unlink()
    assert moved()
    params.write_text("resolve: {side: theirs}\n")
    assert moved()
    (raw / ".hidden.md").write_text("not an input")  # dotfiles are not inputs
    assert not moved()
    shutil.rmtree(raw)
    assert moved()  # a missing folder is a state, not an error


def test_a_recent_write_that_keeps_the_stat_still_moves_the_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.io

    # A file system whose clock is too coarse to move: only the size is left of the stat.
    monkeypatch.setattr(pipeline.io, "_stat_key", lambda status: status.st_size.to_bytes(8, "little"))
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.md").write_text("one")
    before = snapshot_inputs(raw)
    (raw / "a.md").write_text("two")  # same size, just written: its bytes count
    assert snapshot_inputs(raw) != before
    monkeypatch.setattr(pipeline.io, "STAMP_MARGIN_NS", -(10**18))  # as if written long ago
    before = snapshot_inputs(raw)
    (raw / "a.md").write_text("six")
    assert snapshot_inputs(raw) == before, "an old file counts by its stat alone: the hash costs a read"


def test_a_file_growing_old_does_not_move_the_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.io

    (tmp_path / "a.md").write_text("just written")
    hashes: dict[str, tuple[bytes, bytes]] = {}
    recent = snapshot_inputs(tmp_path, (), hashes)
    assert list(hashes) == ["a.md"]
    monkeypatch.setattr(pipeline.io, "STAMP_MARGIN_NS", -(10**18))  # three seconds later, say
    assert snapshot_inputs(tmp_path, (), hashes) == recent, "the hash taken while it was recent still holds"
    assert snapshot_inputs(tmp_path) != recent, "without the kept hashes the fingerprint would move: a needless rerun"
    (tmp_path / "a.md").unlink()
    snapshot_inputs(tmp_path, (), hashes)
    assert hashes == {}


def test_an_edit_of_a_symbolic_links_target_moves_the_snapshot(tmp_path: Path) -> None:
    raw, elsewhere = tmp_path / "raw", tmp_path / "drafts"
    raw.mkdir()
    elsewhere.mkdir()
    (elsewhere / "post.md").write_text("draft")
    (raw / "post.md").symlink_to(elsewhere / "post.md")
    before = snapshot_inputs(raw)
    (elsewhere / "post.md").write_text("draft, longer")
    assert snapshot_inputs(raw) != before


# The system's notices (Linux's inotify), on a real folder.


def _opened(raw: Path, also: tuple[Path, ...] = ()) -> InputNotices:
    """The system's notices on ``raw``, or the test skipped where there are none."""
    opened = InputNotices.open(raw, also)
    if opened is None:
        pytest.skip("this system gives no notices of file changes (inotify is Linux's); the watch polls there")
    return opened


@pytest.fixture
def notices(tmp_path: Path) -> Iterator[tuple[Path, Path, InputNotices]]:
    raw, settings = tmp_path / "raw", tmp_path / "settings"
    (raw / "2019" / "05").mkdir(parents=True)
    settings.mkdir()
    params = settings / "params.yaml"
    params.write_text("resolve: {}\n")
    with _opened(raw, (params,)) as opened:
        yield raw, params, opened


def _told(notices: InputNotices) -> bool:
    """A notice came (within 2 s: the kernel's are immediate); then wait for the quiet after."""
    told = notices.wait(2.0)
    while notices.wait(0.05):
        pass
    return told


def test_the_system_tells_of_every_change_of_the_inputs(notices: tuple[Path, Path, InputNotices]) -> None:
    raw, _, told = notices
    assert not told.wait(0.05), "nothing changed yet"
    (raw / "a.md").write_text("one")
    assert _told(told)
    (raw / "2019" / "05" / "b.md").write_text("two")  # a folder that was there from the start
    assert _told(told)
    edited = raw / ".a.md.swp"
    edited.write_text("One")  # an editor's save: a dotfile, no input, written aside ...
    assert not told.wait(0.2)
    edited.replace(raw / "a.md")  # ... then renamed over the input
    assert _told(told)
    (raw / "2020").mkdir()  # a new folder, then a post in it: watched as it appeared
    assert _told(told)
    (raw / "2020" / "c.md").write_text("three")
    assert _told(told)
    (raw / "2019").rename(raw / "2018")  # a folder renamed: the watches under it follow
    assert _told(told)
    (raw / "2018" / "05" / "b.md").unlink()
    assert _told(told)
    os.utime(raw / "a.md", ns=(1, 1))  # the stat moves, so the snapshot would
    assert _told(told)
    deep = raw / "x" / "y" / "z"
    deep.mkdir(parents=True)  # folders made in a burst, a post at once: each watched in turn
    (deep / "f.md").write_text("four")
    assert _told(told)
    (deep / "f.md").write_text("Four")
    assert _told(told)
    (raw / "2020").rename(raw.parent / "2020")  # a folder moved out of the raw folder ...
    assert _told(told)
    (raw.parent / "2020" / "c.md").write_text("no longer an input")
    assert not told.wait(0.2)  # ... is no longer watched
    assert told.reliable


def test_the_params_file_is_watched_by_its_own_name(notices: tuple[Path, Path, InputNotices]) -> None:
    _, params, told = notices
    (params.parent / "notes.txt").write_text("not watched")  # the params file's folder holds others
    assert not told.wait(0.2)
    params.write_text("resolve: {side: theirs}\n")
    assert _told(told)
    aside = params.with_name("params.yaml.new")
    aside.write_text("resolve: {}\n")
    assert not told.wait(0.2)
    aside.replace(params)
    assert _told(told)


def test_a_params_file_that_is_a_link_is_watched_at_its_target_and_its_next(tmp_path: Path) -> None:
    raw, shared = tmp_path / "raw", tmp_path / "shared"
    raw.mkdir()
    shared.mkdir()
    (shared / "a.yaml").write_text("resolve: {}\n")
    (shared / "b.yaml").write_text("resolve: {}\n")
    params = tmp_path / "params.yaml"
    params.symlink_to(shared / "a.yaml")
    with _opened(raw, (params,)) as told:
        (shared / "a.yaml").write_text("resolve: {side: theirs}\n")  # the target edited, not the link
        assert _told(told)
        aside = tmp_path / "params.yaml.new"
        aside.symlink_to(shared / "b.yaml")
        aside.replace(params)  # as ``ln -sf b.yaml params.yaml`` does
        assert _told(told)
        (shared / "b.yaml").write_text("resolve: {side: theirs}\n")
        assert _told(told)


def test_saving_the_params_file_does_not_walk_the_raw_folder_again(notices: tuple[Path, Path, InputNotices], monkeypatch: pytest.MonkeyPatch) -> None:
    _, params, told = notices
    walks: list[int] = []
    walk = told._watch_tree

    def counted() -> None:
        walks.append(1)
        walk()

    monkeypatch.setattr(told, "_watch_tree", counted)
    params.write_text("resolve: {side: theirs}\n")
    assert _told(told)
    assert walks == [], "a save is not a folder made or moved: no walk of every raw folder"


def test_a_raw_folder_removed_then_made_again_is_watched_again(notices: tuple[Path, Path, InputNotices]) -> None:
    raw, _, told = notices
    shutil.rmtree(raw)
    assert _told(told)
    raw.mkdir()  # told by its parent folder, which is watched for the raw folder's name only
    assert _told(told)
    (raw.parent / "elsewhere").mkdir()
    assert not told.wait(0.2)
    (raw / "d.md").write_text("four")  # the new raw folder is watched
    assert _told(told)
    raw.rename(raw.parent / "old")  # renamed away: what happens in it is no longer told
    assert _told(told)
    (raw.parent / "old" / "e.md").write_text("five")
    assert not told.wait(0.2)
    assert told.reliable


def test_lost_notices_count_as_one_and_the_folders_are_watched_again(tmp_path: Path) -> None:
    class Accepting:  # the system's side, with the events written by the test
        def __init__(self) -> None:
            self.added: list[bytes] = []

        def inotify_add_watch(self, fd: int, path: bytes, mask: int) -> int:
            self.added.append(path)
            return len(self.added)

        def inotify_rm_watch(self, fd: int, wd: int) -> int:
            return 0

    (tmp_path / "2019").mkdir()
    read, write = os.pipe()
    os.set_blocking(read, False)
    libc = Accepting()
    try:
        notices = InputNotices(read, libc, tmp_path / "2019", ())  # its parent, then itself
        assert len(libc.added) == 2
        os.write(write, struct.pack("iIII", -1, 0x4000, 0, 0))  # IN_Q_OVERFLOW: the queue was full
        assert notices.wait(1.0)
        assert not notices.wait(0)
        assert len(libc.added) == 4, "the wait after an overflow watched every folder again"
    finally:
        os.close(read)
        os.close(write)


def test_a_folder_the_system_will_not_watch_makes_the_notices_unreliable(tmp_path: Path) -> None:
    class Refusing:  # the system's side: one folder refused with a given error, the others watched
        def __init__(self, refused: Path, code: int) -> None:
            self.refused, self.code, self.watches = os.fsencode(refused), code, 0

        def inotify_add_watch(self, fd: int, path: bytes, mask: int) -> int:
            if path == self.refused:
                ctypes.set_errno(self.code)
                return -1
            self.watches += 1
            return self.watches

        def inotify_rm_watch(self, fd: int, wd: int) -> int:
            return 0

    raw = tmp_path / "raw"
    raw.mkdir()
    read, write = os.pipe()
    try:
        # A folder of inputs gone meanwhile, or unreadable (``discover`` skips it too), is no loss ...
        assert InputNotices(read, Refusing(raw, errno.ENOENT), raw, ()).reliable
        assert InputNotices(read, Refusing(raw, errno.EACCES), raw, ()).reliable
        # ... the user's limit of watches reached is, and so is a params file's folder unreadable.
        assert not InputNotices(read, Refusing(raw, errno.ENOSPC), raw, ()).reliable
        assert not InputNotices(read, Refusing(tmp_path, errno.EACCES), raw, ()).reliable  # the raw folder's parent
    finally:
        os.close(read)
        os.close(write)


# The command, run as a user runs it: a process, edits under it, then Ctrl-C.


class Watcher:
    """``pipeline run --watch`` in a child process; its JSON log lines, read as they come."""

    def __init__(self, raw: Path, out: Path, cache: Path, params: Path, *flags: str) -> None:
        command = [sys.executable, "-m", "pipeline", "run", "--watch", "--interval", "0.05", "--log-format", "json", *flags]
        command += ["--raw", str(raw), "--out", str(out), "--cache", str(cache), "--params", str(params)]
        self.process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, preexec_fn=interruptible)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(json.loads(line))

    def until(self, text: str, timeout: float = 60) -> list[dict[str, Any]]:
        """The messages up to the first one that contains ``text``."""
        deadline = time.monotonic() + timeout
        got: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            try:
                message = self.lines.get(timeout=0.1)
            except queue.Empty:
                assert self.process.poll() is None, f"the watch ended ({self.process.returncode}) after {self.seen}"
                continue
            self.seen.append(message)
            got.append(message)
            if text in message["message"]:
                return got
        raise AssertionError(f"no message with {text!r} within {timeout} s; seen {self.seen}")

    def stop(self) -> tuple[int, list[str]]:
        """Ctrl-C: the exit code, and the messages said since the last ``until``."""
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=30)
        self.reader.join(timeout=30)  # it ends at the end of the stream: every line is queued
        return code, [self.lines.get()["message"] for _ in range(self.lines.qsize())]


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, Path, Watcher]]:
    """A watch over a copy of the real archive (the seeds on a bare clone), after its first run."""
    raw = tmp_path / "raw"
    shutil.copytree(CORPUS if CORPUS.is_dir() else RAW, raw)
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    watcher = Watcher(raw, tmp_path / "out", tmp_path / "cache", params)
    try:
        watcher.until("watch: run 1 took")
        yield raw, params, watcher
    finally:
        if watcher.process.poll() is None:
            watcher.process.kill()
            watcher.process.wait()


@pytest.mark.parametrize("how", ["the system tells of changes", "polling for changes"])
def test_watch_reruns_each_edit_in_place_and_equals_a_fresh_run(how: str, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(CORPUS if CORPUS.is_dir() else RAW, raw)
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    if how.startswith("the system"):
        _opened(raw).close()
    watcher = Watcher(raw, tmp_path / "out", tmp_path / "cache", params, *(["--poll"] if how.startswith("polling") else []))
    try:
        first = watcher.until("watch: run 1 took")
        assert f"({how}; Ctrl-C stops)" in first[-1]["message"]
        _edit_twice(raw, watcher, tmp_path, "notice" if how.startswith("the system") else "poll")
    finally:
        if watcher.process.poll() is None:
            watcher.process.kill()
            watcher.process.wait()


def _edit_twice(raw: Path, watcher: Watcher, tmp_path: Path, seen_by: str) -> None:
    post = next(p for p in sorted(raw.iterdir()) if p.read_bytes().startswith(b"---\n"))
    text = post.read_text(encoding="utf-8")
    end = text.index("\n---\n", 4) + 5  # a paragraph at the top of the body: the export row stays last
    for number, sentence in enumerate(("Une phrase ajoutée.", "Une autre."), start=2):
        edited = post.with_name(".edit.tmp")  # an editor's save: write aside, rename over
        edited.write_text(f"{text[:end]}\n{sentence}\n{text[end:]}", encoding="utf-8")
        edited.replace(post)
        messages = watcher.until(f"watch: run {number} took")
        cache = next(m for m in messages if m["message"].startswith("cache:"))
        assert cache.get("patched") == 1, cache
        assert messages[-1]["run"] == number and messages[-1]["seconds"] > 0
        assert messages[-1]["seen_by"] == seen_by, messages[-1]  # told of, not caught by the fallback poll
    fresh = tmp_path / "fresh"
    run_pipeline(raw, fresh, load_config({}))
    assert same_tree(tmp_path / "out", fresh) == []
    assert sentence in "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "out" / "posts").iterdir())
    assert watcher.stop() == (0, ["watch: stopped after 3 run(s)"])


def test_watch_reads_the_params_again_and_survives_a_broken_file(watched: tuple[Path, Path, Watcher], tmp_path: Path) -> None:
    raw, params, watcher = watched
    good = params.read_text(encoding="utf-8")
    params.write_text(good + "surprise: 1\n", encoding="utf-8")
    error = watcher.until("watch: run 2 took")
    assert any(m["level"] == "error" and "surprise" in m["message"] for m in error), error
    params.write_bytes(b"# r\xe9glages\n" + good.encode())  # saved in Latin-1 by an old editor
    error = watcher.until("watch: run 3 took")
    assert any(m["level"] == "error" and "params file is not UTF-8 (byte 3); save it as UTF-8" in m["message"] for m in error), error
    params.write_text(good.replace("side: ours ", "side: theirs "), encoding="utf-8")
    messages = watcher.until("watch: run 4 took")
    assert any("conflict blocks resolved (theirs)" in m["message"] for m in messages), messages
    fresh = tmp_path / "fresh"
    run_pipeline(raw, fresh, load_config({"resolve": {"side": "theirs"}}))
    assert same_tree(tmp_path / "out", fresh) == []
    assert watcher.stop() == (0, ["watch: stopped after 4 run(s)"])  # the last run's exit code


def test_watch_takes_in_an_added_input_from_its_own_listing(watched: tuple[Path, Path, Watcher], tmp_path: Path) -> None:
    raw, _, watcher = watched
    count = sum(1 for p in raw.iterdir() if p.is_file())
    source = next(p for p in sorted(raw.iterdir()) if p.read_bytes().startswith(b"---\n"))
    text = source.read_text(encoding="utf-8").replace("\ntitle: ", "\ntitle: Copie de ", 1)
    (raw / "2030-01-01-une-copie.md").write_text(text, encoding="utf-8")
    messages = watcher.until("watch: run 2 took")
    assert any(m["message"].startswith(f"{count + 1} inputs: {count + 1} cleaned") for m in messages), messages
    fresh = tmp_path / "fresh"
    run_pipeline(raw, fresh, load_config({}))
    assert same_tree(tmp_path / "out", fresh) == []
    assert watcher.stop()[0] == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--watch"], "--watch: reruns from the result cache: add --cache DIR"),
        (["--watch", "--cache", "c", "--dry-run"], "--watch: writes --out at every change; it does not go with --dry-run"),
        (["--watch", "--cache", "c", "--interval", "0"], "expected seconds between 0 and 3600, got '0'"),
    ],
)
def test_watch_refuses_what_it_cannot_do(flags: list[str], message: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--raw", str(RAW), "--out", str(tmp_path / "out"), *flags],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert not (tmp_path / "out").exists()


def test_an_interruption_waits_for_the_end_of_a_held_block() -> None:
    from pipeline.io import signals_held

    # Ctrl-C as at a terminal, even where this test runs with SIGINT ignored (in the background).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    # Another thread, as Arrow's pool in a run: the kernel may hand it the process's signal.
    done = threading.Event()
    threading.Thread(target=done.wait, daemon=True).start()
    steps: list[str] = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with signals_held():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # a signal not held would interrupt here
                steps.append("the block ran to its end")
            steps.append("not reached: the held Ctrl-C is raised as the block ends")
    finally:
        done.set()
        restored = signal.signal(signal.SIGINT, previous)
    assert steps == ["the block ran to its end"]
    assert restored is signal.default_int_handler, "the held block put its handler back"


def _fake_watch(monkeypatch: pytest.MonkeyPatch, outcomes: list[BaseException | int], tmp_path: Path) -> tuple[int, list[str]]:
    """``pipeline run --watch`` in this process, each run's outcome given; then Ctrl-C."""
    import pipeline.cli

    def changes(*_: object, **__: object) -> Iterator[Settled]:
        runs = len(outcomes)  # counted before the first run takes its outcome
        yield Settled(0, "start")
        yield from (Settled(1, "notice") for _ in range(runs - 1))
        raise KeyboardInterrupt

    def run(args: object, config: object, listing: object = None) -> int:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    said: list[str] = []
    monkeypatch.setattr(pipeline.cli, "settled_changes", changes)
    monkeypatch.setattr(pipeline.cli, "_run", run)
    monkeypatch.setattr(pipeline.cli, "_say", lambda args, level, message, **fields: said.append(f"{level}: {message}"))
    folders = ["--raw", str(RAW), "--out", str(tmp_path / "out"), "--params", str(ROOT / "params.yaml")]
    code = pipeline.cli.main(["run", "--watch", "--cache", str(tmp_path / "cache"), *folders])
    return code, said


def test_an_unexpected_error_after_the_first_run_is_reported_and_the_watch_goes_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, said = _fake_watch(monkeypatch, [0, RuntimeError("a bug"), 1, 0], tmp_path)
    assert code == 0  # the last run's
    errors = [line for line in said if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: error: unexpected RuntimeError: a bug; the watch goes on")
    assert "Traceback (most recent call last)" in errors[0]
    assert [line.split(" took")[0] for line in said if "took" in line] == [f"info: watch: run {n}" for n in (1, 2, 3, 4)]
    assert said[-1] == "info: watch: stopped after 4 run(s)"


def test_a_watch_that_cannot_run_once_stops_with_the_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from pipeline.errors import InputError

    code, said = _fake_watch(monkeypatch, [InputError("raw", "raw folder not found; pass --raw DIR"), 0], tmp_path)
    assert code == 2
    assert said == ["error: error: raw: raw folder not found; pass --raw DIR"]


def test_a_full_disk_after_the_first_run_is_one_line_and_the_watch_goes_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, said = _fake_watch(monkeypatch, [0, OSError(28, "No space left on device"), 0], tmp_path)
    assert code == 0  # the last run's
    errors = [line for line in said if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: error: the system refused: No space left on device; nothing in the output folder")
    assert errors[0].endswith("then run again; the watch goes on") and "Traceback" not in errors[0]
