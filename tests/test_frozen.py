"""``evolve`` gives what ``dataclasses.replace`` gives, for every record a run copies."""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError, fields, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import load_config
from pipeline.frozen import evolve
from pipeline.io import read_bytes_doc
from pipeline.problems import problem
from pipeline.record import Doc
from pipeline.runner import Done, clean_doc
from pipeline.site import Entry

_RAW = b"---\ntitle: V\\u00e9lo\ndate: 2014-07-05 10:00:00 +0200\ntags: [a]\n---\nLe v\xc3\xa9lo [lien](/2014/07/velo.html)\n"


def _records() -> list[Any]:
    """One of each record a run copies with changes, as a real run builds them."""
    done = clean_doc(read_bytes_doc("2014-07-05-velo.md", _RAW), load_config({}))
    assert done.post is not None and done.doc.row is None
    return [done, done.doc, done.post, done.post.entry, Entry("a.md", 0, "velo", None, None, "/velo/", (), None, "V", ())]


_VALUES = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.tuples(st.text(max_size=3)))


@settings(max_examples=200)
@given(st.data())
def test_evolve_equals_replace_on_every_record(data: st.DataObject) -> None:
    for record in _records():
        names = [f.name for f in fields(record)]
        chosen = data.draw(st.lists(st.sampled_from(names), unique=True, max_size=3))
        changes = {name: data.draw(_VALUES) for name in chosen}
        evolved, replaced = evolve(record, **changes), replace(record, **changes)
        assert type(evolved) is type(replaced)
        assert evolved == replaced
        assert vars(evolved) == vars(replaced)
        assert list(vars(evolved)) == list(vars(replaced))  # same order: pickles the same
        assert pickle.dumps(evolved) == pickle.dumps(replaced)
        assert vars(record) == vars(evolve(record))  # the original is left as it was


def test_an_evolved_record_stays_frozen() -> None:
    entry = evolve(Entry("a.md", 0, "velo", None, None, "/velo/", (), None, "V", ()), order=2)
    with pytest.raises(FrozenInstanceError):
        entry.order = 3  # type: ignore[misc]


def test_evolve_refuses_a_name_that_is_not_a_field() -> None:
    with pytest.raises(TypeError, match="Doc has no field 'colour'"):
        evolve(Doc("a.md", "0", b""), colour="red")


def test_a_record_that_checks_its_values_is_still_checked() -> None:
    # Problem checks its code in __post_init__: evolve goes through replace for it.
    with pytest.raises(KeyError, match="unknown problem code 'no_such_code'"):
        evolve(problem("bom_removed"), code="no_such_code")
    assert evolve(problem("bom_removed"), line=3).line == 3


def test_evolve_refuses_what_is_not_a_dataclass() -> None:
    with pytest.raises(TypeError):
        evolve(Done, post=None)  # the class, not an instance
