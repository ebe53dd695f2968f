"""The one record that flows through the stages, and what a step reports it changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.conflicts import Block
from pipeline.problems import Problem, worst_severity
from pipeline.wordpress_row import WordPressRow


@dataclass(frozen=True)
class Change:
    """A named step changed ``count`` values (or lines) of a post in ``stage``."""

    stage: str
    step: str
    count: int


@dataclass(frozen=True)
class Doc:
    """A post on its way through the stages; each stage fills more fields.

    ``text`` is the whole text (after resolve: without conflict blocks); ``front_matter``
    and ``body`` are set by decode; ``row`` by extract.
    """

    source_path: str
    sha256: str
    raw: bytes
    text: str = ""
    front_matter: dict[str, Any] | None = None
    has_front_matter: bool = False
    body: str = ""
    row: WordPressRow | None = None
    blocks: tuple[Block, ...] = ()
    problems: tuple[Problem, ...] = ()
    changes: tuple[Change, ...] = field(default=())

    @property
    def fatal(self) -> Problem | None:
        """The first fatal problem, the reason this post goes to quarantine."""
        if worst_severity(self.problems) != "fatal":
            return None
        return next(p for p in self.problems if p.severity == "fatal")
