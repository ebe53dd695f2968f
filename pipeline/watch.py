"""When to run again in ``pipeline run --watch``: after a change of the inputs has settled.

The loop knows nothing of files: it polls a ``snapshot`` function (``io.snapshot_inputs``)
and compares fingerprints, so that its timing can be tested with a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterator
from typing import Final

# Polling a large folder is itself work (a stat per input: about 0.3 s at 100,000 files):
# the pause between two polls is at least this many times what the last poll took, so
# that watching costs at most a fifth of one core, whatever the archive's size.
POLL_SHARE: Final = 4


def settled_changes(
    snapshot: Callable[[], Hashable],
    interval: float,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[int]:
    """Yield 0 at once (the first run), then the number of polls each change took to settle.

    A change is yielded once two polls in a row agree on it, so that a copy of many files,
    a ``git checkout`` or an editor's save in several writes gives one run on the whole
    result, not one per file; one undone before it settled gives none. The snapshot is
    taken before each yield: what changes while the caller runs is seen by the next poll.
    The pause between polls is ``interval``, or ``POLL_SHARE`` times what the last poll
    took if that is longer.

    >>> states = iter(["a", "a", "b", "c", "c", "c"])
    >>> changes = settled_changes(lambda: next(states), 0.1, sleep=lambda _: None)
    >>> next(changes), next(changes)  # "b" then "c" moved; "c" held still for one poll
    (0, 2)
    """
    seen, took = _timed(snapshot, clock)
    yield 0
    while True:
        sleep(max(interval, POLL_SHARE * took))
        current, took = _timed(snapshot, clock)
        if current == seen:
            continue
        polls = 1
        while True:
            sleep(max(interval, POLL_SHARE * took))
            again, took = _timed(snapshot, clock)
            if again == current:
                break
            current, polls = again, polls + 1
        if current != seen:  # not a change that was undone before it settled
            seen = current
            yield polls


def _timed(snapshot: Callable[[], Hashable], clock: Callable[[], float]) -> tuple[Hashable, float]:
    started = clock()
    state = snapshot()
    return state, clock() - started
