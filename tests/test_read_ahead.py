"""Read-ahead of the inputs (``io.reading_ahead``): hints in input order, never more than
``ahead`` inputs beyond those read, a thread that always ends, and outputs it cannot change."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline import runner
from pipeline.config import load_config
from pipeline.io import discover, hint_read, reading_ahead
from pipeline.runner import run_pipeline
from tests.conftest import RAW, same_tree


def _threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "read-ahead"]


def test_hints_follow_the_input_order_and_stay_ahead_by_at_most_ahead() -> None:
    names = [f"{n:02d}.md" for n in range(20)]
    read = 0
    hinted: list[tuple[str, int]] = []  # each hint with how many inputs had been read then
    with reading_ahead(Path("raw"), names, 3, lambda path: hinted.append((path, read))) as passed:
        for _ in names:
            deadline = time.monotonic() + 10
            while len(hinted) < min(read + 3, len(names)) and time.monotonic() < deadline:
                time.sleep(0.001)  # the hints reach ``ahead`` beyond what was read
            read += 1
            passed()
    assert [path for path, _ in hinted] == [os.path.join("raw", name) for name in names]
    # The k-th hint waited until k - ahead + 1 inputs had been read.
    assert all(k < seen + 3 for k, (_, seen) in enumerate(hinted))
    assert [seen for _, seen in hinted[:3]] == [0, 0, 0]
    assert _threads() == []


def test_a_reader_that_stops_early_or_fails_ends_the_thread() -> None:
    names = [f"{n:03d}.md" for n in range(500)]
    hinted: list[str] = []
    with reading_ahead(Path("raw"), names, 8, hinted.append) as passed:
        passed()
    assert len(hinted) <= 9
    assert _threads() == []
    with pytest.raises(KeyError), reading_ahead(Path("raw"), names, 8, hinted.append):
        raise KeyError("a reader's error goes on, the thread ends")
    assert _threads() == []


def test_no_read_ahead_starts_no_thread_and_hints_nothing() -> None:
    hinted: list[str] = []
    for ahead, names in ((0, ["a.md"]), (4, [])):
        with reading_ahead(Path("raw"), names, ahead, hinted.append) as passed:
            assert _threads() == []
            passed()
    assert hinted == []


@pytest.mark.skipif(not hasattr(os, "posix_fadvise") or not hasattr(os, "mkfifo"), reason="needs posix_fadvise and mkfifo (Linux)")
def test_hint_read_neither_blocks_on_a_fifo_nor_fails_on_a_missing_file(tmp_path: Path) -> None:
    (tmp_path / "post.md").write_text("---\ntitle: T\n---\nBody\n", encoding="utf-8")
    os.mkfifo(tmp_path / "pipe.md")  # no writer: a blocking open would wait for ever
    (tmp_path / "locked.md").write_text("x", encoding="utf-8")
    (tmp_path / "locked.md").chmod(0)
    paths = [str(tmp_path / name) for name in ("post.md", "pipe.md", "missing.md", "locked.md")]

    def hint_all() -> None:
        for path in paths:
            hint_read(path)

    worker = threading.Thread(target=hint_all, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_run_reads_ahead_over_every_input_and_its_outputs_do_not_depend_on_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    calls: list[tuple[list[str], int]] = []
    passes = [0]

    @contextmanager
    def recorded(raw_dir: Path, relatives: list[str], ahead: int) -> Iterator[Callable[[], None]]:
        calls.append((list(relatives), ahead))
        with reading_ahead(raw_dir, relatives, ahead) as passed:

            def counted() -> None:
                passes[0] += 1
                passed()

            yield counted

    monkeypatch.setattr(runner, "reading_ahead", recorded)
    run_pipeline(RAW, tmp_path / "ahead", load_config({"run": {"workers": workers}}))
    inputs = discover(RAW)
    assert calls == [(inputs, 512)]
    assert passes == [len(inputs)]  # one pass per input read: the hints keep up with the reading
    run_pipeline(RAW, tmp_path / "none", load_config({"run": {"workers": workers, "read_ahead": 0}}))
    assert same_tree(tmp_path / "ahead", tmp_path / "none") == []
    assert _threads() == []
