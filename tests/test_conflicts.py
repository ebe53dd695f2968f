"""Git conflict blocks: side selection, labels, diff3, malformed markers, regions, equivalence."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.conflicts import Resolution, Side, resolve_conflicts, sides_equivalent

SIDES: tuple[Side, ...] = ("ours", "theirs")


def _codes(resolution: Resolution) -> list[tuple[str, int | None]]:
    return [(p.code, p.line) for p in resolution.problems]


def _is_marker_line(line: str) -> bool:
    """A line git writes as a marker: seven marker characters, alone or with `` label``."""
    return line == "=======" or (line[:7] in ("<" * 7, "|" * 7, ">" * 7) and (len(line) == 7 or line[7] == " "))


# --- side selection, labels, diff3 -------------------------------------------------------


@pytest.mark.parametrize(("side", "kept"), [("ours", "b1\nb2"), ("theirs", "c1")])
def test_side_selection(side: Side, kept: str) -> None:
    text = "a\n<<<<<<< HEAD\nb1\nb2\n=======\nc1\n>>>>>>> 367d931c0bdecc6fccfc1ac0c8b8052776369bc4\nd\n"
    resolution = resolve_conflicts(text, side)
    assert resolution.text == f"a\n{kept}\nd\n"
    (block,) = resolution.blocks
    assert (block.start_line, block.end_line, block.side, block.ours_lines, block.theirs_lines, block.base_lines) == (2, 7, side, 2, 1, 0)
    assert ("conflict_resolved", None) in _codes(resolution)


@pytest.mark.parametrize(
    ("open_marker", "close_marker", "ours_label", "theirs_label"),
    [
        ("<<<<<<< HEAD", ">>>>>>> 367d931c0bdecc6fccfc1ac0c8b8052776369bc4", "HEAD", "367d931c0bdecc6fccfc1ac0c8b8052776369bc4"),
        ("<<<<<<< feature/été #2", ">>>>>>> origin/main", "feature/été #2", "origin/main"),
        ("<<<<<<< 1a2b3c4 (Import WordPress)", ">>>>>>> refs/stash", "1a2b3c4 (Import WordPress)", "refs/stash"),
        ("<<<<<<<", ">>>>>>>", "", ""),
        ("<<<<<<< ", ">>>>>>> ", "", ""),
    ],
)
@pytest.mark.parametrize("side", SIDES)
def test_any_marker_label(open_marker: str, close_marker: str, ours_label: str, theirs_label: str, side: Side) -> None:
    text = f"début\n{open_marker}\nnous\n=======\neux\n{close_marker}\nfin"
    resolution = resolve_conflicts(text, side)
    assert resolution.text == ("début\nnous\nfin" if side == "ours" else "début\neux\nfin")
    (block,) = resolution.blocks
    assert (block.ours_label, block.theirs_label) == (ours_label, theirs_label)
    assert all(p.severity != "fatal" for p in resolution.problems)


@pytest.mark.parametrize(("side", "kept"), [("ours", "nous 1\nnous 2"), ("theirs", "eux")])
def test_diff3_base_section_dropped(side: Side, kept: str) -> None:
    text = "a\n<<<<<<< HEAD\nnous 1\nnous 2\n||||||| merged common ancestors\nbase 1\nbase 2\nbase 3\n=======\neux\n>>>>>>> branche\nz"
    resolution = resolve_conflicts(text, side)
    assert resolution.text == f"a\n{kept}\nz"
    assert "base" not in resolution.text
    (block,) = resolution.blocks
    assert (block.ours_lines, block.base_lines, block.theirs_lines, block.end_line) == (2, 3, 1, 11)


def test_diff3_base_without_label() -> None:
    resolution = resolve_conflicts("<<<<<<<\nx\n|||||||\ny\n=======\nz\n>>>>>>>\n", "theirs")
    assert resolution.text == "z\n"
    assert resolution.blocks[0].base_lines == 1


def test_several_blocks_resolved_in_order() -> None:
    text = "\n".join(
        ["t", "<<<<<<< HEAD", "a", "=======", "A", ">>>>>>> x", "u", "<<<<<<< HEAD", "b", "=======", "B", "B2", ">>>>>>> x", "v"],
    )
    ours, theirs = resolve_conflicts(text, "ours"), resolve_conflicts(text, "theirs")
    assert ours.text == "t\na\nu\nb\nv"
    assert theirs.text == "t\nA\nu\nB\nB2\nv"
    assert [(b.start_line, b.end_line) for b in theirs.blocks] == [(2, 6), (8, 13)]
    assert theirs.problems[0].message.startswith("2 conflict block(s)")


def test_empty_side_kept_as_nothing() -> None:
    assert resolve_conflicts("a\n<<<<<<< HEAD\n=======\nb\n>>>>>>> x\nc", "ours").text == "a\nc"


def test_text_without_markers_unchanged_and_no_problem() -> None:
    text = "---\ntitle: x\n---\n\nCorps.\n"
    assert resolve_conflicts(text, "theirs") == Resolution(text, (), ())


# --- setext headings ---------------------------------------------------------------------


def test_separator_line_outside_block_is_setext_heading() -> None:
    text = "Titre\n=======\n\nTexte.\n"
    assert resolve_conflicts(text, "ours") == Resolution(text, (), ())


def test_setext_heading_after_a_block_stays_text() -> None:
    text = "<<<<<<< HEAD\na\n=======\nb\n>>>>>>> x\nTitre\n=======\nfin"
    resolution = resolve_conflicts(text, "ours")
    assert resolution.text == "a\nTitre\n=======\nfin"
    assert all(p.severity != "fatal" for p in resolution.problems)


def test_setext_heading_inside_theirs_side_is_kept() -> None:
    text = "<<<<<<< HEAD\nTitre\n=======\nTitre\n=======\n>>>>>>> x\nfin"
    assert resolve_conflicts(text, "theirs").text == "Titre\n=======\nfin"
    assert resolve_conflicts(text, "ours").text == "Titre\nfin"


# --- malformed markers: fatal, text unchanged --------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "line"),
    [
        ("a\n<<<<<<< HEAD\nb\n=======\nc\n", "conflict_unterminated", 2),
        ("a\nb\n<<<<<<< HEAD\nb\n", "conflict_unterminated", 3),
        ("<<<<<<< HEAD\nb\n>>>>>>> x\n", "conflict_unterminated", 1),
        ("x\n<<<<<<< HEAD\nb\n||||||| base\no\n||||||| base\n=======\nc\n>>>>>>> x\n", "conflict_stray_marker", 6),
        ("a\n<<<<<<< HEAD\nb\n=======\nc\n||||||| base\nq\n>>>>>>> x\nd", "conflict_stray_marker", 6),
        ("a\n<<<<<<< HEAD\nb\n<<<<<<< other\nc\n=======\nd\n>>>>>>> x\n", "conflict_nested", 4),
        ("a\n<<<<<<< HEAD\nb\n=======\nc\n<<<<<<< HEAD\n", "conflict_nested", 6),
        ("a\n>>>>>>> 367d931\nb\n", "conflict_stray_marker", 2),
        ("a\nb\n||||||| base\nc\n", "conflict_stray_marker", 3),
        (">>>>>>>\n", "conflict_stray_marker", 1),
        ("<<<<<<< HEAD\na\n=======\nb\n>>>>>>> x\nc\n>>>>>>> x\n", "conflict_stray_marker", 7),
    ],
)
@pytest.mark.parametrize("side", SIDES)
def test_malformed_markers_are_fatal_and_leave_text_unchanged(text: str, code: str, line: int, side: Side) -> None:
    resolution = resolve_conflicts(text, side)
    assert resolution.text == text
    assert resolution.blocks == ()
    assert _codes(resolution) == [(code, line)]
    assert resolution.problems[0].severity == "fatal"


# --- mid-line markers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a\ntexte <<<<<<< HEAD collé\nb", 2),
        ("texte>>>>>>> 367d931\n", 1),
        ("a\nb\nc|||||||", 3),
        ("a\nfin de phrase.>>>>>>>", 2),
    ],
)
def test_midline_marker_left_as_text_with_error(text: str, line: int) -> None:
    resolution = resolve_conflicts(text, "ours")
    assert resolution.text == text
    assert _codes(resolution) == [("conflict_marker_midline", line)]
    assert resolution.problems[0].severity == "error"


def test_midline_marker_line_numbers_refer_to_the_raw_text() -> None:
    text = "<<<<<<< HEAD\na\nb\n=======\nc\n>>>>>>> x\nd <<<<<<< HEAD\n"
    resolution = resolve_conflicts(text, "theirs")
    assert resolution.text == "c\nd <<<<<<< HEAD\n"
    assert ("conflict_marker_midline", 7) in _codes(resolution)


@pytest.mark.parametrize("text", ["a <<<<<< b", "a <<<<<<<b", "flèche ==>>>>>> ici", "x =======\n"])
def test_near_markers_mid_line_are_not_reported(text: str) -> None:
    assert resolve_conflicts(text, "ours") == Resolution(text, (), ())


# --- regions -----------------------------------------------------------------------------

FM_BLOCK = (
    "---\ntitle: Titre\n<<<<<<< HEAD\ntags: ['mobilité', 'vélo']\n=======\n"
    'tags: ["mobilit\\u00e9", "v\\u00e9lo"]\n>>>>>>> 367d931\ndate: 2014-12-05 16:38:27 +0100\n---\n\nCorps.\n'
)


def test_region_front_matter() -> None:
    resolution = resolve_conflicts(FM_BLOCK, "theirs")
    (block,) = resolution.blocks
    assert (block.region, block.start_line, block.end_line, block.equivalent, block.has_export_row) == ("front_matter", 3, 7, True, False)
    assert resolution.text == FM_BLOCK.replace("<<<<<<< HEAD\ntags: ['mobilité', 'vélo']\n=======\n", "").replace(">>>>>>> 367d931\n", "")
    assert [p.code for p in resolution.problems] == ["conflict_resolved"]


@pytest.mark.parametrize("side", SIDES)
def test_region_front_matter_body_when_block_swallows_closing_delimiter(side: Side) -> None:
    text = (
        "---\ntitle: T\n<<<<<<< HEAD\ntags: ['a']\n---\n\nCorps nous.\n=======\ntags: [\"a\"]\n---\n\nCorps eux._x000D_\n>>>>>>> 367d931\n"
        "Suite.\n<<<<<<< HEAD\nx\n=======\ny\n>>>>>>> 367d931\n"
    )
    resolution = resolve_conflicts(text, side)
    assert [(b.region, b.start_line) for b in resolution.blocks] == [("front_matter_body", 3), ("body", 15)]
    expected_body = "Corps nous.\nSuite.\nx\n" if side == "ours" else "Corps eux._x000D_\nSuite.\ny\n"
    assert resolution.text.endswith(expected_body)


def test_region_body_after_front_matter_block() -> None:
    text = FM_BLOCK + "<<<<<<< HEAD\nIl semble bien.\n=======\nIl semble bien._x000D_\n>>>>>>> 367d931\n"
    regions = [(b.region, b.start_line, b.equivalent) for b in resolve_conflicts(text, "ours").blocks]
    assert regions == [("front_matter", 3, True), ("body", 12, True)]


def test_region_export_row() -> None:
    text = (
        "---\ntitle: T\n---\n\nCorps.\n<<<<<<< HEAD\n"
        '"2010-01-04 15:25:19https://blog.example.org/2010/01/a-b.htmlTpublish18marie curiea-b2010-01-05 10:00:00\n'
        "=======\n"
        '"2010-01-04 15:25:19/2010/01/04/a-b/Tpublish18marie curiea-b2010-01-05 10:00:00\n'
        ">>>>>>> 367d931\n"
    )
    (block,) = resolve_conflicts(text, "theirs").blocks
    assert (block.region, block.has_export_row, block.equivalent) == ("export_row", True, True)


def test_block_at_top_without_front_matter_is_body() -> None:
    (block,) = resolve_conflicts("<<<<<<< HEAD\na\n=======\nb\n>>>>>>> x\n", "ours").blocks
    assert block.region == "body"


# --- equivalence -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (["tags: ['mobilité', 'vélo']"], ['tags: ["mobilit\\u00e9", "v\\u00e9lo"]']),
        (["tags: [\"qualité de l'air\", 'bruit']"], ['tags: ["qualit\\u00e9 de l\'air", "bruit"]']),
        (["tags: []"], ["tags: []"]),
        (["il semb", "le bien"], ["il semb_x000D_", "le bien"]),
        (["Premier.", "", "Second."], ["Premier._x000D_", "_x000D_", "Second."]),
        (["Premier.", "Second."], ["Premier.", "_x000D_", "", "Second."]),
        (["voir [ce billet](https://blog.example.org/2015/06/slug.html)."], ["voir [ce billet](/2015/06/09/slug/)."]),
        (["voir [ce billet](/2015/06/slug.html)."], ["voir [ce billet](/2015/06/09/slug/)."]),
        (["voir https://blog.example.org/2015/06/sans-attendre-.html"], ["voir /2015/06/09/sans-attendre-/"]),
        (
            ['"2010-01-04 15:25:19https://blog.example.org/2010/01/a-b.htmlTpublish18marie curiea-b2010-01-05 10:00:00'],
            ['"2010-01-04 15:25:19/2010/01/04/a-b/Tpublish18marie curiea-b2010-01-05 10:00:00'],
        ),
    ],
)
def test_sides_equivalent_beyond_escapes_debris_and_link_forms(ours: list[str], theirs: list[str]) -> None:
    assert sides_equivalent(ours, theirs)
    assert sides_equivalent(theirs, ours)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (["voir /2015/06/bang-.html"], ["voir /2015/06/09/bang/-.html"]),
        (["voir https://blog.example.org/2015/06/bang-.html"], ["voir /2015/06/09/bang/-.html"]),
        (["voir /2015/06/libre-2.html"], ["voir /2015/06/09/libre/-2.html?hlst=zooz"]),
        (["voir [x](/2015/06/slug.html)"], ["voir [x](/2015/06/09/autre/)"]),
        (["voir [x](/2015/06/slug.html)"], ["voir [x](/2015/07/09/slug/)"]),
        (["tags: ['a', 'b']"], ['tags: ["a"]']),
        (["tags: ['a']"], ['tags: ["b"]']),
        (["Il semble bien."], ["Il semble mal."]),
        (["Un.", "Deux."], ["Un."]),
    ],
)
def test_sides_not_equivalent(ours: list[str], theirs: list[str]) -> None:
    assert not sides_equivalent(ours, theirs)
    assert not sides_equivalent(theirs, ours)


def test_differing_sides_give_a_warning_at_the_block_line() -> None:
    text = "a\nb\n<<<<<<< HEAD\nvoir /2015/06/bang-.html\n=======\nvoir /2015/06/09/bang/-.html\n>>>>>>> x\n"
    resolution = resolve_conflicts(text, "ours")
    assert resolution.blocks[0].equivalent is False
    assert _codes(resolution) == [("conflict_resolved", None), ("conflict_sides_differ", 3)]
    assert resolution.problems[1].severity == "warning"


# --- properties --------------------------------------------------------------------------

_NEAR_MARKERS = ["=======", "======", "========", "<<<<<<", "<<<<<<<<", ">>>>>>>x", "a <<<<<<< b", "|||||| x", "---", "", "=======x", "x >>>>>>>"]
_plain_line = st.one_of(st.sampled_from(_NEAR_MARKERS), st.text(alphabet=st.characters(exclude_characters="\n"), max_size=30)).filter(
    lambda line: not _is_marker_line(line)
)
_side_line = _plain_line.filter(lambda line: line != "=======")
_label = st.one_of(
    st.just(""),
    st.sampled_from(["HEAD", "367d931c0bdecc6fccfc1ac0c8b8052776369bc4", "feature/été"]),
    st.text(st.characters(exclude_characters="\n"), max_size=12),
)


@given(st.lists(_plain_line, max_size=30), st.sampled_from(SIDES))
def test_text_without_marker_lines_is_returned_unchanged(lines: list[str], side: Side) -> None:
    text = "\n".join(lines)
    resolution = resolve_conflicts(text, side)
    assert resolution.text == text
    assert resolution.blocks == ()
    assert all(p.code == "conflict_marker_midline" for p in resolution.problems)


def _marker(chars: str, label: str) -> str:
    return chars * 7 + (f" {label}" if label else "")


@st.composite
def _documents(draw: st.DrawFn) -> tuple[str, dict[Side, str], int]:
    """A text of plain runs and well-formed blocks, its expected resolution per side, and its block count."""
    lines: list[str] = []
    kept: dict[Side, list[str]] = {"ours": [], "theirs": []}
    blocks = 0
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            run = draw(st.lists(_plain_line, max_size=4))
            lines += run
            kept["ours"] += run
            kept["theirs"] += run
            continue
        ours = draw(st.lists(_side_line, max_size=3))
        theirs = draw(st.lists(_plain_line, max_size=3))
        lines.append(_marker("<", draw(_label)))
        lines += ours
        if draw(st.booleans()):
            lines.append(_marker("|", draw(_label)))
            lines += draw(st.lists(_side_line, max_size=3))
        lines.append("=======")
        lines += theirs
        lines.append(_marker(">", draw(_label)))
        kept["ours"] += ours
        kept["theirs"] += theirs
        blocks += 1
    return "\n".join(lines), {side: "\n".join(kept[side]) for side in SIDES}, blocks


@given(_documents(), st.sampled_from(SIDES))
def test_well_formed_blocks_resolve_keeping_every_outside_line(document: tuple[str, dict[Side, str], int], side: Side) -> None:
    text, expected, blocks = document
    resolution = resolve_conflicts(text, side)
    assert resolution.text == expected[side]
    assert len(resolution.blocks) == blocks
    assert all(p.severity != "fatal" for p in resolution.problems)
    assert not any(_is_marker_line(line) and line != "=======" for line in resolution.text.split("\n"))
    again = resolve_conflicts(resolution.text, side)
    assert again.text == resolution.text
    assert again.blocks == ()


_MIDLINE_REFERENCE = re.compile(r"(?<=.)(?:<{7}|>{7}|\|{7})(?: |$)", re.M)


@settings(max_examples=2000)
@given(st.lists(st.sampled_from(["<", ">", "|", " ", "\n", "a", "<" * 7, ">" * 7, "|" * 7, "=" * 7, "\r"]), max_size=30).map("".join))
def test_midline_markers_are_found_as_the_reference_regex_finds_them(text: str) -> None:
    from pipeline.conflicts import _midline_marker_lines

    expected = [text.count("\n", 0, m.start()) + 1 for m in _MIDLINE_REFERENCE.finditer(text)]
    assert _midline_marker_lines(text) == expected


# --- the marker walk against a line-by-line reading ---------------------------------------

_REFERENCE_ROW = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:https?://|/\d{4}/)")
_REFERENCE_FM = re.compile(r"---\s*|\.\.\.\s*")


def _reference_resolve(text: str, side: Side) -> tuple[str, list[tuple[object, ...]]] | tuple[str, int]:
    """Conflict resolution as a plain reading line by line does it (the resolver's first
    form): the kept text and the blocks, or the fatal problem's code and line."""
    lines = text.split("\n")
    kept: list[str] = []
    blocks: list[tuple[object, ...]] = []
    fm_open = lines[0].strip() == "---"
    i = 1 if fm_open else 0
    if fm_open:
        kept.append(lines[0])

    def marker(chars: str, line: str) -> str | None:
        """The label of a marker line of ``chars`` ("" without one), or None."""
        if line[:7] == chars * 7 and (len(line) == 7 or line[7] == " "):
            return line[8:]
        return None

    while i < len(lines):
        line = lines[i]
        if marker("<", line) is None:
            if marker("|", line) is not None or marker(">", line) is not None:
                return "conflict_stray_marker", i + 1
            if fm_open and _REFERENCE_FM.fullmatch(line):
                fm_open = False
            kept.append(line)
            i += 1
            continue
        sections: dict[str, list[str]] = {"ours": [], "base": [], "theirs": []}
        start, current, j = i, "ours", i + 1
        while True:
            if j == len(lines):
                return "conflict_unterminated", start + 1
            line = lines[j]
            if marker("<", line) is not None:
                return "conflict_nested", j + 1
            if current == "ours" and marker("|", line) is not None:
                current = "base"
            elif current in ("ours", "base") and line == "=======":
                current = "theirs"
            elif current == "theirs" and marker(">", line) is not None:
                break
            elif marker(">", line) is not None:
                return "conflict_unterminated", start + 1
            elif marker("|", line) is not None:
                return "conflict_stray_marker", j + 1
            else:
                sections[current].append(line)
            j += 1
        ours, theirs = sections["ours"], sections["theirs"]
        has_row = _REFERENCE_ROW.search("\n".join(ours + theirs)) is not None
        if fm_open:
            region = "front_matter_body" if any(_REFERENCE_FM.fullmatch(x) for x in ours + theirs) else "front_matter"
        else:
            region = "export_row" if has_row else "body"
        labels = (marker("<", lines[start]), marker(">", lines[j]))
        blocks.append((start + 1, j + 1, region, len(ours), len(theirs), len(sections["base"]), *labels, has_row, sides_equivalent(ours, theirs)))
        chosen = ours if side == "ours" else theirs
        kept += chosen
        if fm_open and any(_REFERENCE_FM.fullmatch(x) for x in chosen):
            fm_open = False
        i = j + 1
    return "\n".join(kept), blocks


_WALK_LINES = st.sampled_from(
    [
        "<<<<<<< HEAD",
        "<<<<<<<",
        "||||||| base",
        "=======",
        ">>>>>>> 367d931",
        ">>>>>>>",
        "<<<<<<< x\r",
        "=======\r",
        "---",
        "--- ",
        "...",
        "",
        "tags: ['été']",
        'tags: ["\\u00e9t\\u00e9"]',
        "texte",
        "2010-01-04 15:25:00/2010/01/a.html",
        "<<<<<<<<",
        "a >>>>>>> b",
    ]
)


@settings(max_examples=1500)
@given(st.lists(_WALK_LINES, max_size=24), st.booleans(), st.sampled_from(SIDES))
def test_the_marker_walk_reads_every_text_as_a_line_by_line_reading_does(lines: list[str], trailing_break: bool, side: Side) -> None:
    """The resolver walks the marker lines that one search finds and keeps the text between
    them in slices; on any text it must give what reading every line in turn gives."""
    text = "\n".join(lines) + ("\n" if trailing_break else "")
    resolution = resolve_conflicts(text, side)
    fatal = [(p.code, p.line) for p in resolution.problems if p.severity == "fatal"]
    expected = _reference_resolve(text, side)
    if isinstance(expected[1], int):
        assert fatal == [expected]
        assert resolution.text == text
        return
    blocks = [
        (b.start_line, b.end_line, b.region, b.ours_lines, b.theirs_lines, b.base_lines, b.ours_label, b.theirs_label, b.has_export_row, b.equivalent)
        for b in resolution.blocks
    ]
    assert fatal == []
    assert (resolution.text, blocks) == expected
