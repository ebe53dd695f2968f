"""The site index's link reading: the fast form of the link pattern finds what its plain form finds."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.site import _MARKDOWN_LINK, Entry, SiteIndex, rewrite_links

# The pattern as first written: the look back for an image's ``!`` first, then the ``]``.
_PLAIN_LINK = re.compile(r"(?<!!)\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")

_MARKDOWN_BITS = st.sampled_from(["[", "]", "(", ")", "!", "![", "](", "<", ">", '"', " ", "\n", "\t", "a", "é", "/2014/07/velo.html", "https://blog.org/x"])


@settings(max_examples=500)
@given(st.lists(_MARKDOWN_BITS, max_size=30).map("".join))
def test_the_link_pattern_matches_where_its_plain_form_does(text: str) -> None:
    def found(pattern: re.Pattern[str]) -> list[tuple[int, int, str]]:
        return [(m.start(), m.end(), m.group(1)) for m in pattern.finditer(text)]

    assert found(_MARKDOWN_LINK) == found(_PLAIN_LINK)


def test_links_are_rewritten_but_not_after_a_bang() -> None:
    index = SiteIndex()
    index.add(Entry("a.md", 0, "velo", 2014, 7, "/2014/07/05/velo/", ("/2014/07/velo.html",), None, "V", ("blog.org",)))
    index.settle()
    body, links = rewrite_links("[v](/2014/07/velo.html) ]( /2014/07/velo.html ) x!](/2014/07/velo.html)", index)
    assert body == "[v](/2014/07/05/velo/) ]( /2014/07/05/velo/ ) x!](/2014/07/velo.html)"
    assert [link.status for link in links] == ["resolved", "resolved"]
