"""The two ways to run give the same outputs; runs are deterministic; output is a fixed point."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.config import load_config
from pipeline.errors import InputError
from pipeline.runner import QuietPool, run_export, run_first_stage, run_middle_stage, run_pipeline
from tests.conftest import RAW, corpus_or_skip, same_tree


def _staged(raw: Path, work: Path) -> Path:
    config = load_config({})
    run_first_stage(raw, work / "01_resolve", config)
    run_middle_stage("decode", work / "01_resolve", work / "02_decode", config)
    run_middle_stage("extract", work / "02_decode", work / "03_extract", config)
    run_export(work / "03_extract", work / "clean", config)
    return work / "clean"


@pytest.mark.parametrize("which", ["seeds", "corpus"])
def test_staged_run_equals_one_process_run(tmp_path: Path, which: str) -> None:
    raw = RAW if which == "seeds" else corpus_or_skip()
    run_pipeline(raw, tmp_path / "run", load_config({}))
    assert same_tree(tmp_path / "run", _staged(raw, tmp_path / "staged")) == []


def test_two_runs_are_byte_identical(tmp_path: Path) -> None:
    raw = corpus_or_skip()
    for name in ("a", "b"):
        run_pipeline(raw, tmp_path / name, load_config({}))
    assert same_tree(tmp_path / "a", tmp_path / "b") == []


def test_cleaned_markdown_is_a_fixed_point(tmp_path: Path) -> None:
    raw = corpus_or_skip()
    first = run_pipeline(raw, tmp_path / "first", load_config({}))
    second = run_pipeline(tmp_path / "first" / "posts", tmp_path / "second", load_config({}))
    assert second["cleaned"] == first["markdown_written"]
    assert same_tree(tmp_path / "first" / "posts", tmp_path / "second" / "posts") == []


def test_seeds_are_cleaned_and_the_one_without_front_matter_is_derived(tmp_path: Path) -> None:
    report = run_pipeline(RAW, tmp_path / "out", load_config({}))
    assert (report["inputs"], report["cleaned"], report["quarantined"]) == (3, 3, 0)
    assert report["problems_by_code"]["no_front_matter"] == 1
    assert report["problems_by_code"]["title_missing"] == 1
    assert report["problems_by_code"]["date_missing"] == 1
    names = sorted(p.name for p in (tmp_path / "out" / "posts").iterdir())
    assert names == [
        "2011-11-18-apres-casinoauchanleclerccarrefour-drive-amazon-flow-tesco-drive-betterplace.md",
        "2014-12-05-alibaba-prend-position-dans-lautomobile-et-vise-la-place-centrale.md",
        "le-geant-chinois-du-commerce-en-ligne-alibaba-ne-cesse-denrichir-son-offre.md",
    ]


def test_a_failed_run_leaves_the_previous_output(tmp_path: Path) -> None:
    out = tmp_path / "clean"
    run_pipeline(RAW, out, load_config({}))
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(InputError):
        run_pipeline(tmp_path / "missing", out, load_config({}))
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not any(p.name.startswith(".clean.") for p in tmp_path.iterdir())


@pytest.mark.parametrize("which", ["seeds", "corpus"])
def test_parallel_run_equals_serial_run(tmp_path: Path, which: str) -> None:
    raw = RAW if which == "seeds" else corpus_or_skip()
    run_pipeline(raw, tmp_path / "serial", load_config({"run": {"workers": 1}}))
    run_pipeline(raw, tmp_path / "parallel", load_config({"run": {"workers": 2}}))
    assert same_tree(tmp_path / "serial", tmp_path / "parallel") == []


def test_progress_is_reported_per_post_and_ends_at_the_total(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    run_pipeline(RAW, tmp_path / "out", load_config({}), lambda done, total: calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


def test_cached_rerun_after_one_change_equals_a_full_run(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(RAW, raw)
    cached = load_config({"run": {"cache_dir": str(tmp_path / "cache")}})
    stats: dict[str, int] = {}
    run_pipeline(raw, tmp_path / "first", cached, stats=stats)
    assert stats.get("cache_hits", 0) == 0
    run_pipeline(raw, tmp_path / "again", cached, stats=stats)
    assert stats["cache_hits"] == 3
    assert same_tree(tmp_path / "first", tmp_path / "again") == []
    changed = next(raw.glob("004_*"))
    changed.write_text(changed.read_text(encoding="utf-8") + "\nUne phrase de plus.\n", encoding="utf-8")
    stats.clear()
    run_pipeline(raw, tmp_path / "rerun", cached, stats=stats)
    assert stats["cache_hits"] == 2
    run_pipeline(raw, tmp_path / "full", load_config({}))
    assert same_tree(tmp_path / "rerun", tmp_path / "full") == []


def test_cache_entries_depend_on_params(tmp_path: Path) -> None:
    stats: dict[str, int] = {}
    run_pipeline(RAW, tmp_path / "a", load_config({"run": {"cache_dir": str(tmp_path / "c")}}), stats=stats)
    theirs = load_config({"run": {"cache_dir": str(tmp_path / "c")}, "resolve": {"side": "theirs"}})
    run_pipeline(RAW, tmp_path / "b", theirs, stats=stats)
    assert stats.get("cache_hits", 0) == 0


def test_spilled_run_equals_a_run_held_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past KEEP_IN_MEMORY the first pass spills posts to disk; the outputs must not change.

    200 synthetic posts also make the second pass use its worker processes (64+ per worker).
    """
    import pipeline.io
    from benchmarks.synthetic import generate

    raw = tmp_path / "raw"
    generate(raw, 200, 7)
    config = load_config({"run": {"workers": 2}})
    run_pipeline(raw, tmp_path / "memory", config)
    monkeypatch.setattr(pipeline.io, "KEEP_IN_MEMORY", 40_000)  # a few posts, then the spill file
    stats: dict[str, int] = {}
    run_pipeline(raw, tmp_path / "spilled", config, stats=stats)
    assert 150 < stats["spilled"] < 200
    assert same_tree(tmp_path / "memory", tmp_path / "spilled") == []
    assert not list((tmp_path / "spilled").rglob(".spill*"))
    run_pipeline(raw, tmp_path / "serial", load_config({"run": {"workers": 1}}))
    assert same_tree(tmp_path / "memory", tmp_path / "serial") == []


class _Listing(list[str]):
    """A list of inputs that a weak reference can watch (a plain list cannot be weakly referenced)."""


@pytest.mark.parametrize("workers", [1, 2])
def test_the_input_list_is_let_go_before_the_second_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    """The main process's memory peaks in the second pass, which does not need the input list
    (a million inputs: about 120 MiB); it must be freed, by reference counting, before."""
    import weakref

    import pipeline.runner
    from pipeline.io import Exporter, discover

    listed: list[weakref.ref[_Listing]] = []

    def watched_discover(raw_dir: Path) -> list[str]:
        found = _Listing(discover(raw_dir))
        listed.append(weakref.ref(found))
        return found

    alive_at_settle: list[bool] = []
    settle = Exporter.settle

    def watched_settle(self: Exporter) -> pipeline.io.SecondPass:
        alive_at_settle.append(listed[0]() is not None)
        return settle(self)

    monkeypatch.setattr(pipeline.runner, "discover", watched_discover)
    monkeypatch.setattr(Exporter, "settle", watched_settle)
    report = run_pipeline(RAW, tmp_path / "out", load_config({"run": {"workers": workers}}))
    assert report["cleaned"] == 3
    assert alive_at_settle and not any(alive_at_settle)


def test_a_run_does_not_import_pandas_and_pandas_still_works_after(tmp_path: Path) -> None:
    """pyarrow would import pandas (0.3 s) on its first array; tables.keep_arrow_off_pandas stops it."""
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pipeline.config import load_config\n"
        "from pipeline.runner import run_pipeline\n"
        f"run_pipeline(Path({str(RAW)!r}), Path({str(tmp_path / 'out')!r}), load_config({{'run': {{'workers': 1}}}}))\n"
        "print('pandas' in sys.modules)\n"
        "import pyarrow.parquet as pq\n"
        f"print(len(pq.read_table({str(tmp_path / 'out' / 'posts.parquet')!r}).to_pandas()))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "3"]


def test_the_command_runs_arrow_without_numpy_and_writes_what_a_library_run_writes(tmp_path: Path) -> None:
    """The `pipeline` command (cli.run) leaves numpy and pyarrow's other optional modules out
    of its process (pipeline.COMMAND_ARROW_WITHOUT); its outputs equal those of run_pipeline
    in a process where pyarrow has them."""
    command = tmp_path / "command"
    script = (
        "import atexit, sys\n"
        "from pipeline import COMMAND_ARROW_WITHOUT as left_out\n"
        "atexit.register(lambda: print(sorted(name for name in ('pyarrow', *left_out) if name in sys.modules)))\n"
        f"sys.argv = ['pipeline', 'run', '-q', '--params', 'none.yaml', '--raw', {str(RAW)!r}, '--out', {str(command)!r}]\n"
        "from pipeline.cli import run\n"
        "run()\n"
    )
    (tmp_path / "none.yaml").write_text("run:\n  workers: 2\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, check=False)
    assert (result.returncode, result.stdout.strip()) == (0, "['pyarrow']"), result.stderr
    assert "numpy" in sys.modules  # this test's process: a library user's, where pyarrow has numpy
    run_pipeline(RAW, tmp_path / "library", load_config({"run": {"workers": 2}}))
    assert same_tree(command, tmp_path / "library") == []


def test_the_cli_forks_its_first_pass_workers_before_arrow_is_imported() -> None:
    """pyarrow (0.05 s of start-up; 0.09 s with numpy) is only for tables: importing the CLI
    must not import it, so that run_pipeline forks its workers first (pipeline.tables)."""
    script = "import sys\nimport pipeline.cli\nprint(sorted(name for name in ('pyarrow', 'numpy', 'pipeline.tables') if name in sys.modules))\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_file_names_claimed_ahead_are_the_ones_the_workers_write(tmp_path: Path) -> None:
    """Workers write the Markdown under names claimed once the index settles; the claims in
    input order must give the same names, with URL clashes (renamed) and file-name clashes
    (a dateless slug that spells a dated post's file name but for the case) mixed in."""
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(150):
        (raw / f"p{i:03d}.md").write_text(f"---\ntitle: T{i}\ndate: 2014-07-05\nslug: 'velo-{i % 50}'\n---\nbody {i}\n", encoding="utf-8")
    for k in range(10):
        (raw / f"z{k}.md").write_text(f"---\ntitle: Z{k}\nslug: '2014-07-05-Velo-{k}'\n---\nautre {k}\n", encoding="utf-8")
    run_pipeline(raw, tmp_path / "parallel", load_config({"run": {"workers": 2}}))
    run_pipeline(raw, tmp_path / "serial", load_config({"run": {"workers": 1}}))
    rows = pq.read_table(tmp_path / "parallel" / "posts.parquet", columns=["output_path", "problems"]).to_pylist()
    written = sorted(p.name for p in (tmp_path / "parallel" / "posts").iterdir())
    assert written == sorted(r["output_path"].removeprefix("posts/") for r in rows if r["output_path"])
    assert sum("slug_collision" in r["problems"] for r in rows) == 110  # 100 renamed, 10 file names taken
    assert same_tree(tmp_path / "parallel", tmp_path / "serial") == []


def test_quiet_pool_still_replaces_a_dead_worker_and_shuts_down() -> None:
    """QuietPool's worker handler no longer wakes on every result; it must still wake when
    a worker dies (else the last task would wait forever) and when the pool ends."""
    with QuietPool(1, context=multiprocessing.get_context("fork")) as pool:
        assert pool.map(abs, range(-300, 0), chunksize=7) == list(range(300, 0, -1))
        first = pool.apply(os.getpid)
        pool.apply_async(time.sleep, (60,))
        time.sleep(0.5)  # the worker is in the task, not waiting for one (it holds no lock)
        os.kill(first, signal.SIGKILL)
        assert pool.apply_async(os.getpid).get(timeout=20) != first
        started = time.monotonic()
    pool.join()
    assert time.monotonic() - started < 10
