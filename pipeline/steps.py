"""The registry of named cleaning steps: the one place that fixes their order.

A step is a pure ``str -> str`` function applied to every front-matter string or to the
body. Each can be switched off in ``params.yaml`` (``decode.steps``); a step that changed
something is recorded on the post (``Doc.changes``), which is what the report counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from pipeline import cleanup
from pipeline.escapes import decode_escapes, fix_mojibake, remove_excel_debris

Target = Literal["front_matter", "body"]


@dataclass(frozen=True)
class Step:
    name: str
    target: Target
    function: Callable[[str], str]
    problem_code: str


DECODE_STEPS: Final[tuple[Step, ...]] = (
    # Debris first: ``_x000D_`` can sit inside an escape's neighbourhood and hide mojibake.
    Step("remove_excel_debris", "front_matter", remove_excel_debris, "excel_debris_removed"),
    Step("decode_escapes", "front_matter", decode_escapes, "escapes_decoded"),
    Step("fix_mojibake", "front_matter", fix_mojibake, "mojibake_fixed"),
    Step("remove_body_excel_debris", "body", remove_excel_debris, "excel_debris_removed"),
    Step("fix_body_mojibake", "body", fix_mojibake, "mojibake_fixed"),
)
STEP_NAMES: Final[tuple[str, ...]] = tuple(step.name for step in DECODE_STEPS)


# Body cleanup at export, in the order pipeline/cleanup.py fixes; switchable in
# ``export.cleanup``. Each takes the output target, which only the YouTube step uses.
def _youtube(text: str, target: str) -> str:
    return cleanup.convert_youtube_shortcodes(text, "hugo" if target == "hugo" else "jekyll")


def _ignoring_target(step: Callable[[str], str]) -> Callable[[str, str], str]:
    def run(text: str, target: str) -> str:
        del target
        return step(text)

    return run


CLEANUP_STEPS: Final[tuple[tuple[str, Callable[[str, str], str]], ...]] = tuple(
    (name, _youtube if name == "convert_youtube_shortcodes" else _ignoring_target(getattr(cleanup, name))) for name in cleanup.CLEANUP_STEP_NAMES
)
