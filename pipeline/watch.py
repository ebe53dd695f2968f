"""When to run again in ``pipeline run --watch``: after a change of the inputs has settled.

The loop knows nothing of files: it takes snapshots through a ``snapshot`` function
(``io.snapshot_inputs``) and compares fingerprints, and it may wait on ``Notices`` of
changes (``io.InputNotices``) instead of polling, so that its timing can be tested with a
fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator
from typing import Final, NamedTuple, Protocol

# Polling a large folder is itself work (a stat per input: about 0.3 s at 100,000 files):
# the pause between two polls is at least this many times what the last poll took, so
# that watching costs at most a fifth of one core, whatever the archive's size.
POLL_SHARE: Final = 4
# With notices, a poll only catches what the kernel does not report (a file written by
# another machine on a network file system): at most a fortieth of a core.
NOTICED_POLL_SHARE: Final = 40
# A stream of notices that never pauses (a sync client, a log written every 0.1 s) is waited
# out at most this many intervals (or a noticed poll's pause, if longer); the change is then
# settled as a poll's, by two snapshots that agree.
QUIET_LIMIT: Final = 20


class Notices(Protocol):
    """What the system says of changes to the inputs (``io.InputNotices``)."""

    @property
    def reliable(self) -> bool:
        """Every change of the inputs gets a notice (else the watch polls as without them)."""

    def wait(self, timeout: float) -> bool:
        """True as soon as a notice comes, False if none came within ``timeout`` seconds."""


class Settled(NamedTuple):
    """A settled change: how many snapshots it took to settle, and how it came to the watch:
    ``start`` (the first run), ``notice`` (the system told of it) or ``poll``."""

    snapshots: int
    seen_by: str


def settled_changes(
    snapshot: Callable[[], Hashable],
    interval: float,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    notices: Notices | None = None,
) -> Iterator[Settled]:
    """Yield at once (the first run), then once each change has settled (``Settled``).

    A change is yielded once it has settled, so that a copy of many files, a ``git
    checkout`` or an editor's save in several writes gives one run on the whole result, not
    one per file; one undone before it settled gives none. The snapshot is taken before
    each yield: what changes while the caller runs is seen by the next snapshot.

    Without notices (or with unreliable ones) the loop polls: a change has settled once two
    polls in a row agree on it, and the pause between polls is ``interval``, or
    ``POLL_SHARE`` times what the last poll took if that is longer. With notices it waits
    on them: a snapshot is taken once no notice has come for ``interval`` seconds, and
    its change has settled if no notice came while it was taken. A poll still comes when
    no notice has for ``NOTICED_POLL_SHARE`` times what the last snapshot took (or
    ``interval``), for what the system does not report, and when notices have not paused
    for ``QUIET_LIMIT`` intervals (or that long); its change settles as a poll's.

    >>> states = iter(["a", "a", "b", "c", "c", "c"])
    >>> changes = settled_changes(lambda: next(states), 0.1, sleep=lambda _: None)
    >>> next(changes), next(changes)  # "b" then "c" moved; "c" held still for one poll
    (Settled(snapshots=0, seen_by='start'), Settled(snapshots=2, seen_by='poll'))
    """
    seen, took = _timed(snapshot, clock)
    yield Settled(0, "start")
    while True:
        if notices is not None and notices.reliable:
            noticed = notices.wait(max(interval, NOTICED_POLL_SHARE * took)) and _until_quiet(notices, interval, clock, took)
        else:
            noticed = False
            sleep(max(interval, POLL_SHARE * took))
        current, took = _timed(snapshot, clock)
        if current == seen:
            continue
        seen_by = "notice" if noticed else "poll"
        polls = 1
        while True:
            if noticed and notices is not None:
                if not notices.wait(0):
                    break  # nothing moved while the snapshot was taken
                noticed = _until_quiet(notices, interval, clock, took)
                current, took = _timed(snapshot, clock)
                polls += 1
                continue
            sleep(max(interval, POLL_SHARE * took))
            again, took = _timed(snapshot, clock)
            if again == current:
                break
            current, polls = again, polls + 1
        if current != seen:  # not a change that was undone before it settled
            seen = current
            yield Settled(polls, seen_by)


def _until_quiet(notices: Notices, interval: float, clock: Callable[[], float], took: float) -> bool:
    """Wait until a burst of notices (a checkout, a copy, an editor's several writes) has
    paused for ``interval``: True; False if it has not within ``QUIET_LIMIT`` intervals, or
    a noticed poll's pause (``took``: what the last snapshot took) if longer."""
    ends = clock() + max(QUIET_LIMIT * interval, NOTICED_POLL_SHARE * took)
    while notices.wait(interval):
        if clock() >= ends:
            return False
    return True


def _timed(snapshot: Callable[[], Hashable], clock: Callable[[], float]) -> tuple[Hashable, float]:
    started = clock()
    state = snapshot()
    return state, clock() - started
