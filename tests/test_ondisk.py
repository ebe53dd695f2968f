"""Sets and maps on disk: they answer as a ``set`` and a ``dict`` do, for any string."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ondisk import DiskMap, DiskSet

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
