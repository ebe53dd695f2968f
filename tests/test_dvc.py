"""`dvc repro` really runs the four stages and the report, and a second `dvc repro` does nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _dvc() -> str:
    dvc = Path(sys.executable).with_name("dvc")
    if not dvc.exists():
        pytest.skip("dvc is not installed in this environment (pip install -e '.[dev]')")
    return str(dvc)


def test_dvc_repro_runs_the_stages_then_nothing(tmp_path: Path) -> None:
    dvc = _dvc()
    project = tmp_path / "project"
    project.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "raw", project / "raw")
    shutil.copytree(ROOT / "pipeline", project / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}

    def run(*args: str) -> str:
        result = subprocess.run([dvc, *args], cwd=project, env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    run("init", "--no-scm", "-q")
    first = run("repro")
    for stage in ("resolve", "decode", "extract", "export", "report"):
        assert f"Running stage '{stage}'" in first
    assert (project / "data" / "03_extract" / "docs.parquet").is_file()
    assert 'data-metric="inputs"' in (project / "clean" / "report.html").read_text(encoding="utf-8")
    report = json.loads((project / "clean" / "report.json").read_text())
    assert (report["inputs"], report["cleaned"], report["quarantined"]) == (3, 3, 0)
    second = run("repro")
    assert "Running stage" not in second and "up to date" in second
