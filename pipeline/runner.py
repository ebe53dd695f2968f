"""Two ways to run the same stage functions: all at once, or one stage per process (DVC).

``run_pipeline`` streams each post through every stage and straight into the export
writers, with no intermediate files. ``run_first_stage``, ``run_middle_stage`` and
``run_export`` read and write ``data/NN_stage/docs.parquet`` so that DVC can rerun one
stage. Both give the same outputs; a test proves it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.io import DocWriter, Exporter, discover, read_doc, read_docs
from pipeline.record import Doc
from pipeline.stages import STAGES
from pipeline.vocabulary import with_learned_categories

Stage = Callable[[Doc, Config], Doc]
STAGE_NAMES = tuple(name for name, _ in STAGES)


def read_inputs(raw_dir: Path, config: Config) -> Iterator[Doc]:
    """Every input under ``raw_dir`` as a Doc, in sorted path order."""
    for relative in discover(raw_dir):
        yield read_doc(raw_dir, relative, config.resolve.max_bytes)


def process(docs: Iterable[Doc], config: Config, stages: tuple[str, ...] = STAGE_NAMES) -> Iterator[Doc]:
    """Docs through the named stages in order; after extract, the archive-wide category step."""
    for name in stages:
        docs = _apply(stage_function(name), docs, config)
        if name == "extract":
            docs = with_learned_categories(docs)
    return iter(docs)


def _apply(stage: Stage, docs: Iterable[Doc], config: Config) -> Iterator[Doc]:
    for doc in docs:
        yield stage(doc, config)


def run_pipeline(raw_dir: Path, out_dir: Path, config: Config) -> dict[str, Any]:
    """Run every stage on ``raw_dir`` and write the export outputs to ``out_dir``."""
    exporter = Exporter(out_dir, config)
    try:
        for doc in process(read_inputs(raw_dir, config), config):
            exporter.add(doc)
    except BaseException:
        exporter.abandon()
        raise
    return exporter.finish()


def stage_function(name: str) -> Stage:
    return dict(STAGES)[name]


def run_first_stage(raw_dir: Path, out_dir: Path, config: Config) -> int:
    """resolve: read the raw folder, write resolved Docs."""
    return _write_docs(process(read_inputs(raw_dir, config), config, ("resolve",)), out_dir, config)


def run_middle_stage(name: str, in_dir: Path, out_dir: Path, config: Config) -> int:
    """decode or extract: read the previous stage's Docs, write this stage's."""
    return _write_docs(process(read_docs(in_dir), config, (name,)), out_dir, config)


def run_export(in_dir: Path, out_dir: Path, config: Config) -> dict[str, Any]:
    """export: read extracted Docs, write the final outputs."""
    exporter = Exporter(out_dir, config)
    try:
        for doc in read_docs(in_dir):
            exporter.add(doc)
    except BaseException:
        exporter.abandon()
        raise
    return exporter.finish()


def _write_docs(docs: Iterator[Doc], out_dir: Path, config: Config) -> int:
    writer = DocWriter(out_dir, config.export.batch_size)
    try:
        for doc in docs:
            writer.add(doc)
    except BaseException:
        writer.abandon()
        raise
    return writer.finish()
