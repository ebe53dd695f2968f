"""Front matter in and out: safe YAML only, keys in a readable order.

Reading uses python-frontmatter to split the text and a loader stricter than PyYAML's
``SafeLoader``: no aliases (alias bombs), duplicate keys reported, and timestamps left as
strings so that every date goes through ``pipeline.dates`` the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import frontmatter
import yaml

_HANDLER: Final = frontmatter.default_handlers.YAMLHandler()


class FrontMatterError(Exception):
    """The front matter cannot be read; ``code`` is a problem code, ``line`` 1-based."""

    def __init__(self, code: str, message: str, line: int | None) -> None:
        super().__init__(message)
        self.code = code
        self.line = line


class _StrictLoader(yaml.CSafeLoader):
    """libyaml's safe loader, refusing aliases and noting duplicate keys.

    An alias makes libyaml hand the same node twice; refusing a node met a second time
    stops alias bombs before anything is expanded.
    """

    duplicate_keys: list[tuple[str, int]]

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        if node in self.constructed_objects or node in self.recursive_objects:
            raise FrontMatterError(
                "front_matter_alias",
                "YAML alias in front matter is refused (alias bombs); write the value out in full",
                node.start_mark.line + 1,
            )
        return super().construct_object(node, deep=deep)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = key_node.value
            if key in seen:
                self.duplicate_keys.append((str(key), key_node.start_mark.line + 1))
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"] for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass(frozen=True)
class Split:
    """A text split into front matter and body; ``front_matter`` is None when there is none."""

    front_matter: dict[str, Any] | None
    body: str
    duplicate_keys: tuple[tuple[str, int], ...] = ()
    unterminated: bool = False


def split_front_matter(text: str) -> Split:
    """Split ``text`` into its YAML front matter (a dict) and its body.

    Raises FrontMatterError when the front matter is present but not a safe YAML mapping.

    >>> split_front_matter("---\\ntitle: Été\\ndate: 2014-12-05 16:38:27 +0100\\n---\\n\\nBody\\n")
    Split(front_matter={'title': 'Été', 'date': '2014-12-05 16:38:27 +0100'}, body='Body', duplicate_keys=(), unterminated=False)
    """
    if not _HANDLER.detect(text):
        return Split(None, text.strip("\n").rstrip())
    try:
        raw_fm, body = _HANDLER.split(text)
    except ValueError:
        return Split(None, text.strip("\n").rstrip(), unterminated=True)
    loader = _StrictLoader(raw_fm)
    loader.duplicate_keys = []
    try:
        value = loader.get_single_data()
    except FrontMatterError as err:
        err.line = (err.line or 0) + 1 if err.line is not None else None
        raise
    except yaml.constructor.ConstructorError as err:
        raise FrontMatterError(
            "front_matter_unsafe_tag",
            f"front matter uses a tag safe YAML refuses ({err.problem}); remove the tag",
            _mark_line(err),
        ) from None
    except yaml.YAMLError as err:
        raise FrontMatterError(
            "front_matter_invalid",
            f"front matter is not valid YAML ({getattr(err, 'problem', None) or err}); fix the syntax",
            _mark_line(err),
        ) from None
    finally:
        loader.dispose()
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise FrontMatterError(
            "front_matter_not_mapping",
            f"front matter is a YAML {type(value).__name__}, not a mapping; write it as key: value lines",
            2,
        )
    duplicates = tuple((key, line + 1) for key, line in loader.duplicate_keys)
    return Split({str(k): v for k, v in value.items()}, body.strip("\n").rstrip(), duplicates)


def _mark_line(err: yaml.YAMLError) -> int | None:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    # +1 for 1-based lines, +1 for the opening --- line before the YAML.
    return mark.line + 2 if mark is not None else None


class _Dumper(yaml.CSafeDumper):
    pass


def _represent_datetime(dumper: yaml.CSafeDumper, value: datetime) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", value.isoformat())


_Dumper.add_representer(datetime, _represent_datetime)


def dump_markdown(front_matter: dict[str, Any], body: str) -> str:
    """Write a Markdown file: ``---``, the front matter in the given key order, ``---``, body.

    >>> print(dump_markdown({"title": "Été", "tags": ["a b", "c"]}, "Text"), end="")
    ---
    title: Été
    tags:
    - a b
    - c
    ---
    <BLANKLINE>
    Text
    """
    yaml_text = yaml.dump(
        front_matter,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1_000_000,
    )
    body = body.strip("\n")
    return f"---\n{yaml_text}---\n\n{body}\n" if body else f"---\n{yaml_text}---\n"
