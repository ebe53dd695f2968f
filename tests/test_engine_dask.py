"""The Dask engine gives the local engine's outputs: same rows, byte-identical Markdown.

On a synthetic archive, the real one (corpus), hostile inputs with name and old-URL
collisions, from and to fsspec's in-memory filesystem, and with workers killed mid-run.
Clusters are small LocalClusters, shared per module; the whole file runs in well under a minute.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import fsspec
import pytest
from distributed import Client, LocalCluster, WorkerPlugin

from benchmarks.synthetic import generate
from pipeline import engine_dask
from pipeline.cli import main
from pipeline.config import load_config
from pipeline.engine_dask import Job, Place, clean_part, read_table, run_dask
from pipeline.errors import ConfigError, InputError, PipelineError
from pipeline.report_html import load_report_data
from pipeline.runner import run_pipeline
from tests.test_hostile import CASES, POST

POSTS = 300
SEED = 20240601
TABLES = ("posts", "links", "conflicts", "quarantine", "problems")


def snapshot(url: str | Path) -> dict[str, Any]:
    """Everything a run wrote, comparable across engines: rows sorted, files as bytes."""
    place = Place.of(url)
    fs = place.fs
    found: dict[str, Any] = {}
    for name in TABLES:
        rows = read_table(url, name).to_pylist()
        found[name] = sorted(rows, key=lambda row: (row["source_path"], repr(row)))
    found["authors"] = read_table(url, "authors").to_pylist()
    posts = place.join("posts")
    found["markdown"] = {path.rsplit("/", 1)[1]: fs.cat_file(path) for path in fs.find(posts)}
    for name in ("redirects.csv", "report.json"):
        found[name] = fs.cat_file(place.join(name))
    return found


def differences(left: dict[str, Any], right: dict[str, Any]) -> list[str]:
    """Names of the parts of two snapshots that differ (an empty list when all are equal)."""
    return [key for key in left if left[key] != right[key]]


def _client(workers: int, threads: int, processes: bool) -> Iterator[Client]:
    with (
        LocalCluster(n_workers=workers, threads_per_worker=threads, processes=processes, dashboard_address=":0", silence_logs=logging.CRITICAL) as cluster,
        Client(cluster, timeout="30s") as client,
    ):
        yield client


@pytest.fixture(scope="module")
def processes() -> Iterator[Client]:
    """Two worker processes, as the engine starts them for `pipeline run --engine dask`."""
    yield from _client(workers=2, threads=1, processes=True)


@pytest.fixture(scope="module")
def threads() -> Iterator[Client]:
    """One worker of two threads in this process: the only kind that sees memory://."""
    yield from _client(workers=1, threads=2, processes=False)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A 300-post synthetic archive and the local engine's snapshot of it."""
    root = tmp_path_factory.mktemp("dask-synthetic")
    generate(root / "raw", POSTS, SEED)
    run_pipeline(root / "raw", root / "local", load_config({}))
    return root / "raw", snapshot(root / "local")


def test_synthetic_archive_equals_local_engine(synthetic: tuple[Path, dict[str, Any]], processes: Client, tmp_path: Path) -> None:
    raw, local = synthetic
    local_report = load_report_data(raw.parent / "local")
    # Small partitions: many tasks, held-back posts in several of them, claims across them.
    report = run_dask(raw, tmp_path / "dask", load_config({}), client=processes, partition=40)
    assert report["inputs"] == POSTS == report["cleaned"] + report["quarantined"]
    found = snapshot(tmp_path / "dask")
    assert differences(local, found) == []
    assert len(found["markdown"]) == report["markdown_written"]
    assert len(list((tmp_path / "dask" / "posts.parquet").glob("part-*.parquet"))) == -(-POSTS // 40)
    assert not list(tmp_path.glob(".*")), "no temporary folder is left beside the output"
    # `pipeline report` reads the partitioned tables as it reads the local engine's files.
    assert replace(load_report_data(tmp_path / "dask"), name="local") == local_report


@pytest.mark.corpus
def test_real_archive_equals_local_engine(corpus_runs: dict[str, tuple[Path, dict[str, Any]]], corpus: Path, processes: Client, tmp_path: Path) -> None:
    local_out, local_report = corpus_runs["ours"]
    report = run_dask(corpus, tmp_path / "dask", load_config({}), client=processes)
    assert report == local_report
    assert report["accounting_ok"] and report["inputs"] == 998
    assert differences(snapshot(local_out), snapshot(tmp_path / "dask")) == []


def _hostile_files() -> dict[str, bytes]:
    """Broken inputs of every kind, names that collide after sanitising, a shared old URL, subfolders, dotfiles."""
    files = {f"{name}.md": data for name, (data, _, _) in CASES.items()}
    for name, slug in (("a.md", "été/x"), ("b.md", "été?x"), ("c.md", "ÉTÉ-X")):
        files[f"collide/{name}"] = f"---\ntitle: T\nslug: '{slug}'\ndate: 2015-03-04\n---\nbody {name}\n".encode()
    for name in ("first.md", "second.md"):
        files[f"old-url/{name}"] = f"---\ntitle: {name}\ndate: 2016-01-02\nredirect_from: ['/old/shared.html']\n---\n{name}\n".encode()
    files["nested/deeper/plain.md"] = POST.encode()
    files[".hidden.md"] = POST.encode()
    files[".git/ignored.md"] = POST.encode()
    return files


HOSTILE_PARAMS = {"resolve": {"max_bytes": 10_000, "max_line_chars": 1_000}}


def test_hostile_archive_from_and_to_memory_equals_local_engine(threads: Client, tmp_path: Path) -> None:
    files = _hostile_files()
    for relative, data in files.items():
        (tmp_path / "raw" / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "raw" / relative).write_bytes(data)
    config = load_config(HOSTILE_PARAMS)
    run_pipeline(tmp_path / "raw", tmp_path / "local", config)
    root = f"memory://dask-test-{uuid.uuid4().hex}"
    memory = fsspec.filesystem("memory")
    try:
        for relative, data in files.items():
            memory.pipe_file(f"{root}/raw/{relative}", data)
        report = run_dask(f"{root}/raw", f"{root}/clean", config, client=threads, partition=8)
        local, found = snapshot(tmp_path / "local"), snapshot(f"{root}/clean")
        assert differences(local, found) == []
        assert report["inputs"] == len(files) - 2 == report["cleaned"] + report["quarantined"]
        problems = report["problems_by_code"]
        assert problems["slug_collision"] >= 2 and problems["redirect_conflict"] >= 1 and report["quarantine_reasons"]["too_large"] == 1
        assert memory.find(f"{root}/clean/posts.parquet")[0].endswith("part-00000.parquet")
    finally:
        memory.rm(root, recursive=True)


def test_rerun_replaces_the_output_and_leaves_no_work_files(synthetic: tuple[Path, dict[str, Any]], threads: Client) -> None:
    raw, local = synthetic
    root = f"memory://dask-test-{uuid.uuid4().hex}"
    memory = fsspec.filesystem("memory")
    try:
        memory.pipe_file(f"{root}/clean/stale.txt", b"from an earlier run")
        for _ in range(2):
            run_dask(raw, f"{root}/clean", load_config({}), client=threads)
        assert differences(local, snapshot(f"{root}/clean")) == []
        base = Place.of(root).path
        names = {path.removeprefix(f"{base}/") for path in memory.find(base)}
        assert not any(name.startswith(".") or "/." in name or name == "clean/stale.txt" for name in names), sorted(names)[:5]
    finally:
        memory.rm(root, recursive=True)


def test_worker_killed_mid_run_loses_and_doubles_nothing(synthetic: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """SIGKILL a worker while it cleans a partition, and another while it writes one: the
    nanny restarts it, Dask reruns its tasks, and the output is still exactly the local one."""
    raw, local = synthetic
    markers = tmp_path / "kills"
    markers.mkdir()

    class KillOnce(WorkerPlugin):
        """Kill this worker 50 ms into the third partition's clean and write tasks, once each."""

        def transition(self, key: Any, start: str, finish: str, **kwargs: Any) -> None:
            for step in ("clean", "write"):
                marker = markers / step
                if finish == "executing" and f"pipeline-{step}-" in str(key) and str(key).endswith("-00002") and not marker.exists():
                    marker.touch()
                    threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGKILL)).start()

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.CRITICAL) as cluster,
        Client(cluster, timeout="30s") as client,
    ):
        before = set(client.run(os.getpid).values())
        client.register_plugin(KillOnce())
        report = run_dask(raw, tmp_path / "dask", load_config({}), client=client, partition=25)
        after = set(client.run(os.getpid).values())
    assert sorted(p.name for p in markers.iterdir()) == ["clean", "write"], "both kills happened"
    assert before - after, "a worker process was killed and replaced"
    assert report["inputs"] == POSTS == report["cleaned"] + report["quarantined"]
    found = snapshot(tmp_path / "dask")
    assert len({row["source_path"] for row in found["posts"]}) == len(found["posts"]) == report["cleaned"]
    assert differences(local, found) == []


def test_cli_runs_the_dask_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "raw"
    generate(raw, 60, SEED)
    params = tmp_path / "params.yaml"
    params.write_text("run:\n  workers: 2\n  engine: dask\n")
    assert main(["run", "--raw", str(raw), "--out", str(tmp_path / "dask"), "--params", str(params), "-q"]) == 0
    assert main(["run", "--engine", "local", "--raw", str(raw), "--out", str(tmp_path / "local"), "--params", str(params), "-q"]) == 0
    assert differences(snapshot(tmp_path / "local"), snapshot(tmp_path / "dask")) == []
    assert capsys.readouterr().err == ""
    # Same input, same partitions: a second run gives the same bytes, Parquet parts included.
    assert main(["run", "--dry-run", "--raw", str(raw), "--out", str(tmp_path / "dask"), "--params", str(params)]) == 0
    assert "in " + str(tmp_path / "dask") + ": 0 files added, 0 changed, 0 removed" in capsys.readouterr().out


def test_cli_errors_are_one_line_naming_the_flag_or_key(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("run:\n  workers: 1\n")
    (tmp_path / "raw").mkdir()
    assert main(["run", "--raw", "memory://nowhere", "--out", str(tmp_path / "o"), "--params", str(params)]) == 2
    assert capsys.readouterr().err.startswith("pipeline run: error: --raw: memory://nowhere is a URL, which only --engine dask reads")
    assert main(["run", "--dry-run", "--engine", "dask", "--raw", str(tmp_path / "raw"), "--out", "memory://o", "--params", str(params)]) == 2
    assert capsys.readouterr().err.startswith("pipeline run: error: --dry-run: compares with a local --out folder, not memory://o")
    monkeypatch.setattr(engine_dask, "_CONNECT_TIMEOUT", "1s")
    code = main(["run", "--scheduler", "tcp://127.0.0.1:9", "--raw", str(tmp_path / "raw"), "--out", str(tmp_path / "o"), "--params", str(params)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("pipeline run: error: run.scheduler: cannot reach the Dask scheduler at tcp://127.0.0.1:9") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_missing_raw_folder_is_an_input_error_before_any_cluster(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="raw folder not found"):
        run_dask("memory://no-such-folder", f"memory://{uuid.uuid4().hex}/clean", load_config({}))
    with pytest.raises(InputError, match="raw folder not found"):
        run_dask(tmp_path / "missing", tmp_path / "clean", load_config({}))


def test_config_keys() -> None:
    assert (load_config({}).run.engine, load_config({}).run.scheduler) == ("local", "")
    with pytest.raises(ConfigError, match=r"^run\.engine: 'spark' is not one of local, dask$"):
        load_config({"run": {"engine": "spark"}})
    with pytest.raises(ConfigError, match=r"^run\.scheduler: is only for run\.engine: dask"):
        load_config({"run": {"scheduler": "tcp://h:8786"}})


def test_a_worker_with_other_code_refuses_the_task(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    job = Job(Place.of(raw), Place.of(tmp_path), load_config({}), "0" * 64, "run")
    with pytest.raises(PipelineError, match="install the same pipeline version on every worker"):
        clean_part(job, 0, [])
    shutil.rmtree(raw)
