"""The README documents every problem code and every posts.parquet column, and opens with the two commands."""

from __future__ import annotations

from pipeline.problems import CODES
from pipeline.tables import POSTS_SCHEMA
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_the_two_commands() -> None:
    block = README.split("```sh\n", 1)[1].split("```", 1)[0]
    assert [line.split()[:2] for line in block.strip().splitlines()] == [["make", "run"], ["make", "test"]]


def test_every_problem_code_is_in_the_readme_table() -> None:
    for code, info in CODES.items():
        assert f"| `{code}` | {info.severity} | {info.meaning} |" in README, code


def test_every_posts_column_is_in_the_readme_schema() -> None:
    for field in POSTS_SCHEMA:
        assert f"| `{field.name}` | `{field.type}` |" in README, field.name
