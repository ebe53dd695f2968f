"""Category names learned across the archive, used to split them off recovered tags.

When the front matter has tags, the export row shows which WordPress categories were glued
in front of them (``MétaNotesdonnées|vélo``). When it has none, the row's first item may
still start with a glued category (``Articles invitésart de la guerre``) that the post alone
cannot reveal. Heuristic ``learned_categories``: the names learned from the other posts'
rows split such a glued prefix off, longest name first. Only posts whose tags were recovered
from their row wait for the whole archive to be read; all others stream through.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

from pipeline.frozen import evolve
from pipeline.problems import problem
from pipeline.record import Change, Doc

T = TypeVar("T")


def split_glued_categories(tags: list[str], categories: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split known category names glued in front of tags: (categories found, tags left).

    >>> split_glued_categories(["Articles invitésart de la guerre", "vélo"], ["Mes posts", "Articles invités"])
    (['Articles invités'], ['art de la guerre', 'vélo'])
    """
    names = sorted(set(categories), key=lambda name: (-len(name), name))
    found: list[str] = []
    kept: list[str] = []
    for tag in tags:
        name = next((n for n in names if tag.startswith(n) and len(tag) > len(n)), None)
        if name is None:
            kept.append(tag)
        else:
            found.append(name)
            kept.append(tag[len(name) :])
    return found, kept


def needs_vocabulary(doc: Doc) -> bool:
    """Whether a post's tags came from its row and might hide a glued category."""
    return any(p.code == "tags_recovered_from_row" for p in doc.problems)


def apply_vocabulary(doc: Doc, categories: Iterable[str]) -> Doc:
    """Split learned category names off a post's recovered tags, recording the change."""
    front_matter = dict(doc.front_matter or {})
    found, tags = split_glued_categories(list(front_matter.get("tags") or []), categories)
    if not found or doc.row is None:
        return doc
    merged = [*front_matter.get("categories", []), *(c for c in found if c not in front_matter.get("categories", []))]
    front_matter.update(tags=tags, categories=merged)
    row = evolve(doc.row, categories=tuple(found), tags=tuple(tags))
    return evolve(
        doc,
        front_matter=front_matter,
        row=row,
        problems=(*doc.problems, problem("categories_split_from_tags", f"category {found!r} split off recovered tags; tags now {tags!r}")),
        changes=(*doc.changes, Change("extract", "split_glued_categories", len(found))),
    )


class Holding(Protocol):
    """Where held-back Docs wait: a ``list``, or ``ondisk.SpillList`` (on disk) for a whole run."""

    def append(self, doc: Doc, /) -> None: ...

    def __iter__(self) -> Iterator[Doc]: ...


def with_learned_categories(items: Iterable[T], doc_of: Callable[[T], Doc], redo: Callable[[Doc], T], waiting: Holding | None = None) -> Iterator[T]:
    """Pass items through in order, holding back those whose post needs the archive's category
    names until all rows are read; the held-back ones follow, in input order, rebuilt by
    ``redo`` from their post with the learned names applied.

    They wait in ``waiting`` (default: a list). A held-back Doc carries its input and texts,
    and about one post in eighty is held back: 33 MB at 100,000 posts, so runs hold them on disk.
    """
    learned: set[str] = set()
    waiting = [] if waiting is None else waiting
    for item in items:
        doc = doc_of(item)
        if doc.row is not None:
            learned.update(doc.row.categories)
        if needs_vocabulary(doc) and not doc.fatal:
            waiting.append(doc)
        else:
            yield item
    for doc in waiting:
        yield redo(apply_vocabulary(doc, learned))
