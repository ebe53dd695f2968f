"""The Dask engine against the local one on a large synthetic archive: equal outputs, and how it scales.

    python -m benchmarks.dask_scaling [--posts 100000] [--seed 20240601] [--workers 1,2]
                                      [--work DIR] [--json FILE]

Generates the archive once (``benchmarks.synthetic``), then runs ``pipeline run`` as a child
process, measured from outside as ``benchmarks.bench`` does (wall, CPU of the process tree,
peak RSS): the local engine, then the Dask engine (a LocalCluster of N worker processes),
for each N of ``--workers``. Every Dask output is compared with the local engine's output
of the same archive: each table read back and sorted (posts by ``source_path``), every
Markdown file byte for byte, redirects.csv and report.json byte for byte, and the accounting.
Prints a Markdown table (pasted into docs/DASK.md) and, with ``--json``, writes the figures.
Too slow for ``make test`` at 100,000 posts (about 25 minutes on 2 cores); the tests run the
same comparison on small archives.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from benchmarks.bench import ROOT, Measure, measure
from benchmarks.synthetic import generate
from pipeline.engine_dask import read_table

# Sort keys that make each table's row order irrelevant (the Dask tables are partitioned).
SORT_KEYS = {
    "posts": ["source_path"],
    "quarantine": ["source_path"],
    "conflicts": ["source_path", "start_line"],
    "problems": ["source_path", "code", "severity", "line", "message"],
    "links": ["source_path", "original_target", "new_target", "status", "rule"],
    "authors": ["wp_author_id"],
}


def compare_outputs(left: Path, right: Path) -> list[str]:
    """What differs between two output folders of either engine (empty when they are equal)."""
    differ = []
    for name, keys in SORT_KEYS.items():
        tables = [read_table(folder, name) for folder in (left, right)]
        ordered: list[pa.Table] = [t.sort_by([(key, "ascending") for key in keys]) for t in tables]
        if not ordered[0].equals(ordered[1]):
            differ.append(f"{name}.parquet")
    names = [sorted(p.name for p in (folder / "posts").iterdir()) for folder in (left, right)]
    if names[0] != names[1]:
        differ.append(f"posts/ names ({len(names[0])} vs {len(names[1])} files)")
    else:
        differ += [f"posts/{n}" for n in names[0] if not filecmp.cmp(left / "posts" / n, right / "posts" / n, shallow=False)][:5]
    differ += [n for n in ("redirects.csv", "report.json") if not filecmp.cmp(left / n, right / n, shallow=False)]
    return differ


def _params(work: Path, engine: str, workers: int) -> Path:
    path = work / f"params-{engine}-{workers}.yaml"
    path.write_text(f"run:\n  engine: {engine}\n  workers: {workers}\n", encoding="utf-8")
    return path


def _run(raw: Path, out: Path, params: Path) -> Measure:
    pipeline = ROOT / ".venv" / "bin" / "pipeline"
    command: list[str | Path] = [pipeline] if pipeline.exists() else [sys.executable, "-m", "pipeline"]
    m = measure([*command, "run", "--raw", raw, "--out", out, "--params", params, "-q"])
    if m.returncode != 0:
        raise SystemExit(f"dask_scaling: `pipeline run` exited {m.returncode}: {m.stderr.strip()[-800:]}")
    return m


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dask_scaling", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--posts", type=int, default=100_000, help="synthetic posts (default: 100000)")
    parser.add_argument("--seed", type=int, default=20240601, help="generator seed (default: 20240601)")
    parser.add_argument("--workers", default="1,2", help="Dask worker processes to measure, comma-separated (default: 1,2)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one, removed afterwards)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="dask-scaling-"))
    work.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    try:
        raw = work / "raw"
        if not raw.is_dir():
            started = time.perf_counter()
            generate(raw, args.posts, args.seed)
            print(f"generated {args.posts} posts in {time.perf_counter() - started:.1f} s", flush=True)
        # The local engine with the most workers first: every other run is compared with it.
        runs = [("local", max(counts)), *(("dask", n) for n in counts), *(("local", n) for n in counts if n != max(counts))]
        reference = work / "out-reference"
        for engine, workers in runs:
            out = reference if not rows else work / f"out-{engine}-{workers}"
            m = _run(raw, out, _params(work, engine, workers))
            report = json.loads((out / "report.json").read_text(encoding="utf-8"))
            differ = [] if out == reference else compare_outputs(reference, out)
            row = {
                "engine": engine,
                "workers": workers,
                "wall_s": round(m.wall, 2),
                "cpu_s": round(m.cpu, 2),
                "posts_per_s": round(args.posts / m.wall, 1),
                "peak_rss_mib": round(m.maxrss_kb / 1024),
                "tree_rss_mib": round(m.tree_rss_kb / 1024),
                "accounting_ok": report["accounting_ok"] and report["inputs"] == args.posts,
                "equal_to_local": not differ,
                "differences": differ,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            if out != reference:
                shutil.rmtree(out)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    local = {r["workers"]: r["wall_s"] for r in rows if r["engine"] == "local"}
    print(f"\n{args.posts:,} synthetic posts (seed {args.seed}); {os.cpu_count()} CPUs; Python {platform.python_version()}\n")
    print("| engine | workers | wall (s) | CPU (s) | posts/s | vs local, same workers | peak RSS, one process (MiB) | Σ RSS, tree (MiB) | equal | accounting |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        ratio = f"{r['wall_s'] / local[r['workers']]:.2f}×" if r["workers"] in local else "–"
        equal = "reference" if r["engine"] == "local" and r["workers"] == max(counts) else ("yes" if r["equal_to_local"] else f"NO: {r['differences'][:3]}")
        cells = [r["engine"], r["workers"], r["wall_s"], r["cpu_s"], f"{r['posts_per_s']:,}", ratio, r["peak_rss_mib"], r["tree_rss_mib"], equal]
        print("| " + " | ".join(map(str, cells)) + f" | {'ok' if r['accounting_ok'] else 'FAILED'} |")
    if args.json:
        args.json.write_text(json.dumps({"posts": args.posts, "seed": args.seed, "runs": rows}, indent=2) + "\n", encoding="utf-8")
    return 0 if all(r["equal_to_local"] and r["accounting_ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
