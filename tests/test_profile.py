"""benchmarks/profile.py: py-spy's raw samples sorted by process role, and a real profiled run."""

from __future__ import annotations

from pathlib import Path

import pytest

import benchmarks.profile as profile_module
from benchmarks.profile import find_py_spy, main, parse_stack, profile_of, read_profile, report_lines

# py-spy writes the command line in quotes, unescaped: it may hold ";" and '"'.
COMMAND = '/venv/bin/python -m pipeline run --raw a;b"c --out ";d'


def _line(pids: list[str], thread: str, frames: list[str], count: int, command: str = COMMAND) -> str:
    return ";".join([*(f'process {pid}:"{command}"' for pid in pids), thread, *frames]) + f" {count}"


RAW = [
    _line(["10"], "thread (10): MainThread", ["run_pipeline (pipeline/runner.py:144)", "Exporter.add (pipeline/io.py:725)"], 7),
    _line(["10"], "thread (10)", ["run_pipeline (pipeline/runner.py:144)"], 1),  # py-spy did not get the name
    # py-spy may give a thread another one's name (it caches names by a reused Python id):
    # a thread is told by its functions.
    _line(
        ["10"],
        "thread (11): Thread-1 (_handle_workers)",
        ["Thread._bootstrap (threading.py:995)", "Pool._handle_results (multiprocessing/pool.py:573)", "Connection._recv (multiprocessing/connection.py:390)"],
        5,
    ),
    _line(["10"], "thread (12)", ["Thread._bootstrap (threading.py:995)", "reading_ahead.<locals>.run (pipeline/io.py:136)"], 2),
    _line(
        ["10", "20"],
        "thread (20): MainThread",
        ["worker (multiprocessing/pool.py:114)", "_clean_in_worker (pipeline/runner.py:441)", "duplicate_key (pipeline/site.py:73)"],
        9,
    ),
    _line(
        ["10", "20"], "thread (20): MainThread", ["worker (multiprocessing/pool.py:114)", "SimpleQueue.get (multiprocessing/queues.py:364)"], 3
    ),  # idle between tasks
    _line(
        ["10", "30"],
        "thread (30): MainThread",
        ["worker (multiprocessing/pool.py:114)", "_finish_in_worker (pipeline/runner.py:378)", "create_file (pipeline/io.py:591)"],
        6,
    ),
    _line(["10", "40"], "thread (40): MainThread", ["<module> (dask/worker.py:1)"], 1),
    "",
]


def test_a_raw_line_keeps_its_command_line_whole_and_tells_the_thread() -> None:
    stack = parse_stack(RAW[2])
    assert stack is not None
    assert stack.pids == ("10",) and stack.thread == "pool threads" and stack.count == 5
    assert stack.frames[-1].startswith("Connection._recv ")
    worker = parse_stack(RAW[4])
    assert worker is not None and worker.pids == ("10", "20") and worker.thread == "" and len(worker.frames) == 3
    assert parse_stack(RAW[-1]) is None
    # A line cut short, a line without the thread frame, an id in upper-case hexadecimal.
    assert parse_stack(RAW[4][: RAW[4].rindex(" ")]) is None
    assert parse_stack(f'process 10:"{COMMAND}";run_pipeline (pipeline/runner.py:144) 3') is None
    hex_thread = parse_stack(f'process 10:"{COMMAND}";thread (0x7F3A2B): MainThread;_run_module_as_main (<frozen runpy>:198) 3')
    assert hex_thread is not None and hex_thread.frames == ("_run_module_as_main (<frozen runpy>:198)",) and hex_thread.thread == "main thread"


def test_the_known_command_line_is_matched_whole_whatever_it_holds() -> None:
    # Text that looks like the next frame inside the command line: only the command run,
    # matched exactly, tells where its frame ends.
    nasty = '/venv/bin/python -m pipeline run --raw a";process 1:"b --out c";thread (9): x'
    line = _line(["7", "20"], "thread (20): MainThread", ["worker (multiprocessing/pool.py:114)", "_clean_in_worker (pipeline/runner.py:441)"], 4, nasty)
    stack = parse_stack(line, nasty)
    assert stack is not None and stack.pids == ("7", "20") and stack.frames[-1].startswith("_clean_in_worker ")
    assert parse_stack(line, "/another/python -m pipeline run") is None  # another command: not read
    # py-spy writes an empty command line when it read the process too early.
    empty = parse_stack(_line(["7", "20"], "thread (20): MainThread", ["_clean_in_worker (pipeline/runner.py:441)"], 4, ""), nasty)
    assert empty is not None and empty.pids == ("7", "20")


def test_samples_go_to_the_role_of_their_process() -> None:
    profile = profile_of([s for line in RAW if (s := parse_stack(line)) is not None])
    assert dict(profile.samples) == {"main": 15, "first pass": 12, "second pass": 6, "other": 1}
    # A worker's idle wait for its next task counts to its role, and as a blocking call.
    assert profile.own["first pass"]["SimpleQueue.get (multiprocessing/queues.py:364)"] == 3
    assert profile.blocked == {"main": 5, "first pass": 3}
    assert dict(profile.threads) == {"main thread": 8, "pool threads": 5, "read-ahead thread": 2}
    # Inclusive counts start below each role's anchor: the call chain above it is left out.
    assert dict(profile.below["first pass"]) == {"duplicate_key (pipeline/site.py:73)": 9}
    assert dict(profile.below["main"]) == {"Exporter.add (pipeline/io.py:725)": 7}
    assert {role: len(pids) for role, pids in profile.processes.items() if pids} == {"main": 1, "first pass": 1, "second pass": 1, "other": 1}


def test_the_report_lists_roles_threads_and_flags_blocking_calls() -> None:
    lines = report_lines(profile_of([s for line in RAW if (s := parse_stack(line)) is not None]), rate=100, top=5)
    text = "\n".join(lines)
    assert "| main | 1 | 15 | 44.1% | 0.15 | 33.3% |" in lines, text
    assert "| second pass | 1 | 6 | 17.6% | 0.06 | 0.0% |" in lines
    assert "| `Connection._recv (multiprocessing/connection.py:390)` (blocking call) | 5 | 33.3% |" in lines
    assert "| `duplicate_key (pipeline/site.py:73)` | 9 | 75.0% |" in lines
    # The package's inclusive table holds only pipeline/ functions.
    inclusive = text.split("### first pass: the package's functions below `_clean_in_worker`, inclusive")[1].split("###")[0]
    assert "| `duplicate_key (pipeline/site.py:73)` | 9 | 75.0% |" in inclusive and "_clean_in_worker" not in inclusive
    assert "### other: the package's functions" not in text  # no anchor, no table


def test_lines_it_cannot_read_are_counted_in_the_report(tmp_path: Path) -> None:
    raw = tmp_path / "samples.txt"
    raw.write_text("\n".join([*RAW, "garbage without a count", RAW[0][:-2]]) + "\n", encoding="utf-8")
    profile = read_profile(raw)
    assert profile.total == 34 and profile.unread == 2
    assert report_lines(profile, rate=100, top=3)[0] == "2 line(s) of py-spy's output could not be read and are left out."


def test_a_missing_input_folder_is_refused_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--raw", str(tmp_path / "missing"), "--out", str(tmp_path / "P.md")]) == 2
    assert "no such input folder" in capsys.readouterr().err
    assert not (tmp_path / "P.md").exists()


def test_folders_that_cannot_be_made_are_refused_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    assert main(["--posts", "20", "--out", str(tmp_path / "file" / "P.md")]) == 2
    assert "cannot make the folder" in capsys.readouterr().err
    assert main(["--posts", "20", "--work", str(tmp_path / "file" / "work"), "--out", str(tmp_path / "P.md")]) == 2
    assert not (tmp_path / "P.md").exists()


def test_a_run_that_fails_under_py_spy_is_reported_with_its_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # py-spy exits 0 when the program it ran failed: the missing report must tell.
    if find_py_spy() is None:
        pytest.skip("py-spy is not installed (it comes with the dev extras)")
    missing = tmp_path / "missing-params.yaml"
    code = main(["--posts", "20", "--params", str(missing), "--work", str(tmp_path / "work"), "--out", str(tmp_path / "P.md")])
    err = capsys.readouterr().err
    if "Permission Denied" in err:
        pytest.skip("py-spy may not attach to processes here (ptrace is not permitted)")
    assert code == 1
    assert "the run under py-spy failed" in err and "no report.json" in err and str(missing) in err, err  # the run's own message
    assert not (tmp_path / "P.md").exists()
    assert not list((tmp_path / "work").iterdir())  # the scratch folder is gone


def test_samples_it_cannot_read_at_all_fail_the_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # A stand-in for py-spy that runs the command but writes no stack it could read.
    fake = tmp_path / "py-spy"
    fake.write_text(
        '#!/bin/sh\nwhile [ $# -gt 0 ]; do case "$1" in --output) out="$2"; shift 2;; --) shift; break;; *) shift;; esac; done\n'
        'echo "not a stack" > "$out"\nexec "$@"\n',
        encoding="utf-8",
    )
    fake.chmod(0o755)
    monkeypatch.setattr(profile_module, "find_py_spy", lambda: str(fake))
    assert main(["--posts", "20", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "P.md")]) == 1
    assert "py-spy wrote no sample it could read (1 line(s) unread)" in capsys.readouterr().err
    assert not (tmp_path / "P.md").exists()


def test_a_profiled_run_of_a_synthetic_archive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if find_py_spy() is None:
        pytest.skip("py-spy is not installed (it comes with the dev extras)")
    out = tmp_path / "PROFILE.md"
    code = main(["--posts", "1000", "--rate", "500", "--work", str(tmp_path), "--out", str(out)])
    if code != 0 and "ermission" in capsys.readouterr().err:
        pytest.skip("py-spy may not attach to processes here (ptrace is not permitted)")
    assert code == 0
    text = out.read_text(encoding="utf-8")
    assert "synthetic, 1,000 posts" in text
    for role in ("main", "first pass", "second pass"):
        assert f"\n| {role} | " in text, role
    assert "`clean_doc (pipeline/runner.py:" in text  # below the first pass's anchor
    assert "could not be read" not in text  # every line of py-spy's output was read
    assert [p.name for p in tmp_path.iterdir()] == ["PROFILE.md"]  # the scratch folder is gone
