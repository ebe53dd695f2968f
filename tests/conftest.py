"""Shared fixtures: the real archive (skipped with a reason when ../shared is absent)."""

from __future__ import annotations

import filecmp
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import load_config
from pipeline.runner import run_pipeline

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "transportsdufutur-blog" / "_posts"
RAW = ROOT / "raw"


def same_tree(left: Path, right: Path) -> list[str]:
    """Relative paths whose bytes differ between two folders (or exist in only one)."""
    left_files = {p.relative_to(left).as_posix() for p in left.rglob("*") if p.is_file()}
    right_files = {p.relative_to(right).as_posix() for p in right.rglob("*") if p.is_file()}
    differ = sorted(left_files ^ right_files)
    differ += [f for f in sorted(left_files & right_files) if not filecmp.cmp(left / f, right / f, shallow=False)]
    return differ


def corpus_or_skip() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"the real archive is not at {CORPUS} (../shared is absent on a bare clone)")
    return CORPUS


@pytest.fixture(scope="session")
def corpus() -> Path:
    return corpus_or_skip()


@pytest.fixture(scope="session")
def corpus_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    """The whole archive through `run_pipeline` once per side: {side: (out_dir, report)}."""
    corpus = corpus_or_skip()
    runs = {}
    for side in ("ours", "theirs"):
        out = tmp_path_factory.mktemp(f"corpus-{side}") / "clean"
        runs[side] = (out, run_pipeline(corpus, out, load_config({"resolve": {"side": side}})))
    return runs
