"""Body clean-up: each pattern repaired on real snippets, healthy text and typography never touched."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from pipeline import cleanup
from pipeline.cleanup import (
    _EMPHASIS_AROUND_LINK,
    _EMPHASIS_IN_LINK,
    _SHORTCODE_START,
    _YOUTUBE_SHORTCODE,
    CLEANUP_STEP_NAMES,
    convert_youtube_shortcodes,
    drop_csv_debris,
    drop_empty_images,
    drop_slideshare_remnants,
    mend_broken_bold,
    mend_link_emphasis,
    unwrap_empty_links,
)
from pipeline.conflicts import resolve_conflicts
from pipeline.markdown import split_front_matter
from pipeline.wordpress_row import split_wordpress_row

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "transportsdufutur-blog" / "_posts"
# Typography that no step may add or remove: curly quotes, guillemets, NBSP, tab, soft hyphen.
TYPOGRAPHY = re.compile("[’‘“”«»\u00a0\t\u00ad]")


def _hugo(text: str) -> str:
    return convert_youtube_shortcodes(text, "hugo")


def _jekyll(text: str) -> str:
    return convert_youtube_shortcodes(text, "jekyll")


STEPS: dict[str, Callable[[str], str]] = {
    "unwrap_empty_links": unwrap_empty_links,
    "drop_empty_images": drop_empty_images,
    "drop_slideshare_remnants": drop_slideshare_remnants,
    "mend_link_emphasis": mend_link_emphasis,
    "mend_broken_bold": mend_broken_bold,
    "drop_csv_debris": drop_csv_debris,
    "convert_youtube_shortcodes": _hugo,
}
ALL_FUNCTIONS: dict[str, Callable[[str], str]] = {**STEPS, "convert_youtube_shortcodes_jekyll": _jekyll}


def test_step_names_cover_every_function_once() -> None:
    assert sorted(CLEANUP_STEP_NAMES) == sorted(STEPS)
    assert all(callable(getattr(cleanup, name)) for name in CLEANUP_STEP_NAMES)


# --- unwrap_empty_links ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[**Alibaba**]()", "**Alibaba**"),
        ("[**AutoNavi** ]()récemment", "**AutoNavi** récemment"),
        ("De son coté, [Seth Priebatsch](), créateur de **[SCVNGR]()**, propose", "De son coté, Seth Priebatsch, créateur de **SCVNGR**, propose"),
        ("courant «\u00a0real game ou **[serious game\u00a0]()**»)", "courant «\u00a0real game ou **serious game\u00a0**»)"),
        ("[**[fiction N°1]**]()\u00a0Google Mobility", "**[fiction N°1]**\u00a0Google Mobility"),
        ("[Dossier de presse_smart_grids[1]]() View", "Dossier de presse_smart_grids[1] View"),
        ("plus de 10 organisations [[vidéo]()] de", "plus de 10 organisations [vidéo] de"),
        ("*par [\n \n\n\u00a0\n\n ]()*", "*par \n \n\n\u00a0\n\n *"),
        ("[]()[ ]()", " "),
        ("[![](/assets/a.jpg)]()", "![](/assets/a.jpg)"),
        ("[[a]()]()", "a"),
        ("[[[x]()]()]()", "x"),
        ("[x][]()()", "x"),
        ("[a[]()]()", "a"),
        ("[a [b [c]]]()", "a [b [c]]"),
        ("![[x]()]()", "![x]()"),
    ],
)
def test_unwrap_empty_links(text: str, expected: str) -> None:
    assert unwrap_empty_links(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "[lien](http://www.pwc.com/tl2030.jhtml) et [autre](/2013/03/la-mutation.html)",
        "![]() et ![alt]() restent : ce sont des images",
        "[crochets] (pas un lien), [x] ()",
        "[**Votre réputation**](/2013/03/x.html)",
    ],
)
def test_unwrap_empty_links_leaves_links_with_url_and_images(text: str) -> None:
    assert unwrap_empty_links(text) == text


# --- mend_link_emphasis ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("son [**rapport **](/2011/x/)sur", "son [**rapport** ](/2011/x/)sur"),
        ("voir [**ICI **](/a/)et [**LA**](/b/) ok", "voir [**ICI** ](/a/)et [**LA**](/b/) ok"),
        ("courant «\u00a0real game ou **[serious game\u00a0]()**»)", "courant «\u00a0real game ou **[serious game]()**\u00a0»)"),
        ("(voir **[ici ](/a/)**et **[là]()**)", "(voir **[ici](/a/)** et **[là]()**)"),
        ("**[ le Sens du client]()**. Ai", "**[le Sens du client]()**. Ai"),
        ("[**ici **]()et [_ ici_](http://a.fr/?q=1#x)et ***[a b ]()***c", "[**ici** ]()et [ _ici_](http://a.fr/?q=1#x)et ***[a b]()*** c"),
        # Not exactly around the link or its whole text, or not a link: left as it is.
        ("**[a ]()*b **[a ]()***b \\**[a ]()**b", "**[a ]()*b **[a ]()***b \\**[a ]()**b"),
        ("**x [a ]()**b [**a** b ]() ![** a **](/i.png)", "**x [a ]()**b [**a** b ]() ![** a **](/i.png)"),
        ("x **[ ]()** y **[a ](/url with space)** [**b **](/w_(x))", "x **[ ]()** y **[a ](/url with space)** [**b **](/w_(x))"),
        ("**[a\n](/a/)** [**b\n**](/b/)", "**[a\n](/a/)** [**b\n**](/b/)"),
        # Markers that close an emphasis opened before (found in review): left as they are.
        ("Voir **Lire aussi**[ notre article](/x/)**, et** la suite **a**[ b](/u)**c** __init__[ x](u)__", None),
        # Spaces and tabs that would indent or break a line are dropped (found in review).
        ("x\n\n**[    ici](/u)** suite\n**[\tici](/u)**", "x\n\n**[ici](/u)** suite\n**[ici](/u)**"),
        ("un **[lien  ](/u)**\nsuite **[\u00a0b ](/u)**", "un **[lien](/u)** \nsuite \u00a0**[b](/u)** "),
        # A run after a letter cannot open (CommonMark), and may close: left as it is, though
        # the converter glued five openers so in the archive (kramdown renders them bold).
        ("de**[ l’hypermarché](http://x/)** y", None),
        # Found in the second review: closers and openers the parity of runs told wrong.
        ("* Voir *[ici ]()*et; ***Note** : lire*, puis **[ici ]()**et", "* Voir *[ici]()* et; ***Note** : lire*, puis **[ici]()** et"),
        ("x _[ici ]()_ y", "x _[ici]()_  y"),
        ("Prix : 10 euros**\n \nVoir **[ici ]()**et", "Prix : 10 euros**\n \nVoir **[ici]()** et"),
        ("`a**b` : **Lire aussi**[ notre article](/x/)**, et**", None),
        # A line already indented, or already ending in a space: no deeper, no longer.
        ("x\n\n **[   ici](/u)** suite\nun **[ici ](/u)** \nsuite", "x\n\n **[ici](/u)** suite\nun **[ici](/u)** \nsuite"),
        # A move that brings white space inside other markers is followed up (found in review).
        ("x *[ **a **](u)* y", "x  *[**a**](u)*  y"),
    ],
)
def test_mend_link_emphasis(text: str, expected: str | None) -> None:
    assert mend_link_emphasis(text) == (text if expected is None else expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(voir **[ici ]()**et **[là]()**)", "(voir **ici** et **là**)"),
        ("[**ici ![]()**]()et [**là![]()**]().\u00a0", "**ici** et **là**.\u00a0"),
    ],
)
def test_dead_links_in_bold_unwrap_to_bold_that_closes(text: str, expected: str) -> None:
    for step in CLEANUP_STEP_NAMES:
        text = STEPS[step](text)
    assert text == expected


# --- drop_empty_images -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("es de carburant.\n\n \n\n![]()\n\n \n\nLes constructeurs", "es de carburant.\n\n \n\n\n\n \n\nLes constructeurs"),
        ("[![]()]()Musk et Bolloré", "Musk et Bolloré"),
        ("\n\n [![]()]()![]()\n\n []() \n", "\n\n \n\n []() \n"),
        ("Loading // ![]() ![]() ![]()", "Loading // "),  # two spaces ending a line would break it
        ("[**ici ![]()**]()et [**là![]()**]().\u00a0", "[**ici **]()et [**là**]().\u00a0"),
        ("[![]() ]()\n\n ![]() [![]()]()\nCes nouveaux", "[ ]()\n\n  \nCes nouveaux"),
        # No line gets deeper indentation than it had (4 spaces would make a code block).
        (" [![]()]() [![]()]() [![]()]() <iframe></iframe>", " <iframe></iframe>"),
        ("![]() Suite\n\t![]()  x\n    ![]() code", "Suite\n\tx\n    code"),
        ("!![]()[]()", ""),
        ("!!![]()[]()[]() fin", "fin"),
    ],
)
def test_drop_empty_images(text: str, expected: str) -> None:
    assert drop_empty_images(text) == expected


def test_drop_empty_images_keeps_images_with_a_source() -> None:
    text = "![](/assets/images/old/6a01-pi.png) [![](/assets/a.jpg)](http://a.fr) ![alt]()"
    assert drop_empty_images(text) == text


# --- drop_slideshare_remnants ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" **[Lotus Evora411 E]()** View more [documents]() from [transportsdufutur]().", " **[Lotus Evora411 E]()**"),
        (
            " **[Battery market](http://www.slideshare.net/transportsdufutur/battery-market)** View more [presentations](http://www.slideshare.net/)"
            " from [transportsdufutur](http://www.slideshare.net/transportsdufutur).",
            " **[Battery market](http://www.slideshare.net/transportsdufutur/battery-market)**",
        ),
        (
            "[Technolution]() View more [presentations]() from [transportsdufutur](). [Siemens]() View more [presentations]() from [transportsdufutur]().",
            "[Technolution]() [Siemens]()",
        ),
        ("Avant.\n\n View more [documents]() from [Les transports du futur](). \n\nAprès.", "Avant.\n\n\nAprès."),
        ("Avant.\n\n View more [documents]() from [transportsdufutur]().", "Avant.\n\n"),
        (
            "[TdF_ADEME](http://www.slideshare.net/t/tdfademe)View more [documents](http://www.slideshare.net/) from [tdf](http://www.slideshare.net/t).",
            "[TdF_ADEME](http://www.slideshare.net/t/tdfademe)",
        ),
        (" [The new sharing economy]() View more [presentations]() from [Mitya Voskresensky]()", " [The new sharing economy]()"),
        (
            " View more [documents](http://www.slideshare.net/) from [Les transports du futur](http://www.slideshare.net/t). Petit à petit se construit",
            " Petit à petit se construit",
        ),
        (
            " [Draft transport wp2013](http://www.slideshare.net/t/d) View more documents from [Les transports du futur](http://www.slideshare.net/t)",
            " [Draft transport wp2013](http://www.slideshare.net/t/d)",
        ),
        (' [Lpi2010]() View more [documents]() from [transportsdufutur](). "', ' [Lpi2010]() "'),
        (
            "\u00a0 [Fiscalité carbone](http://s.net/f) View more [presentations](http://s.net/) from [tdf](http://s.net/t).",
            "\u00a0 [Fiscalité carbone](http://s.net/f)",
        ),
        (" [Its dir] View more presentations from Les transports du futur.", " [Its dir]"),
    ],
)
def test_drop_slideshare_remnants(text: str, expected: str) -> None:
    assert drop_slideshare_remnants(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "View more of the city from the bridge, then more from the boat.",
        "Click to view more [documents]() from [x]().",
        "View more documents from the archive and read them all, then come back tomorrow for the rest of the series.",
    ],
)
def test_drop_slideshare_remnants_leaves_prose(text: str) -> None:
    assert drop_slideshare_remnants(text) == text


# --- mend_broken_bold --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("**a****b**", "**ab**"),
        ("+ [Robot Better Place](http://www.youtube.com/watch?v=4lp_6VyIeSY)****.**", "+ [Robot Better Place](http://www.youtube.com/watch?v=4lp_6VyIeSY).**"),
        ("[**Fondé****s**** sur l'économie de l'expérience**](/2013/03/x.html)", "[**Fondés sur l'économie de l'expérience**](/2013/03/x.html)"),
        ("**Le degré d****’****internalisation est**", "**Le degré d’internalisation est**"),
        ("**financement complet (200****€****) **", "**financement complet (200€) **"),
        ("**LONDON**** - ****20 June, 2011**** -** Innovative", "**LONDON - 20 June, 2011 -** Innovative"),
        ("****\u00a0", "\u00a0"),
        (" **** ", "  "),
        ("\n\n******\n\n", "\n\n\n\n"),
        ("********\u00a0", "\u00a0"),
        ("**A Promising Solution******", "**A Promising Solution**"),
        ("***“******If their commuting time***", "***“If their commuting time***"),
        ("***Battery***** as a Platform**", "***Battery* as a Platform**"),
        ("***A complete, one-stop-source in ******Europe***", "***A complete, one-stop-source in **Europe***"),
    ],
)
def test_mend_broken_bold(text: str, expected: str) -> None:
    assert mend_broken_bold(text) == expected


@pytest.mark.parametrize("text", ["**gras** *italique* ***les deux***", "\\*\\*\\*\\* échappées", "\\****", "* * * *", "2 * 3 ** 4"])
def test_mend_broken_bold_leaves_well_formed_emphasis(text: str) -> None:
    assert mend_broken_bold(text) == text


def _bold_markers_even(line: str) -> bool:
    """Each star run counts run // 2 ``**`` markers (``***`` is ``**`` + ``*``)."""
    return sum(len(run) // 2 for run in re.findall(r"\*+", line)) % 2 == 0


@given(st.lists(st.sampled_from(["**", "****", "*", "***", "a", " ", "é", "’", "\u00a0", ".", "["]), max_size=20).map("".join))
def test_mend_broken_bold_keeps_balanced_bold_balanced_when_runs_touch_text_on_one_side(line: str) -> None:
    # Groups of four stars are two ``**`` markers: removing them keeps the parity. Only a
    # run glued on both sides (close + reopen) or isolated by spaces may lose an odd count.
    runs = list(re.finditer(r"\*{4,}", line))
    one_sided = all((m.start() > 0 and not line[m.start() - 1].isspace()) != (m.end() < len(line) and not line[m.end()].isspace()) for m in runs)
    if one_sided and _bold_markers_even(line):
        assert _bold_markers_even(mend_broken_bold(line))


# --- drop_csv_debris ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('en 2008.\n\n\u00a0\n\n"', "en 2008.\n\n\u00a0\n"),
        ('Fin.\n\n "', "Fin.\n"),
        ('"', ""),
        ("L'article complet de Joe est sur [**Headway**]().\"", "L'article complet de Joe est sur [**Headway**]()."),
        ('- [http://biogeekblog.com/tag/health-20/]() "', "- [http://biogeekblog.com/tag/health-20/]()"),
        ('[**Glossary & Appendices**]() (2.71 KB) "', "[**Glossary & Appendices**]() (2.71 KB)"),
        ('*par [les_ernest]()*"', "*par [les_ernest]()*"),
        (
            '"Nous sommes très heureux, dit-elle. «C\'est le premier pilote réel dans l\'État du Nebraska"."',
            "\"Nous sommes très heureux, dit-elle. «C'est le premier pilote réel dans l'État du Nebraska\".",
        ),
        ('ient portés par des start-up anglo-saxons.\n\n <p style=""text-align: justify', "ient portés par des start-up anglo-saxons.\n\n "),
        ('Texte.\n\u00a0<img alt=""Filière betterave"" class=""asset asset-image at-xid-6a0120a66d', "Texte.\n\u00a0"),
        ('Texte.\n<p style=""padding-left: 30px\u00a0\n', "Texte.\n\u00a0\n"),
        ("en gras</strong", "en gras"),
        ('Fin.\n<a href=""http://www.legifrance.gouv.fr', "Fin.\n"),
    ],
)
def test_drop_csv_debris(text: str, expected: str) -> None:
    assert drop_csv_debris(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        # hard case 15: the body legitimately starts with a quote
        '"*Plus que 3 km ...*" songe Mathieu en consultant le coin de ses glass. Courir était pour lui un plaisir.',
        '"Vas-y, rajoute une bûche" demande Amandine.',
        # a closing quote after a word closes a quotation (opened earlier, or its opening was lost)
        'Comme l\'indique **[Dominique Desjeux]()**, "La consommation devient un véritable sport de combat !"',
        '"FuturICT is a visionary project.\n\n \n\nThese interactions create collective dynamics of strongly coupled systems."',
        'les ateliers d’autoproduction de leur favela ou de leur township d’origine."',
        # never the middle of a body
        'Il dit\n"\nplus loin <p style=""text-align: justify\net la suite.',
        '<img alt=""Ve2"" /> puis du texte.',
        "Rien à retirer.",
        "",
    ],
)
def test_drop_csv_debris_leaves_legitimate_quotes_and_the_middle(text: str) -> None:
    assert drop_csv_debris(text) == text


def test_drop_csv_debris_removes_only_the_export_quote_after_a_quotation() -> None:
    # the lone line is the export's quote; the one before it closes a real quotation
    text = 'township d’origine."\n\n"'
    assert drop_csv_debris(text) == 'township d’origine."\n'


# --- convert_youtube_shortcodes ----------------------------------------------------------

_EMBED = '<iframe width="560" height="315" src="https://www.youtube-nocookie.com/embed/{}" title="YouTube video" frameborder="0" allowfullscreen></iframe>'


@pytest.mark.parametrize(
    ("text", "video"),
    [
        ("[youtube http://www.youtube.com/watch?v=mxm5VfJvXCc&hl=fr_FR&fs=1&]", "mxm5VfJvXCc"),
        ("[youtube http://www.youtube.com/watch?v=JrhwdTcTRV4&hl=fr&fs=1]", "JrhwdTcTRV4"),
        ("[youtube http://www.youtube.com/watch?v=B5gp-bQPnYM&rel=0&color1=0xb1b1b1&color2=0xcfcfcf&hl=ja_JP&feature=player_embedded&fs=1]", "B5gp-bQPnYM"),
        ("[youtube http://www.youtube.com/watch?v=iQxP_un15iQ&fs=1&hl=fr_FR]", "iQxP_un15iQ"),
        ("[youtube https://youtu.be/_75mp5NLf5U]", "_75mp5NLf5U"),
        ("[youtube=http://www.youtube.com/watch?feature=player_embedded&v=X813eTuZJkc&w=640]", "X813eTuZJkc"),
        ("[youtube https://www.youtube.com/embed/lvrrNvbhVXk?rel=0 width=560]", "lvrrNvbhVXk"),
        ("[embed]https://www.youtube.com/watch?v=xojDAXNSZyY[/embed]", "xojDAXNSZyY"),
    ],
)
def test_convert_youtube_shortcodes(text: str, video: str) -> None:
    before, after = "portsdufutur). ", '\u00a0\n\n"'
    assert convert_youtube_shortcodes(before + text + after, "hugo") == f"{before}{{{{< youtube {video} >}}}}{after}"
    assert convert_youtube_shortcodes(before + text + after, "jekyll") == before + _EMBED.format(video) + after


@pytest.mark.parametrize(
    "text",
    [
        "[youtube http://www.example.com/watch?v=mxm5VfJvXCc]",
        "[youtube http://www.youtube.com/watch?v=short]",
        "[youtube http://www.youtube.com/user/transportsdufutur]",
        "[embed]https://vimeo.com/19486470[/embed]",
        "[video ](http://www.youtube.com/watch?v=2aEPkyOBtRo&feature=player_embedded)explains",
    ],
)
def test_convert_youtube_shortcodes_leaves_unknown_urls(text: str) -> None:
    assert convert_youtube_shortcodes(text, "hugo") == text
    assert convert_youtube_shortcodes(text, "jekyll") == text


def test_convert_youtube_shortcodes_rejects_an_unknown_target() -> None:
    target: Any = "wordpress"
    with pytest.raises(ValueError, match="unknown YouTube target"):
        convert_youtube_shortcodes("[youtube http://www.youtube.com/watch?v=mxm5VfJvXCc]", target)


# --- properties --------------------------------------------------------------------------

# Healthy Markdown and typography, as words between separators: links and images with a
# URL, balanced emphasis, quotes closed on their line, complete HTML tags, prose that
# mentions "View", "more" and "youtube".
_HEALTHY_PIECES = [
    "mobilité", "l’été", "«\u00a0vélo\u00a0»", "“douce”", "‘x’", "soft\u00adhyphen", "x", "2013", "(parenthèse)", "[crochet]", "!",
    "[lien](http://a.fr)", "![](/assets/a.png)", "[![](/a.png)](http://a.fr)", "**gras**", "*it*", "***bi***", '"cité"', "<b>b</b>",
    "View", "more", "from", "youtube", "[video](http://www.youtube.com/watch?v=2aEPkyOBtRo)", "2 * 3", "\\****",
]  # fmt: skip
_SEPARATORS = [" ", "\u00a0", "\t", "\n", "\n\n", " \n\n\u00a0\n\n"]
# The targeted patterns, as whole pieces (no typography inside them).
_DEBRIS_PIECES = [
    "[x]()", "[**Alibaba**]()", "[**AutoNavi** ]()", "[]()", "[![]()]()", "![]()", "****", "******", "*****",
    " View more [documents]() from [transportsdufutur]().", "View more [presentations](http://www.slideshare.net/) from [tdf](http://s.net/t)",
    '"', ' "', '\n"', '\n <p style=""text-align: justify\n', "</strong", "[youtube http://www.youtube.com/watch?v=mxm5VfJvXCc&hl=fr_FR&fs=1&]",
    "[youtube http://www.example.com/x]", "[embed]https://youtu.be/_75mp5NLf5U[/embed]",
]  # fmt: skip
_healthy = st.lists(st.tuples(st.sampled_from(_SEPARATORS), st.sampled_from(_HEALTHY_PIECES)), max_size=25).map(lambda pairs: "".join(a + b for a, b in pairs))
# Pieces glued with or without separators: patterns may meet each other and healthy text.
_mixed = st.lists(st.sampled_from(_HEALTHY_PIECES + _SEPARATORS + _DEBRIS_PIECES + ["[", "]", "(", ")", "*", "!"]), max_size=25).map("".join)
_PATTERN_HINTS: dict[str, Callable[[str], bool]] = {
    "unwrap_empty_links": lambda text: "]()" in text,
    "drop_empty_images": lambda text: "![]()" in text,
    "drop_slideshare_remnants": lambda text: "View more" in text,
    "mend_link_emphasis": lambda text: "](" in text,
    "mend_broken_bold": lambda text: "****" in text,
    "drop_csv_debris": lambda text: '"' in text or "<" in text,
    "convert_youtube_shortcodes": lambda text: "[youtube" in text.lower() or "[embed]" in text.lower(),
    "convert_youtube_shortcodes_jekyll": lambda text: "[youtube" in text.lower() or "[embed]" in text.lower(),
}


@pytest.mark.parametrize("name", ALL_FUNCTIONS)
@given(text=_mixed)
def test_text_without_the_pattern_is_returned_unchanged(name: str, text: str) -> None:
    if not _PATTERN_HINTS[name](text):
        assert ALL_FUNCTIONS[name](text) == text


@pytest.mark.parametrize("name", ALL_FUNCTIONS)
@given(text=_healthy)
def test_healthy_markdown_is_returned_unchanged(name: str, text: str) -> None:
    assert ALL_FUNCTIONS[name](text) == text


@pytest.mark.parametrize("name", ALL_FUNCTIONS)
@given(text=_mixed)
def test_every_function_is_idempotent(name: str, text: str) -> None:
    once = ALL_FUNCTIONS[name](text)
    assert ALL_FUNCTIONS[name](once) == once


@given(text=st.text(alphabet=st.sampled_from(list('[]()!*"< >/\n \u00a0’ax=')), max_size=40))
def test_every_function_is_idempotent_on_bracket_soup(text: str) -> None:
    for function in ALL_FUNCTIONS.values():
        once = function(text)
        assert function(once) == once


@pytest.mark.parametrize("name", ALL_FUNCTIONS)
@given(text=_mixed)
@example(text="[![]()]()\tmobilité")
@example(text="mobilité\t****")
def test_typography_outside_the_patterns_is_kept(name: str, text: str) -> None:
    # A tab may go where a removal left it at a line's edge, as it would indent the line or
    # break it (``_keep_line_edges``); the real archive's test counts tabs too.
    cleaned = ALL_FUNCTIONS[name](text)
    assert Counter(TYPOGRAPHY.findall(cleaned.replace("\t", ""))) == Counter(TYPOGRAPHY.findall(text.replace("\t", "")))
    assert cleaned.count("\t") <= text.count("\t")


@given(text=_mixed)
def test_csv_debris_is_only_cut_from_the_end(text: str) -> None:
    assert text.startswith(drop_csv_debris(text).rstrip())


_HOSTILE = {
    "nested links": "[" * 50_000 + "x" + "]()" * 50_000,
    "nested links and brackets": "[a" * 50_000 + "]()" * 50_000,
    "image chain": "!" * 50_000 + "[]()" * 50_000,
    "unclosed shortcodes": "[youtube x" * 20_000,
    "lone quote lines": '\n"' * 100_000,
    "spaces": " " * 200_000 + "View more documents from x",
    "stars": "a****" * 40_000,
    "cut tags": '<p x=""y\n' * 20_000,
}


@pytest.mark.parametrize("name", _HOSTILE)
def test_hostile_input_is_cleaned_in_linear_time(name: str) -> None:
    # Quadratic versions (a pass per nesting level, a rescan per line) took minutes here.
    text = _HOSTILE[name]
    for function in ALL_FUNCTIONS.values():
        started = time.perf_counter()
        once = function(text)
        assert time.perf_counter() - started < 5
        assert function(once) == once


# --- the real archive --------------------------------------------------------------------

# Measured on the 998 posts (ours side, body before the export row), steps run in
# CLEANUP_STEP_NAMES order: files changed, and occurrences removed or rewritten.
EXPECTED_FILES = {
    "drop_csv_debris": 188,
    "drop_empty_images": 112,
    "drop_slideshare_remnants": 179,
    "mend_link_emphasis": 186,
    "unwrap_empty_links": 327,
    "mend_broken_bold": 73,
    "convert_youtube_shortcodes": 38,
}
EXPECTED_OCCURRENCES = {
    "drop_csv_debris": 188,  # 159 lone quote lines + 23 stray closing quotes + 6 cut HTML tags
    "drop_empty_images": 208,  # 187 [![]()]() + 21 ![]()
    "drop_slideshare_remnants": 219,  # "View more … from …" sentences (71 with dead links, 148 with URLs)
    "mend_link_emphasis": 262,  # 263 moves (199 around links, 64 inside); runs glued after a word left: de**[ l’hyper…](…)**
    "unwrap_empty_links": 1737,  # after images and remnants took their own ]()
    "mend_broken_bold": 153,  # runs of 4+ stars (some created by unwrapping **[**X**]()**)
    "convert_youtube_shortcodes": 41,  # 40 [youtube …] + 1 [embed]…[/embed]
}
EXPECTED_CSV_KINDS = {"lone_quote": 159, "stray_quote": 23, "cut_tag": 6}
_OCCURRENCES: dict[str, Callable[[str], int]] = {
    "drop_empty_images": lambda text: text.count("![]()"),
    "drop_slideshare_remnants": lambda text: text.count("View more"),
    "mend_link_emphasis": lambda text: sum(bool(m["lead"] or m["trail"]) for rx in (_EMPHASIS_AROUND_LINK, _EMPHASIS_IN_LINK) for m in rx.finditer(text)),
    "unwrap_empty_links": lambda text: text.count("]()"),
    "mend_broken_bold": lambda text: len(re.findall(r"\*{4,}", text)),
    "convert_youtube_shortcodes": lambda text: len(re.findall(r"\[youtube|\[embed\]", text, re.I)),
}
_LONE_QUOTE_END = re.compile(r'(?:\A|\n) *" *\s*\Z')
_CUT_TAG_END = re.compile(r'<(?:[A-Za-z]+[ \t][^<>\n]*""[^<>\n]*|/[A-Za-z]+)\s*\Z')


def _csv_kind(before: str) -> str:
    if _LONE_QUOTE_END.search(before):
        return "lone_quote"
    return "cut_tag" if _CUT_TAG_END.search(before) else "stray_quote"


def _corpus_bodies() -> dict[str, str]:
    bodies = {}
    for path in sorted(CORPUS.glob("*.md")):
        resolved = resolve_conflicts(path.read_text(encoding="utf-8"), "ours").text
        bodies[path.name] = split_wordpress_row(split_front_matter(resolved).body).body
    return bodies


@pytest.mark.corpus
def test_cleanup_on_the_real_archive() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the real archive is not at {CORPUS} (../shared is absent on a bare clone)")
    bodies = _corpus_bodies()
    assert len(bodies) == 998
    files: Counter[str] = Counter()
    occurrences: Counter[str] = Counter()
    csv_kinds: Counter[str] = Counter()
    typography_changed: list[tuple[str, str]] = []
    not_idempotent: list[tuple[str, str]] = []
    quote_kept_at_end = 0
    cleaned = {}
    for name, body in bodies.items():
        text = body
        for step in CLEANUP_STEP_NAMES:
            new = STEPS[step](text)
            if STEPS[step](new) != new:
                not_idempotent.append((step, name))
            if Counter(TYPOGRAPHY.findall(new)) != Counter(TYPOGRAPHY.findall(text)):
                typography_changed.append((step, name))
            if step == "drop_csv_debris":
                quote_kept_at_end += new.rstrip().endswith('"')
            if new != text:
                files[step] += 1
                if step == "drop_csv_debris":
                    occurrences[step] += 1
                    csv_kinds[_csv_kind(text)] += 1
                else:
                    occurrences[step] += _OCCURRENCES[step](text) - _OCCURRENCES[step](new)
            text = new
        cleaned[name] = text

    assert typography_changed == []
    assert not_idempotent == []
    assert dict(files) == EXPECTED_FILES
    assert dict(occurrences) == EXPECTED_OCCURRENCES
    assert dict(csv_kinds) == EXPECTED_CSV_KINDS
    remaining = {
        "[x]()": sum(len(re.findall(r"(?<!!)\[[^\[\]]*\]\(\)", text)) for text in cleaned.values()),
        "]()": sum(text.count("]()") for text in cleaned.values()),
        "![]()": sum(text.count("![]()") for text in cleaned.values()),
        "****": sum(text.count("****") for text in cleaned.values()),
        "View more … from": sum(len(re.findall(r"View more .* from", text)) for text in cleaned.values()),
        "[youtube": sum(text.lower().count("[youtube") for text in cleaned.values()),
        "lone quote at end": sum(bool(_LONE_QUOTE_END.search(text)) for text in cleaned.values()),
        "cut tag at end": sum(bool(_CUT_TAG_END.search(text)) for text in cleaned.values()),
    }
    assert remaining == dict.fromkeys(remaining, 0)
    # Quotes kept at the very end follow a word and close a quotation: 9 posts after
    # drop_csv_debris, 3 more once later steps removed what followed them (an empty image,
    # the link around ``["Les certificats … ?"]()``).
    assert quote_kept_at_end == 9
    assert sum(text.rstrip().endswith('"') for text in cleaned.values()) == 12
    # Hard case 15 keeps its opening quote.
    assert cleaned["2013-12-16-fiction-n6-big-dog.md"].startswith('"*Plus que 3 km ...*" songe Mathieu')


_SHORTCODE_BITS = st.sampled_from(
    ["[", "]", "[youtube", "[YouTube", "[YOUTUBE=", "[embed]", "[EMBED]", "[/embed]", " ", "\n", "=", "http://youtu.be/mxm5VfJvXCc", "x", "é"]
)


@given(st.lists(_SHORTCODE_BITS, max_size=12).map("".join))
def test_a_text_without_a_shortcode_start_has_no_shortcode(text: str) -> None:
    """convert_youtube_shortcodes returns a text unread when its shortcode's start is absent:
    that is exact only if every shortcode match begins with that start."""
    if _YOUTUBE_SHORTCODE.search(text):
        assert _SHORTCODE_START.search(text)


_PLAIN_STAR_RUN = re.compile(r"(?<![\\*])\*{4,}")  # the star-run pattern as first written


@given(st.lists(st.sampled_from(["*", "**", "****", "\\", "\\*", " ", "a", "\n", "é"]), max_size=16).map("".join))
def test_the_star_run_pattern_matches_where_its_plain_form_does(text: str) -> None:
    assert [m.span() for m in cleanup._STAR_RUN.finditer(text)] == [m.span() for m in _PLAIN_STAR_RUN.finditer(text)]


def _indentation(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _line_end(line: str) -> int:
    return len(line) - len(line.rstrip(" \t"))


_EDGE_BITS = ["![]()", "[![]()]()", " ", "  ", "\t", "\n", "x", "<iframe>", "!", "[]()", "****", "**", "[", "](/u)", "]()"]


@pytest.mark.parametrize("name", ["drop_empty_images", "mend_link_emphasis", "unwrap_empty_links", "mend_broken_bold"])
@given(text=st.lists(st.sampled_from(_EDGE_BITS), max_size=20).map("".join))
@example(text="![]() x")
@example(text=" [![]()]() [![]()]() [![]()]() <iframe>")
@example(text="[]()     x **** \n**[   ici](/u)**\nun **[ici  ](/u)**")
@example(text="a\t****  \nb  ![]()\t\t\nx **[a  ](/u)**\t\t\nx  []()\t\t")
def test_no_step_indents_a_line_deeper_or_breaks_it(name: str, text: str) -> None:
    """Four spaces of indentation make a code block, two at a line's end a line break."""
    lines = STEPS[name](text).split("\n")
    assert len(lines) == len(text.split("\n"))  # no line is joined to another
    for before, after in zip(text.split("\n"), lines, strict=True):
        if after.strip(" \t"):
            assert _indentation(after) <= _indentation(before)
            assert _line_end(after) <= max(_line_end(before), 1)
            # What ends the line is what ended it (two spaces break it, a tab does not).
            assert before.endswith(after[len(after.rstrip(" \t")) :]) or _line_end(before) == 0


@given(
    mark=st.sampled_from(["*", "**", "***", "_", "__"]),
    lead=st.sampled_from(["", " ", "\u00a0", "  "]),
    words=st.sampled_from(["ici", "le Sens", "été’"]),
    trail=st.sampled_from(["", " ", "\u00a0", " \u00a0"]),
    target=st.sampled_from(["", "/2011/04/x/", "http://a.fr/?q=1#s"]),
    after=st.sampled_from(["", "et", ".", " suite", ")"]),
    inside=st.booleans(),
)
def test_emphasis_around_a_link_keeps_no_white_space_inside_its_markers(
    mark: str, lead: str, words: str, trail: str, target: str, after: str, inside: bool
) -> None:
    text = f"[{mark}{lead}{words}{trail}{mark}]({target}){after}" if inside else f"{mark}[{lead}{words}{trail}]({target}){mark}{after}"
    mended = mend_link_emphasis(text)
    assert f"{mark}{words}{mark}" in mended or f"{mark}[{words}]({target}){mark}" in mended
    # White space moved; spaces dropped only at the line's edges (``_keep_line_edges``).
    assert Counter(mended.replace(" ", "")) == Counter(text.replace(" ", "")) and mended.count(" ") <= text.count(" ")
    if not target:  # a dead link, unwrapped next: the emphasis still holds the words alone
        assert f"{mark}{words}{mark}" in unwrap_empty_links(mended)


def _mend_link_emphasis_plainly(text: str) -> str:
    """``mend_link_emphasis`` as its two patterns say it: each searched for from every
    position (a match whose marker follows a letter or digit is passed over), until nothing
    moves; then the line edges kept."""
    original = text
    while True:
        inside = cleanup._EMPHASIS_IN_LINK.sub(cleanup._spaces_out_of_emphasis, text)
        pieces, done, position = [], 0, 0
        while (match := cleanup._EMPHASIS_AROUND_LINK.search(inside, position)) is not None:
            if match.start() and inside[match.start() - 1].isalnum():
                position = match.start() + 1
                continue
            pieces += [inside[done : match.start()], cleanup._spaces_out_of_emphasis(match)]
            done = position = match.end()
        mended = "".join(pieces) + inside[done:]
        if mended == text:
            return cleanup._keep_line_edges(original, text)
        text = mended


_EMPHASIS_BITS = ["*", "**", "***", "****", "_", "__", "[", "]", "(", ")", "](", "](/u)", " ", "\u00a0", "\\", "!", "a", "x y", "\n"]


@given(st.lists(st.sampled_from(_EMPHASIS_BITS), max_size=16).map("".join))
@example("***[a ](/u)***b ___[ a](/u)___")
@example("\\**[a ](/u)** ****[a ](/u)**** _*[a ](/u)*")
@example("**[a ](/u)**[b ](/u)** *[a ]()*[b ]()*")
@example("x *[ **a **](u)* y\n**[  b](u)**\n**[c  ](u)**")
def test_mend_link_emphasis_does_what_its_patterns_say(text: str) -> None:
    assert mend_link_emphasis(text) == _mend_link_emphasis_plainly(text)
