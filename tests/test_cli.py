"""The command line: exit codes and one-line messages naming the key, file or flag."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import main
from tests.conftest import RAW, ROOT, corpus_or_skip

PARAMS = ROOT / "params.yaml"


def _raw_with(tmp_path: Path, files: dict[str, bytes]) -> Path:
    raw = tmp_path / "raw"
    shutil.copytree(RAW, raw)
    for name, data in files.items():
        (raw / name).write_bytes(data)
    return raw


def test_run_on_the_seeds_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--raw", str(RAW), "--out", str(tmp_path / "out"), "--params", str(PARAMS)]) == 0
    assert "3 inputs: 3 cleaned, 0 quarantined" in capsys.readouterr().out
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["accounting_ok"] is True


def test_strict_exits_1_when_something_is_quarantined(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = _raw_with(tmp_path, {"broken.md": b"---\ntitle: x\n---\n\x00\x01"})
    args = ["run", "--raw", str(raw), "--out", str(tmp_path / "out"), "--params", str(PARAMS)]
    assert main(args) == 0
    assert main([*args, "--strict"]) == 1
    err = capsys.readouterr().err
    assert "1 x binary_file" in err and "strict: 1 quarantined" in err


def test_unknown_params_key_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("resolve:\n  side: ours\n  sdie: theirs\n")
    assert main(["run", "--raw", str(RAW), "--out", str(tmp_path / "out"), "--params", str(params)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("pipeline run: error: resolve.sdie: unknown key") and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_bad_value_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("decode:\n  timezone: Mars/Olympus\n")
    assert main(["run", "--raw", str(RAW), "--out", str(tmp_path / "out"), "--params", str(params)]) == 2
    assert "decode.timezone: unknown time zone 'Mars/Olympus'" in capsys.readouterr().err


def test_missing_raw_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--raw", str(tmp_path / "nope"), "--out", str(tmp_path / "out"), "--params", str(PARAMS)]) == 2
    assert "raw folder not found" in capsys.readouterr().err


def test_missing_stage_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decode", "--in", str(tmp_path / "nope"), "--out", str(tmp_path / "out"), "--params", str(PARAMS)]) == 2
    assert "run the previous stage first" in capsys.readouterr().err


def test_bad_flag_exits_2() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--side", "both"])
    assert exit_info.value.code == 2


def test_console_script_runs_as_a_real_process(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--raw", str(RAW), "--out", str(tmp_path / "out"), "--params", str(PARAMS), "--side", "theirs"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "resolved (theirs)" in result.stdout
    version = subprocess.run([sys.executable, "-m", "pipeline", "--version"], capture_output=True, text=True, check=False)
    assert version.returncode == 0 and version.stdout.startswith("pipeline ")


def test_the_command_exits_with_main_s_code_and_its_whole_output(tmp_path: Path) -> None:
    """``python -m pipeline`` ends with ``os._exit`` after the exit handlers (``cli.run``):
    every exit code still comes through, and nothing printed is lost."""

    buffered = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}  # as a user's shell has it

    def command(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, check=False, env=buffered)

    missing = command("run", "--raw", str(tmp_path / "nope"), "--out", str(tmp_path / "out"), "--params", str(PARAMS))
    assert missing.returncode == 2 and "raw folder not found" in missing.stderr
    bad_flag = command("run", "--side", "both")
    assert bad_flag.returncode == 2 and "invalid choice" in bad_flag.stderr
    helped = command("run", "--help")
    assert helped.returncode == 0 and helped.stdout.rstrip().endswith("--side ours")
    verbose = command("run", "--raw", str(RAW), "--out", str(tmp_path / "out"), "--params", str(PARAMS), "-v", "--log-format", "json")
    assert verbose.returncode == 0, verbose.stderr
    messages = [json.loads(line) for line in verbose.stderr.splitlines()]
    assert messages and all("message" in m for m in messages)
    assert (tmp_path / "out" / "report.json").is_file()


def test_the_command_waits_for_threads_and_exit_handlers_before_it_ends(tmp_path: Path) -> None:
    """``cli.run`` ends with ``os._exit``, after what the interpreter would still have done:
    a thread that is not a daemon finishes, and the exit handlers run."""
    done, handled = tmp_path / "thread-done", tmp_path / "handler-ran"
    script = f"""
import atexit, pathlib, threading, time
import pipeline.cli as cli

def work() -> None:
    time.sleep(0.3)
    pathlib.Path({str(done)!r}).write_text("done")

def main() -> int:
    threading.Thread(target=work).start()
    atexit.register(lambda: pathlib.Path({str(handled)!r}).write_text("ran"))
    return 3

cli.main = main
cli.run()
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 3, result.stderr
    assert done.read_text() == "done" and handled.read_text() == "ran"


def test_sides_reports_differences_and_strict_fails_on_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    same = "---\ntitle: T\n<<<<<<< HEAD\ntags: ['été']\n=======\ntags: [\"\\u00e9t\\u00e9\"]\n>>>>>>> x\n---\nbody\n"
    (raw / "same.md").write_text(same)
    (raw / "differ.md").write_text("---\n<<<<<<< HEAD\ntitle: Un\n=======\ntitle: Deux\n>>>>>>> x\n---\nbody\n")
    report = tmp_path / "sides.json"
    assert main(["sides", "--raw", str(raw), "--report", str(report), "--params", str(PARAMS), "--strict"]) == 1
    assert "1/2 posts equal" in capsys.readouterr().out
    result = json.loads(report.read_text())
    assert {(d["source_path"], d["field"]) for d in result["differences"]} >= {("differ.md", "title")}
    assert all(d["source_path"] == "differ.md" for d in result["differences"])


def test_sides_on_the_archive_all_agree(capsys: pytest.CaptureFixture[str]) -> None:
    raw = corpus_or_skip()
    assert main(["sides", "--raw", str(raw), "--params", str(PARAMS), "--strict"]) == 0
    assert "998/998 posts equal from ours and theirs" in capsys.readouterr().out


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--raw", str(RAW), "--out", str(tmp_path / "out"), "--params", str(PARAMS)]) == 0
    assert "posts," not in capsys.readouterr().err


def test_explain_shows_every_stage_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    post = tmp_path / "2014-07-05-velo.md"
    post.write_text(
        "---\ntitle: Vélo\ndate: 2014-07-05 10:00:00 +0100\n<<<<<<< HEAD\ntags: ['été']\n=======\n"
        'tags: ["\\u00e9t\\u00e9"]\n>>>>>>> abc\n---\n\nTexte [lien]() fin.\n'
        '"2014-07-05 10:00:00https://blog.org/2014/07/velo.htmlétépublish3jean plumevelo2014-07-06 11:00:00\n'
    )
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["explain", str(post), "--params", str(PARAMS), "--side", "theirs"]) == 0
    out = capsys.readouterr().out
    for section in ("## resolve", "## decode", "## extract", "## export", "## problems", "export row:", "final Markdown"):
        assert section in out
    assert "-<<<<<<< HEAD" in out and "+Texte lien fin." in out and "date_offset_corrected" in out
    assert "'jean plume'" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_dry_run_reports_changes_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["run", "--raw", str(RAW), "--out", str(out), "--params", str(PARAMS)]) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["run", "--raw", str(RAW), "--out", str(out), "--params", str(PARAMS), "--side", "theirs", "--dry-run"]) == 0
    result = capsys.readouterr()
    assert "dry run: would clean 3 and quarantine 0 of 3 inputs" in result.out and "0 removed" in result.out
    assert "changed: posts.parquet" in result.err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert main(["resolve", "--raw", str(RAW), "--out", str(tmp_path / "stage"), "--params", str(PARAMS), "--dry-run"]) == 0
    assert "would write 3 resolved posts" in capsys.readouterr().out and not (tmp_path / "stage").exists()


def test_json_logs_and_quiet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", "--raw", str(RAW), "--out", str(tmp_path / "out"), "--params", str(PARAMS)]
    assert main([*args, "--log-format", "json", "-v"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    summary = next(line for line in lines if line["level"] == "result")
    assert (summary["command"], summary["inputs"], summary["cleaned"]) == ("run", 3, 3)
    assert any(line["level"] == "debug" and line["name"] == "no_front_matter" for line in lines)
    assert main([*args, "-q"]) == 0
    quiet = capsys.readouterr()
    assert quiet.out == "" and quiet.err == ""


def test_cached_reruns_say_whether_they_patched_and_dry_runs_leave_no_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["run", "--raw", str(RAW), "--out", str(tmp_path / "out"), "--params", str(PARAMS), "--cache", str(tmp_path / "cache")]
    assert main(args) == 0
    assert "cache: 0/3 inputs reused" in capsys.readouterr().err
    assert main(args) == 0
    assert f"cache: 3/3 inputs reused from {tmp_path / 'cache'} (previous output patched in place, 0 post(s) redone)" in capsys.readouterr().err
    assert main([*args, "--side", "theirs"]) == 0
    assert "(whole second pass: the code or the params changed since the previous run)" in capsys.readouterr().err
    logs = sorted((tmp_path / "cache" / "runs").iterdir())
    assert main([*args, "--dry-run"]) == 0
    assert sorted((tmp_path / "cache" / "runs").iterdir()) == logs


def test_a_run_tunes_the_cycle_collector_and_puts_it_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    import pipeline.cli

    seen: list[tuple[tuple[int, int, int], int]] = []
    real_dispatch = pipeline.cli._dispatch

    def dispatch(*args: object) -> int:
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        return real_dispatch(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline.cli, "_dispatch", dispatch)
    before = gc.get_threshold()
    assert main(["run", "-q", "--raw", str(RAW), "--out", str(tmp_path / "out"), "--params", str(PARAMS)]) == 0
    assert seen[0][0] == (50_000, 20, 100) and seen[0][1] > 0
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)


_HEAP_PROBE = """
import ctypes, sys
from pipeline.cli import _steady_heap

class Info(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "steady":
    _steady_heap()
libc.free(libc.malloc(8 << 20))  # a mapped block freed: by default glibc's threshold climbs to its size
before = libc.mallinfo2().hblks
block = libc.malloc(1 << 20)
print(libc.mallinfo2().hblks - before)
"""


def test_large_blocks_stay_off_the_heap_once_main_starts() -> None:
    """``_steady_heap`` fixes glibc's mmap threshold: a 1 MiB block is mapped on its own even
    after a larger mapped block was freed, which by default moves such blocks onto the heap."""
    try:
        import ctypes

        ctypes.CDLL(None).mallinfo2  # noqa: B018
    except (OSError, AttributeError):
        pytest.skip("needs glibc 2.33 or later (mallinfo2)")
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_MMAP_THRESHOLD_"}

    def mapped(mode: str) -> str:
        return subprocess.run([sys.executable, "-c", _HEAP_PROBE, mode], capture_output=True, text=True, check=True, cwd=ROOT, env=env).stdout.strip()

    assert (mapped("default"), mapped("steady")) == ("0", "1")


def test_a_full_disk_mid_run_exits_3_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Seen in session 19: a disk filled up during a run, which ended in a traceback."""
    import errno

    import pipeline.io

    out = tmp_path / "out"
    assert main(["run", "--raw", str(RAW), "--out", str(out), "--params", str(PARAMS)]) == 0
    before = {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()}
    capsys.readouterr()

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(out) + ".tmp/.spill.pickle")

    monkeypatch.setattr(pipeline.io.Exporter, "add", full)
    assert main(["run", "--raw", str(RAW), "--out", str(out), "--params", str(PARAMS)]) == 3
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("pipeline run: error: the system refused: No space left on device (")
    assert "Traceback" not in err
    assert {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()} == before


def test_an_error_that_is_not_the_system_refusing_keeps_its_traceback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import pipeline.io

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(pipeline.io.Exporter, "add", broken)
    with pytest.raises(OSError, match="Invalid argument"):
        main(["run", "--raw", str(RAW), "--out", str(tmp_path / "out"), "--params", str(PARAMS)])
