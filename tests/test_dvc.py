"""`dvc repro` really runs the four stages and the report, and a second `dvc repro` does nothing."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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


def _pipeline_imports(module: Path) -> set[str]:
    """The ``pipeline`` modules a module imports, at any depth of its code (lazy imports too)."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
            names = [node.module] if node.module != "pipeline" else [f"pipeline.{alias.name}" for alias in node.names]
            found.update(names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("pipeline."))
    return {name for name in found if (ROOT / (name.replace(".", "/") + ".py")).is_file()}


def test_each_stage_depends_on_every_module_its_modules_import() -> None:
    """A stage lists the modules whose code makes its output; what those import makes it
    too (``conflicts.py`` compares sides with ``escapes.py``), so DVC must rerun the stage
    when any of them changes. Checked over the closure of each stage's listed modules."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    for name, stage in stages.items():
        listed = {dep for dep in stage["deps"] if dep.startswith("pipeline/") and dep.endswith(".py")}
        closure, todo = set(listed), list(listed)
        while todo:
            for imported in _pipeline_imports(ROOT / todo.pop()):
                path = imported.replace(".", "/") + ".py"
                if path not in closure:
                    closure.add(path)
                    todo.append(path)
        assert closure == listed, f"stage {name} does not list {sorted(closure - listed)}, which its modules import"
