"""Read-ahead of the inputs (``run.read_ahead``), measured on inputs read cold from the disk.

    python -m benchmarks.cold_inputs [--posts 10000] [--raw DIR] [--runs 3] [--ahead 0,512]
                                     [--seed 20240601] [--work DIR]

A batch run usually meets its inputs where a clone or an export left them: on the disk, not
in the page cache. ``pipeline run`` then reads each small file in a worker that waits for
it. This script measures what asking the kernel to fetch the next inputs ahead
(``pipeline.io.reading_ahead``) changes, on a synthetic archive of ``--posts`` posts
(``benchmarks.synthetic``, generated once) or on ``--raw``:

- **cold**: before each run, dirty pages are written (``sync``) and the page cache is
  dropped (``/proc/sys/vm/drop_caches``, which needs root: without it the script says so
  and exits 2). Everything is read from the disk again, the interpreter and libraries too.
- **warm**: the same runs without dropping anything, to show what the hints cost when the
  inputs are in memory already.

Each ``run.read_ahead`` of ``--ahead`` runs in turn, ``--runs`` rounds, each run into a new
output folder (with ``params.yaml`` copied with that value, as ``--params``); every output
must equal the first one's, byte for byte (the hints change no output). Prints a Markdown
table of medians, measured from outside as ``benchmarks.bench`` does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import yaml

from benchmarks.bench import PYTHON, ROOT, Measure, compare_trees, compile_bytecode, machine, measure, scratch_input

DROP_CACHES = Path("/proc/sys/vm/drop_caches")


def drop_page_cache() -> None:
    """Write dirty pages, then drop the clean ones (page cache only: ``1``)."""
    os.sync()
    DROP_CACHES.write_text("1\n", encoding="ascii")


def params_with(ahead: int, folder: Path) -> Path:
    """A copy of the repository's params.yaml with ``run.read_ahead`` set to ``ahead``."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8")) or {}
    params.setdefault("run", {})["read_ahead"] = ahead
    path = folder / f"params-read-ahead-{ahead}.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cold_inputs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=10_000, help="synthetic archive size (default: 10000)")
    parser.add_argument("--raw", type=Path, help="measure this input folder instead of a synthetic archive")
    parser.add_argument("--runs", type=int, default=3, help="rounds; each runs every --ahead value cold, then warm (default: 3)")
    parser.add_argument("--ahead", default="0,512", help="run.read_ahead values to compare, comma-separated (default: 0,512)")
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "out", help="scratch folder (default: benchmarks/out)")
    args = parser.parse_args(argv)
    aheads = [int(x) for x in args.ahead.split(",") if x.strip()]
    try:
        drop_page_cache()
    except OSError as err:
        print(f"cold_inputs: cannot drop the page cache ({DROP_CACHES}: {err.strerror}); run as root", file=sys.stderr)
        return 2
    compile_bytecode()
    with scratch_input(args.work, "cold-", args.raw, args.posts, args.seed) as (work, raw, posts):
        params = {ahead: params_with(ahead, work) for ahead in aheads}
        runs: dict[tuple[str, int], list[Measure]] = {}
        reference: Path | None = None
        for number in range(args.runs):
            for condition in ("cold", "warm"):
                for ahead in aheads:
                    out = work / f"out-{condition}-{ahead}-{number}"
                    if condition == "cold":
                        drop_page_cache()
                    run = measure([PYTHON, "-m", "pipeline", "run", "--params", params[ahead], "--raw", raw, "--out", out, "-q"])
                    if run.returncode != 0:
                        print(f"cold_inputs: pipeline run failed ({run.returncode}): {run.stderr.strip()}", file=sys.stderr)
                        return 1
                    if reference is None:
                        reference = out
                    elif differing := compare_trees(reference, out):
                        print(f"cold_inputs: {out.name} differs from {reference.name}: {', '.join(differing[:5])}", file=sys.stderr)
                        return 1
                    runs.setdefault((condition, ahead), []).append(run)
                    print(f"{condition} read_ahead={ahead}: {run.wall:.2f} s, CPU {run.cpu:.2f} s", file=sys.stderr, flush=True)
        print("\n".join(machine()))
        print(f"- input: {raw if args.raw else f'synthetic, {posts:,} posts, seed {args.seed}'}; {args.runs} round(s)")
        print(f"- command: `python -m benchmarks.cold_inputs {' '.join(argv if argv is not None else sys.argv[1:])}`\n")
        print("| page cache | `run.read_ahead` | wall, median [min–max] (s) | CPU (s) | posts/s | outputs identical |")
        print("| --- | --- | --- | --- | --- | --- |")
        for (condition, ahead), measures in runs.items():
            walls = [m.wall for m in measures]
            wall = statistics.median(walls)
            cpu = statistics.median(m.cpu for m in measures)
            print(f"| {condition} | {ahead} | {wall:.2f} [{min(walls):.2f}–{max(walls):.2f}] | {cpu:.2f} | {posts / wall:,.0f} | yes |")
        return 0


if __name__ == "__main__":
    sys.exit(main())
