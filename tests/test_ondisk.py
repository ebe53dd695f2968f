"""Sets, maps and lists on disk: they answer as a ``set``, a ``dict`` and a ``list`` do."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ondisk import DiskMap, DiskSet, SpillList
from pipeline.problems import problem
from pipeline.record import Doc
from pipeline.vocabulary import with_learned_categories

# Any code point, lone surrogates included (a file name undecodable as UTF-8 holds them), and
# a small alphabet so that the same string comes back often.
_TEXT = st.one_of(st.text(max_size=6), st.text(alphabet="aAé\udc80\U0001f600/", max_size=3))


@settings(max_examples=300)
@given(st.lists(st.tuples(st.booleans(), _TEXT), max_size=40))
def test_a_disk_set_answers_as_a_set(operations: list[tuple[bool, str]]) -> None:
    disk, memory = DiskSet(), set()
    for adding, item in operations:
        if adding:
            disk.add(item)
            memory.add(item)
        else:
            assert (item in disk) == (item in memory)
    assert len(disk) == len(memory)


@settings(max_examples=300)
@given(st.lists(st.tuples(_TEXT, _TEXT), max_size=40))
def test_a_disk_map_answers_as_a_dict_and_sorts_as_python(pairs: list[tuple[str, str]]) -> None:
    disk: DiskMap = DiskMap()
    memory: dict[str, str] = {}
    for key, value in pairs:
        assert disk.setdefault(key, value) == memory.setdefault(key, value)
    assert list(disk.sorted_items()) == sorted(memory.items())
    assert len(disk) == len(memory)


@settings(max_examples=100)
@given(st.lists(st.one_of(_TEXT, st.binary(max_size=20), st.tuples(st.integers(), _TEXT))))
def test_a_spill_list_gives_its_items_back_in_order_once(items: list[object]) -> None:
    held: SpillList[object] = SpillList()
    for item in items:
        held.append(item)
    assert len(held) == len(items)
    assert list(held) == items
    assert held.file.closed  # read to its end: the temporary file is gone
    with pytest.raises(ValueError, match="read once"):
        list(held)


@settings(max_examples=100)
@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=8)), max_size=30))
def test_held_back_posts_follow_in_input_order_whether_held_in_a_list_or_on_disk(posts: list[tuple[bool, bytes]]) -> None:
    recovered = (problem("tags_recovered_from_row"),)
    docs = [Doc(f"{i}.md", "0" * 64, raw, problems=recovered if held else ()) for i, (held, raw) in enumerate(posts)]
    in_memory = list(with_learned_categories(docs, lambda d: d, lambda d: d))
    on_disk = list(with_learned_categories(docs, lambda d: d, lambda d: d, SpillList[Doc]()))
    assert on_disk == in_memory  # whole Docs, input bytes included
    assert in_memory == [d for d in docs if not d.problems] + [d for d in docs if d.problems]
