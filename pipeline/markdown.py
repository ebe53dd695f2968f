"""Front matter in and out: safe YAML only, keys in a readable order.

Reading uses python-frontmatter to split the text and a loader stricter than PyYAML's
``SafeLoader``: no aliases (alias bombs), duplicate keys reported, and timestamps left as
strings so that every date goes through ``pipeline.dates`` the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import frontmatter
import yaml

from pipeline.simple_yaml import Reader, Writer

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
        seen: set[str] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise FrontMatterError(
                    "front_matter_invalid",
                    "a front-matter key is a list or mapping; keys must be plain names",
                    key_node.start_mark.line + 1,
                )
            if key_node.value in seen:
                self.duplicate_keys.append((key_node.value, key_node.start_mark.line + 1))
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"] for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


# The simple forms nearly every front matter has, read and written without PyYAML's Python
# side (``pipeline.simple_yaml``); anything else, and every error, goes through PyYAML.
_SIMPLE_READER: Final = Reader(_StrictLoader.yaml_implicit_resolvers)


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
    simple = _SIMPLE_READER.read_mapping(raw_fm)
    if simple is not None:
        return Split(simple[0], body.strip("\n").rstrip(), simple[1])
    loader = _StrictLoader(raw_fm)
    loader.duplicate_keys = []
    try:
        value = loader.get_single_data()
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
    duplicates = tuple(loader.duplicate_keys)
    return Split({str(k): v for k, v in value.items()}, body.strip("\n").rstrip(), duplicates)


def _mark_line(err: yaml.YAMLError) -> int | None:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    # The YAML text starts with the newline that ends the opening ---, so its 0-based line
    # number is already the file's 1-based one.
    return mark.line + 1 if mark is not None else None


class _Dumper(yaml.CSafeDumper):
    pass


class _PyDumper(yaml.SafeDumper):
    """libyaml's emitter escapes characters beyond U+FFFF; the Python one writes them as is."""


def _represent_datetime(dumper: Any, value: datetime) -> yaml.Node:
    node: yaml.Node = dumper.represent_scalar("tag:yaml.org,2002:timestamp", value.isoformat())
    return node


_Dumper.add_representer(datetime, _represent_datetime)
_PyDumper.add_representer(datetime, _represent_datetime)
_SIMPLE_WRITER: Final = Writer(_Dumper.yaml_implicit_resolvers)
_DUMP_OPTIONS: Final[dict[str, Any]] = {"sort_keys": False, "allow_unicode": True, "default_flow_style": False, "width": 1_000_000}
_BEYOND_BMP: Final = re.compile("[\U00010000-\U0010ffff]")
# Characters PyYAML's Python emitter writes raw although they read back as line breaks.
_PY_EMITTER_UNSAFE: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


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
    yaml_text = _SIMPLE_WRITER.write_mapping(front_matter)  # what _Dumper writes; None: not simple
    if yaml_text is None:
        flat = json.dumps(front_matter, ensure_ascii=False, default=str)
        dumper = _PyDumper if _BEYOND_BMP.search(flat) and not _PY_EMITTER_UNSAFE.search(flat) else _Dumper
        yaml_text = yaml.dump(front_matter, Dumper=dumper, **_DUMP_OPTIONS)
    body = body.strip("\n")
    return f"---\n{yaml_text}---\n\n{body}\n" if body else f"---\n{yaml_text}---\n"
