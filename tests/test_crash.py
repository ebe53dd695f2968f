"""A run killed with SIGKILL at any moment leaves a complete output (previous or new), never a
mix, and the next run recovers by itself."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from tests.conftest import RAW, ROOT

KILL_FRACTIONS = (0.05, 0.15, 0.3, 0.45, 0.6, 0.75, 0.85, 0.92, 0.97, 1.0, 1.05)


def _many_posts(raw: Path, copies: int) -> None:
    raw.mkdir()
    seeds = sorted(RAW.iterdir())
    for i in range(copies):
        for seed in seeds:
            text = seed.read_text(encoding="utf-8").replace('title: "', f'title: "{i} ', 1)
            (raw / f"{i:04d}-{seed.name}").write_text(text, encoding="utf-8")


def _run(raw: Path, out: Path, side: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "pipeline", "run", "--raw", str(raw), "--out", str(out), "--side", side]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _complete_side(out: Path) -> str:
    """The side of the complete output in ``out``; fails if the output is partial or mixed."""
    report = json.loads((out / "report.json").read_text())
    posts = pq.read_table(out / "posts.parquet")
    assert posts.num_rows == report["cleaned"] == len(list((out / "posts").iterdir()))
    assert pq.read_table(out / "conflicts.parquet").num_rows == report["conflict_blocks"]
    sides = set(pq.read_table(out / "conflicts.parquet").column("side").to_pylist())
    assert sides == {report["side"]}
    return str(report["side"])


def test_sigkill_at_any_moment_leaves_a_complete_output(tmp_path: Path) -> None:
    raw, out = tmp_path / "raw", tmp_path / "clean"
    _many_posts(raw, 400)
    start = time.monotonic()
    assert _run(raw, out, "ours").wait() == 0
    duration = time.monotonic() - start
    valid = 0
    for fraction in KILL_FRACTIONS:
        previous = _complete_side(out)
        new_side = "theirs" if previous == "ours" else "ours"
        process = _run(raw, out, new_side)
        time.sleep(duration * fraction)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert _complete_side(out) in (previous, new_side), fraction
        valid += 1
    assert valid == len(KILL_FRACTIONS)
    assert _run(raw, out, "ours").wait() == 0
    assert _complete_side(out) == "ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean", "raw"]


def test_a_leftover_of_a_killed_swap_is_put_back(tmp_path: Path) -> None:
    out = tmp_path / "clean"
    assert _run(RAW, out, "theirs").wait() == 0
    # The state a two-rename swap leaves when killed between its renames.
    out.rename(tmp_path / ".clean.old")
    shutil.copytree(tmp_path / ".clean.old", tmp_path / ".clean.tmp")
    (tmp_path / ".clean.tmp" / "report.json").unlink()
    assert _run(RAW, out, "ours").wait() == 0
    assert _complete_side(out) == "ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean"]
