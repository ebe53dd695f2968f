"""Body clean-up: dead links, empty images, widget remnants, broken bold, CSV debris, shortcodes.

What a WordPress export and an HTML-to-Markdown conversion leave behind in a post body.
Each function is ``str -> str`` (the YouTube one also takes the output target), idempotent,
and removes or rewrites only the pattern it targets: every other character, typography
included (’ “ ” « » NBSP, tabs, soft hyphens), comes out as it went in; white space next
to a removal is at most moved out of emphasis markers, or dropped where it would deepen
a line's indentation (four spaces make a code block) or lengthen the spaces ending it (two
make a line break), so that the rest renders as it did with the removed part. A removal
that brings the pieces of a new occurrence together is followed up in the same call, so one
call is enough; for links, images and CSV debris in time linear in the text (a hostile
``[[[[…]()]()]()]()`` is not one pass per level).
"""

from __future__ import annotations

import re
from typing import Final, Literal

YoutubeTarget = Literal["hugo", "jekyll"]

# The order the steps run in (the integrator registers them under these names).
CLEANUP_STEP_NAMES: Final[tuple[str, ...]] = (
    # The export was the last thing done to the text, so its debris is undone first, while
    # the end of the body still looks as the export left it.
    "drop_csv_debris",
    # Before the link step: ``[![]()]()`` and ``[**ici ![]()**]()`` contain ``]()``.
    "drop_empty_images",
    # Before the link step too: the remnant is recognised by its two links
    # (``View more [documents]() from [x]()``); unwrapped, it would read as prose.
    "drop_slideshare_remnants",
    # Before the link step, which would leave ``**ici **`` of ``**[ici ]()**``.
    "mend_link_emphasis",
    "unwrap_empty_links",
    # After the link step, which can create ``****``: ``**[**X**]()**`` -> ``****X****``.
    "mend_broken_bold",
    # Last: it needs the output target, and no other step looks inside ``[youtube …]``.
    "convert_youtube_shortcodes",
)

# --- empty links -------------------------------------------------------------------------

# ``[text]()`` is a link whose URL was lost. Its brackets are paired like parentheses, so the
# text may hold brackets (``[**[fiction N°1]**]()``, ``[Dossier[1]]()``), other links and
# line breaks (a few converted links wrapped whole paragraphs). ``![alt]()`` is an image.
_BRACKET: Final = re.compile(r"[\[\]]")

# --- emphasis around links --------------------------------------------------------------

# Emphasis markers (a run of ``*`` or ``_``) that wrap a link exactly, or the whole text of
# one, with white space inside them (heuristic ``emphasis_spacing``). The text holds no
# bracket or line break, and is not white space alone; the target, no space or parenthesis
# (empty for a dead link); a marker run is taken whole (not part of a longer run, nor
# escaped). Both lead with a literal character, looked back from (a pattern that leads with
# a look back is tried at every position: 100 µs a body against 3).
_TARGET: Final = r"\]\([^()\s]*\)"
_EMPHASIS_AROUND_LINK: Final = re.compile(
    r"(?P<mark>\*(?<![*_\\]\*)\*{0,2}|_(?<![*_\\]_)_{0,2})(?P<open>\[(?!\]))(?P<lead>[^\S\n]*)(?P<text>[^\[\]\s](?:[^\[\]\n]*[^\[\]\s])?)"
    rf"(?P<trail>[^\S\n]*)(?P<close>{_TARGET})(?P=mark)(?![*_])"
)
_EMPHASIS_IN_LINK: Final = re.compile(
    r"(?P<open>\[)(?<!!\[)(?P<mark>\*{1,3}|_{1,3})(?P<lead>[^\S\n]*)(?P<text>[^\[\]\s*_](?:[^\[\]\n]*[^\[\]\s*_])?)(?P<trail>[^\S\n]*)(?P=mark)"
    rf"(?P<close>{_TARGET})"
)
# A bracket right after an emphasis marker: the only places where the first pattern's match
# can end its marker run. Led by the bracket, so searched for it (``str.find`` of ``*[``
# took 4 µs a body, this 2 µs for both markers).
_BRACKET_AFTER_MARK: Final = re.compile(r"\[(?<=[*_]\[)")


# --- empty images ------------------------------------------------------------------------

# An image without source or alt text, bare or wrapped in a link that lost its URL too.
_EMPTY_IMAGE: Final = re.compile(r"\[!\[\]\(\)\]\(\)|!\[\]\(\)")
_IMAGE: Final = "![]()"

# --- SlideShare remnants -----------------------------------------------------------------

# The caption line of a SlideShare embed: ``View more [documents](http://www.slideshare.net/)
# from [user](http://www.slideshare.net/user).`` The kind and the user are links (with or
# without their URL); a plain user name is accepted only when it ends the line, so the
# remnant never reaches into following prose. The title link before it is content and stays.
_LINK: Final = r"\[[^\[\]\n]*\]\([^()\s]*\)"
_REMNANT: Final = rf"View more (?:\[(?:documents|presentations)\]\([^()\s]*\)|documents|presentations) from (?:{_LINK}|[^\[\]()\n]{{1,60}}?(?=\.?[ ]*$))\.?"
# A line holding nothing but remnants goes with its line break.
_REMNANT_LINE: Final = re.compile(rf"^[ ]*(?:{_REMNANT}[ ]*)+(?:\n|\Z)", re.M)
# Elsewhere only the sentence goes, with the spaces before it (from the first of them only:
# starting inside a run of spaces would make a long run quadratic).
_REMNANT_SENTENCE: Final = re.compile(rf"(?<![ ])[ ]*{_REMNANT}", re.M)

# --- broken bold -------------------------------------------------------------------------

# Four or more stars: emphasis markers of adjacent or empty elements (``<strong></strong>``,
# ``</strong><strong>``). Not after a backslash or another star, so an escaped ``\*``
# and the rest of its run stay as they are. The first star leads and the look back follows
# it, so that the engine searches for a star (twenty times faster than look back first).
_STAR_RUN: Final = re.compile(r"\*(?<![\\*]\*)\*{3,}")

# --- CSV debris at the end of the body ---------------------------------------------------

# An HTML tag cut by the export, ending the body (trailing white space aside): a start tag
# with CSV-doubled attribute quotes (``<p style=""text-align: justify``, ``<img alt=""…``)
# or a bare end tag (``</strong``), never closed by ``>``. Matched from the last ``<`` only.
_CUT_TAG: Final = re.compile(r'<(?:[A-Za-z][A-Za-z0-9]*[ \t][^<>\n]*""[^<>\n]*|/[A-Za-z][A-Za-z0-9]*)')

# --- YouTube shortcodes ------------------------------------------------------------------

# ``[youtube URL params]`` (also WordPress.com's ``[youtube=URL]``) and ``[embed]URL[/embed]``.
# Neither part may hold a bracket: an unclosed ``[youtube`` costs a scan to the next one only.
_YOUTUBE_SHORTCODE: Final = re.compile(r"\[youtube[ =][ \t]*+([^\s\[\]]++)[^\[\]\n]*+\]|\[embed\]\s*+([^\s\[\]]++)\s*+\[/embed\]", re.I)
# What every match of it starts with: texts without it are returned unread (a search for the
# ``[``, ten times faster than lowering the whole body to look for both openings).
_SHORTCODE_START: Final = re.compile(r"\[(?:youtube|embed\])", re.I)
# The 11-character video id in watch (``v=`` anywhere in the query), embed, v/, shorts/ and
# youtu.be URLs.
_VIDEO_ID: Final = re.compile(
    r"(?:youtube(?:-nocookie)?\.com/(?:watch\?(?:[^#\s]*?&(?:amp;)?)?v=|embed/|v/|shorts/)|youtu\.be/)([A-Za-z0-9_-]{11})(?![A-Za-z0-9_-])",
    re.I,
)
_JEKYLL_EMBED: Final = (
    '<iframe width="560" height="315" src="https://www.youtube-nocookie.com/embed/{id}" title="YouTube video" frameborder="0" allowfullscreen></iframe>'
)


def mend_link_emphasis(text: str) -> str:
    """Move white space out of emphasis markers that wrap a link, or the whole text of one.

    Heuristic ``emphasis_spacing``. The HTML converter put the space that followed a bold
    word inside the markers: ``[**rapport **](url)sur`` shows ``**rapport **`` in kramdown
    (Jekyll), and ``[**ICI **](a)et [**LA**](b)`` loses the first link; ``**[ici ](url)**et``
    closes no bold in CommonMark (Hugo), nor, once its dead link is unwrapped (``**[ici
    ]()**et``), in kramdown.

    A marker run right after a letter or digit is left alone: it cannot open an emphasis
    there (CommonMark's rule), and it may close one (``**Lire aussi**[ notre article](/x/)**``);
    the converter also glued openers to the word before (``de**[ l’hypermarché](…)**``, 5 in
    the archive), which kramdown renders bold all the same. A run after punctuation is taken
    for an opener, as all 11 such runs of the archive are (``«**[ ici](…)**``); a closer
    there (``**Lire aussi :**[ notre article](/x/)**``) would be mended wrongly, and only a
    Markdown parser could tell. Spaces and tabs moved to the start or the end of a line are
    dropped instead (``_keep_line_edges``).

    >>> mend_link_emphasis("son [**rapport **](/2011/x/)sur, voir **[ici ]()**et **[ le Sens](/a/)**.")
    'son [**rapport** ](/2011/x/)sur, voir **[ici]()** et  **[le Sens](/a/)**.'
    """
    if "](" not in text:
        return text
    # Moving white space out of one pair of markers can bring it inside another (``*[
    # **a **](u)*``): again until nothing moves, three rounds at most (around, inside,
    # around), each one pass over the text.
    before = text
    while (mended := _mend_link_emphasis_once(text)) != text:
        text = mended
    return _keep_line_edges(before, text)


def _mend_link_emphasis_once(text: str) -> str:
    text = _EMPHASIS_IN_LINK.sub(_spaces_out_of_emphasis, text)
    # What ``_EMPHASIS_AROUND_LINK.sub`` would do, tried only where a marker meets a bracket:
    # even led by its marker, the pattern took 20 µs a body, on every star and underscore.
    pieces: list[str] = []
    done = 0
    for found in _BRACKET_AFTER_MARK.finditer(text):
        bracket = found.start()
        start = bracket - 1
        while start > done and start > bracket - 3 and text[start - 1] == text[bracket - 1]:
            start -= 1
        match = _EMPHASIS_AROUND_LINK.match(text, start) if start >= done else None
        if match is not None and match.end("mark") == bracket and not (start and text[start - 1].isalnum()):
            pieces += [text[done:start], _spaces_out_of_emphasis(match)]
            done = match.end()
    return "".join(pieces) + text[done:] if pieces else text


def _spaces_out_of_emphasis(match: re.Match[str]) -> str:
    mark, lead, trail = match["mark"], match["lead"], match["trail"]
    if not lead and not trail:
        return match[0]
    inner = f"{mark}{match['text']}{mark}"
    if match.start("open") < match.start("mark"):  # the markers are inside the link
        return f"{match['open']}{lead}{inner}{trail}{match['close']}"
    return f"{lead}{mark}{match['open']}{match['text']}{match['close']}{mark}{trail}"


def unwrap_empty_links(text: str) -> str:
    """Replace each link that lost its URL, ``[text]()``, by its text.

    Images (``![alt]()``) and links with a URL stay. Nested dead links unwrap too.

    >>> unwrap_empty_links("Rachat par [**Alibaba**]() de [**AutoNavi** ]()récemment, [lien](http://a.fr)")
    'Rachat par **Alibaba** de **AutoNavi** récemment, [lien](http://a.fr)'
    """
    if "]()" not in text:
        return text
    pairs: list[tuple[int, int]] = []  # (opening, closing) bracket positions
    openings: list[int] = []
    for bracket in _BRACKET.finditer(text):
        if bracket.group() == "[":
            openings.append(bracket.start())
        elif openings:
            pairs.append((openings.pop(), bracket.start()))
    # From the last ``]`` to the first, so that what follows a ``]`` is already final: in
    # ``[a[]()]()`` and ``[x][]()()``, ``()`` only follows ``]`` once a link is unwrapped.
    removed: dict[int, int] = {}  # removed position -> the next position to look at
    for opening, closing in reversed(pairs):
        if opening and text[opening - 1] == "!":
            continue
        paren = _next_kept(removed, closing + 1)
        if text[paren : paren + 1] != "(":
            continue
        close_paren = _next_kept(removed, paren + 1)
        if text[close_paren : close_paren + 1] != ")":
            continue
        for position in (opening, closing, paren, close_paren):
            removed[position] = position + 1
    if not removed:
        return text
    kept: list[str] = []
    start = 0
    for position in sorted(removed):
        kept.append(text[start:position])
        start = position + 1
    kept.append(text[start:])
    return _keep_line_edges(text, "".join(kept))


def _next_kept(removed: dict[int, int], position: int) -> int:
    """The first position from ``position`` on that is not removed (with path compression)."""
    path: list[int] = []
    while position in removed:
        path.append(position)
        position = removed[position]
    for step in path:
        removed[step] = position
    return position


def drop_empty_images(text: str) -> str:
    """Remove images with neither source nor alt text, ``![]()`` and ``[![]()]()``.

    A line left empty stays an empty line: paragraphs are never joined. Nor does a line
    get deeper indentation than it had: images that stood before its text go with the
    spaces after them, or `` ![]() ![]() ![]() <iframe…>`` would become an indented code
    block.

    >>> drop_empty_images("Texte.\\n\\n[![]()]()\\n\\n![]() Suite ![](/assets/a.png)")
    'Texte.\\n\\n\\n\\nSuite ![](/assets/a.png)'
    >>> drop_empty_images(" [![]()]() [![]()]() [![]()]() [youtube x]")
    ' [youtube x]'
    """
    if _IMAGE not in text:
        return text
    cleaned = _EMPTY_IMAGE.sub("", text)
    if _IMAGE in cleaned:
        # A removal brought ``!`` and ``[]()`` together (``!![]()[]()``): finish with a stack,
        # which removes each image as its last character arrives, so chains cost one pass.
        kept: list[str] = []
        for char in cleaned:
            kept.append(char)
            if char == ")" and "".join(kept[-5:]) == _IMAGE:
                del kept[-5:]
        cleaned = "".join(kept)
    return _keep_line_edges(text, cleaned)


def _keep_line_edges(before: str, after: str) -> str:
    """``after`` with no line indented deeper than in ``before``, nor ending in more spaces
    and tabs than it did, or than one (a line of white space alone aside), where only
    changes within lines made one from the other: four spaces of indentation make a code
    block, two at the end a line break.

    >>> _keep_line_edges("a ![]() ![]()\\n ![]()  b", "a  \\n   b")
    'a \\n b'
    """
    if after == before:
        return after
    lines_before, lines_after = before.split("\n"), after.split("\n")
    for number, (old, new) in enumerate(zip(lines_before, lines_after, strict=True)):
        if new == old or not new.strip(" \t"):
            continue
        depth, end = len(old) - len(old.lstrip(" \t")), len(old) - len(old.rstrip(" \t"))
        if len(new) - len(new.lstrip(" \t")) > depth:
            new = new[:depth] + new.lstrip(" \t")
        if len(new) - len(new.rstrip(" \t")) > max(end, 1):
            # The last ones: the line's own trailing white space stays at its end.
            new = new.rstrip(" \t") + new[len(new.rstrip(" \t")) :][-max(end, 1) :]
        lines_after[number] = new
    return "\n".join(lines_after)


def drop_slideshare_remnants(text: str) -> str:
    """Remove SlideShare's ``View more documents from user.`` caption.

    A line of remnants alone goes whole; after a title (the embed's title link is kept) or
    before prose, only the sentence and the spaces before it go.

    >>> drop_slideshare_remnants("A\\n **[Bus]()** View more [documents]() from [tdf]().\\n View more [presentations]() from [tdf]().\\nB")
    'A\\n **[Bus]()**\\nB'
    """
    if "View more" not in text:
        return text
    # A second pass only matters for a remnant nested in another one, so only while one is
    # left to find: both patterns need the words.
    while (changed := _REMNANT_SENTENCE.sub("", _REMNANT_LINE.sub("", text))) != text:
        text = changed
        if "View more" not in text:
            break
    return text


def mend_broken_bold(text: str) -> str:
    """Remove the empty or back-to-back emphasis markers in runs of four or more stars.

    A run between two spaces (or line edges) can open or close nothing: it goes whole. A
    run between two words closes and reopens the same emphasis: its even part goes
    (``**a****b**`` -> ``**ab**``, ``***“******If`` -> ``***“If``). A run touching text on
    one side only loses groups of four (``[x](u)****.**`` keeps ``.**``, ``**Fin******``
    keeps ``**Fin**``, ``***Battery***** as`` keeps ``***Battery* as``).

    >>> mend_broken_bold("**Fondé****s**** sur l'économie**\\n****\\xa0\\n[x](u)****.**")
    "**Fondés sur l'économie**\\n\\xa0\\n[x](u).**"
    """
    if "****" not in text:
        return text
    return _keep_line_edges(text, _STAR_RUN.sub(_mend_run, text))


def _mend_run(match: re.Match[str]) -> str:
    text, length = match.string, len(match.group(0))
    glued_left = match.start() > 0 and not text[match.start() - 1].isspace()
    glued_right = match.end() < len(text) and not text[match.end()].isspace()
    if glued_left and glued_right:
        return "*" * (length % 2)
    if glued_left or glued_right:
        return "*" * (length % 4)
    return ""


def drop_csv_debris(text: str) -> str:
    """Remove what the CSV export left at the very end of the body, never elsewhere.

    That is the cell's closing quote, alone on the last line or ending the last line
    unmatched, and an HTML tag cut off by the export (``<p style=""text-align: justify``).
    A quote ending the last line is kept when it may close a quotation: an odd number of
    ``"`` precede it on its line, or it follows a word (``…fin."``, a quotation whose
    opening quote was lost or sits in an earlier paragraph). The start of a body that opens
    with ``"`` is never looked at.

    >>> drop_csv_debris('Il dit "oui" et part.\\n"'), drop_csv_debris('Fin. <p style=""text-align: justify')
    ('Il dit "oui" et part.', 'Fin. ')
    >>> drop_csv_debris('*par [les_ernest]()*"'), drop_csv_debris('"Nous partons", dit-elle.\\n\\nIl dit "oui"')
    ('*par [les_ernest]()*', '"Nous partons", dit-elle.\\n\\nIl dit "oui"')
    """
    # Pieces are cut from the end one at a time; the white space after each stays (it may
    # hold an NBSP), so the text is kept as ``text[:limit]`` plus those white spaces.
    limit, spaces = len(text), []
    while True:
        end = _content_end(text, limit)
        cut = _csv_debris_start(text, end)
        if cut is None:
            break
        spaces.append(text[end:limit])
        limit = cut
    return text[:limit] + "".join(reversed(spaces)) if spaces else text


def _content_end(text: str, limit: int) -> int:
    """Where ``text[:limit]`` ends once its trailing white space is set aside."""
    while limit and text[limit - 1].isspace():
        limit -= 1
    return limit


def _csv_debris_start(text: str, end: int) -> int | None:
    """Where the debris ending at ``end`` starts, or None when ``text[:end]`` ends cleanly."""
    line_start = text.rfind("\n", 0, end) + 1
    if end and text[end - 1] == '"':
        start = end - 1
        while start > line_start and text[start - 1] == " ":
            start -= 1
        if start == line_start:  # the quote alone on the last line: the line goes, with its break
            return max(line_start - 1, 0)
        # with the spaces before it: ``…](). "``
        return start if _stray_closing_quote(text[line_start:start]) else None
    tag_start = text.rfind("<", line_start, end)
    if tag_start >= 0 and _CUT_TAG.fullmatch(text, tag_start, end):
        return tag_start
    return None


def _stray_closing_quote(line: str) -> bool:
    """Whether a ``"`` after ``line`` (its line up to the quote) is the export's, not a closing quote."""
    if line.count('"') % 2 == 1:
        return False  # it closes a quotation opened on its own line
    # After a word (and sentence punctuation) it closes a quotation opened paragraphs
    # earlier, or whose opening quote was lost, as often in this archive: ``… d’origine."``.
    # The export's quote follows markup or a space: ``…from [x]()."``, ``(2.71 KB) "``,
    # ``*par [x]()*"``, ``… Nebraska"."``.
    prose = line.rstrip(".!?…")
    return not (prose and prose[-1].isalnum())


def convert_youtube_shortcodes(text: str, target: YoutubeTarget) -> str:
    """Turn WordPress ``[youtube URL]`` (and ``[embed]URL[/embed]``) into a Hugo or Jekyll embed.

    ``hugo`` gives Hugo's ``{{< youtube ID >}}`` shortcode; ``jekyll`` a privacy-enhanced
    iframe (Jekyll has no built-in shortcode). A shortcode whose URL has no YouTube video id
    is left as it is.

    >>> convert_youtube_shortcodes("[youtube http://www.youtube.com/watch?v=mxm5VfJvXCc&hl=fr_FR&fs=1&]", "hugo")
    '{{< youtube mxm5VfJvXCc >}}'
    """
    if target not in ("hugo", "jekyll"):
        raise ValueError(f"unknown YouTube target {target!r}: expected 'hugo' or 'jekyll'")
    if not _SHORTCODE_START.search(text):
        return text

    def replace(match: re.Match[str]) -> str:
        video = _VIDEO_ID.search(match.group(1) or match.group(2))
        if video is None:
            return match.group(0)
        if target == "hugo":
            return f"{{{{< youtube {video.group(1)} >}}}}"
        return _JEKYLL_EMBED.format(id=video.group(1))

    return _YOUTUBE_SHORTCODE.sub(replace, text)
