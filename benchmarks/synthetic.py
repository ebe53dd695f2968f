"""Synthetic WordPress-to-Jekyll archives with the defect mix of the real one.

``generate(out_dir, n, seed)`` writes ``n`` posts named ``YYYY-MM-DD-slug.md`` into an empty
``out_dir`` and returns what it put in them as flat counts (``blocks.front_matter``,
``rows.quoted_line_start``, ...). The counts are only returned, never written beside the
posts (a manifest in the raw folder would be read as an input); the command line prints them
as JSON and writes them to ``--manifest FILE`` when asked::

    python -m benchmarks.synthetic OUT_DIR --posts N --seed S [--manifest FILE]

The proportions are those measured on the 998 posts of the real archive
(``../shared/corpus/DEFECTS.md``); the constants below cite them. Text comes from a small
built-in French-ish vocabulary, not from the corpus. Only ``random.Random(seed)`` draws, so
the same ``(n, seed)`` gives byte-identical files. Posts are written one at a time (the only
archive-wide state is the set of slugs of the current day), so memory stays flat at any ``n``.

What a post can hold, as in the archive:

- front matter ``layout/title/date/categories/tags``, ``date: YYYY-MM-DD HH:MM:SS +0100``
  even in summer, titles always double-quoted, a few CSV-mangled (``\\"\\"``);
- a conflict block around the ``tags:`` line: ours a Python-repr list, theirs JSON with
  ``\\u00e9`` escapes; some such blocks swallow the closing ``---`` and part (rarely all,
  export row included) of the body; ``tags: []`` posts have no front-matter block;
- body-only blocks whose theirs side has ``_x000D_`` debris (standalone lines and at line
  ends, also where a hard line break splits a word) and absolute post links rewritten from
  ``https://example.org/2015/06/slug.html`` to ``/2015/06/09/slug/`` (a slug ending in ``-``
  gives the broken rewrite ``/2015/06/09/slug/-.html``: those blocks' sides differ);
- a trailing WordPress export row in a block (ours: absolute ``.html`` URL; theirs: the
  ``/YYYY/MM/DD/slug/`` one) in each layout the pipeline reports: ``quoted_line_start``,
  ``quoted_after_text``, ``unquoted_after_text`` (an excerpt glued before the date),
  ``unquoted_line_start`` (not in the archive, kept rare), plus the degenerate
  ``url_slug_only`` line outside any block; authors ``login1234first.last@example.orgFirstLast``
  or plain ``first last``; category names glued before the tags in the term cell; a CSV
  spill after the row (a lone ``"``, or text glued to ``post_modified`` and lines after);
- bodies with curly apostrophes, guillemets, NBSP, empty links, shortcodes, tabs, a few
  soft hyphens and zero-width spaces, posts ending with a stray CSV ``"``, empty
  media pseudo-posts and byte-identical ``-2`` twins.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

# Proportions, from DEFECTS.md (998 posts).
P_TAGS_EMPTY = (173 - 52) / (998 - 52)  # `tags: []` (never in a front-matter block) besides the empty media posts
P_FM_BODY = 44 / 825  # tag blocks that swallow the closing --- and part of the body
P_FM_BODY_WITH_ROW = 0.5  # of those with a row, the block runs through the row (1 of 44 in the archive)
P_ROW_TAGGED = 173 / 825  # posts with tags that have an export row
P_ROW_UNTAGGED = 13 / (173 - 52)  # non-empty posts with `tags: []` that have one (terms recovered from the row)
P_URL_SLUG_ONLY = 1 / 998  # the degenerate `URL + slug` last line, outside any block
P_BODY_BLOCKS = 127 / 998  # posts with body-only blocks
P_SECOND_BODY_BLOCK = 10 / 127
P_BODY_BLOCK_DEBRIS = 121 / 137  # body blocks whose theirs side has _x000D_ debris
P_BODY_BLOCK_LINK = 55 / 137  # body blocks with a rewritten post link
LAYOUTS = ("quoted_line_start", "quoted_after_text", "unquoted_after_text", "unquoted_line_start")
LAYOUT_WEIGHTS = (127, 57, 2, 1)  # the last is not in the archive; kept rare
P_ROW_2X2 = 1 / 185  # a row block that also holds the line before the row
P_SPILL_QUOTE = 12 / 186  # a lone `"` line after the row
P_SPILL_LINES = 92 / 186  # continuation lines after the row
P_SPILL_GLUED = 0.5  # of those, text glued right after post_modified on the row line
P_SPILL_DIGITS = 2 / 92  # of those, digits glued to the seconds of post_modified
P_TERMS_CATEGORY = 6 / 173  # a category name glued before the tags in the term cell
P_MODIFIED_SAME = 17 / 186
P_MODIFIED_MASS_EDIT = 155 / 186
P_END_QUOTE_LINE = 159 / 812  # posts without a row ending with a lone `"`
P_END_QUOTE_GLUED = 25 / 812  # ... or with a line ending in `"`
P_END_HTML_ATTRIBUTE = 6 / 812  # ... or inside an HTML attribute
P_EMPTY_BODY = 52 / 998  # media-attachment pseudo-posts: no body, `tags: []`, no row
P_TWIN = 20 / 998  # a byte-identical `-2` twin is written next to the post
P_TITLE_MANGLED = 35 / 998
P_TITLE_DOUBLE_SPACE = 9 / 998
P_CURLY = 563 / 998  # posts written with ’ rather than '
P_NBSP = 747 / 998
P_TABS = 68 / 998
P_SOFT_HYPHEN = 5 / 998
P_ZWSP = 2 / 998
P_NFD = 1 / 998
P_LINK = 0.12  # prose paragraphs with an internal post link (about 1,023 links in 998 posts)
P_LINK_ABSOLUTE = 188 / 1023
P_LINK_TRAILING_HYPHEN = 75 / 1023
P_LINK_MISSING = 10 / 1023
P_MULTILINE = 0.15  # paragraphs with hard line breaks
P_SPLIT_WORD = 0.1  # of those, the break falls inside a word

DOMAIN = "example.org"
START = datetime(2009, 11, 12)
END = datetime(2024, 6, 28, 18, 0, 0)
MASS_EDIT = datetime(2015, 7, 21, 16, 35, 30)
ZONE = ZoneInfo("Europe/Paris")


def _words(text: str, separator: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(separator))


NOUNS = _words(
    "mobilité véhicule voiture vélo transport réseau plateforme service territoire usager innovation énergie batterie recharge covoiturage "
    "autopartage logistique livraison donnée algorithme infrastructure route ville métropole campagne écosystème constructeur startup modèle "
    "usage expérimentation collectivité opérateur billettique gare tramway navette camion carburant émission qualité sécurité stratégie marché "
    "client chaîne valeur filière trajet parcours déplacement stationnement péage bus métro scooter trottinette capteur robot logiciel "
    "application smartphone carte itinéraire voyageur conducteur piéton citoyen entreprise industrie politique règlement programme appel projet "
    "feuille"
)
ADJECTIVES = _words(
    "partagé électrique autonome connecté urbain rural numérique durable collectif individuel ouvert neutre public privé européen français "
    "mondial local nouveau ancien propre léger lourd rapide lent efficace sobre intermodal multimodal innovant historique complexe simple gratuit "
    "payant flexible central décarboné thermique hybride intelligent"
)
VERBS = _words(
    "transforme accélère réinvente propose développe finance teste déploie relie organise mesure optimise remplace complète favorise freine "
    "oriente construit partage interroge révèle annonce prépare imagine simplifie rend ouvre porte invente réduit"
)
SMALL = _words(
    "le la les un une des du de et ou mais donc pour avec sans sur dans par entre vers chez plus moins très aussi déjà encore toujours ainsi "
    "alors cette ce ces leur leurs notre nos chaque tout tous bien peut doit sont est"
)
ELIDED = _words(
    "l'innovation l'usager l'écosystème l'énergie l'industrie l'offre l'opérateur l'automobile d'usage d'acteurs d'une d'un d'autres qu'il qu'une "
    "qu'on n'est c'est s'agit j'ai aujourd'hui l'autopartage l'État d'ici"
)
TAGS = _words(
    "vélo|qualité de l'air|données réelles|Energie|Santé|low cost|Précarité|Service de mobilité|simplicité|TIC|"
    "transition générationnelle|Véhicule|Infrastructure|stationnement|batiment|citoyen|Efficacité énergétique|internet|mode doux|"
    "multimodes|open source|partage de données|web2.0|plate-forme|plateforme|effet de réseau|compte mobilité|Amazon|Google|Uber|Tesla|"
    "autopartage|covoiturage|véhicule autonome|robotaxi|logistique urbaine|dernier kilomètre|écosystème|Innovation|expérimentation|"
    "territoire rural|ville intelligente|électromobilité|hydrogène|biocarburant|fret|ferroviaire|aérien|maritime|assurance|régulation|"
    "fiscalité|modèle économique|start-up|open data|billettique|MaaS|usager au centre|l'usager d'abord|comportement|sobriété|"
    "accès emploi|télétravail|nudge|art de la guerre|stratégie|Acteur historique des Mobilités|Acteur numérique des Mobilités|"
    "Non classé|prospective|rebond|système|chaine de valeur|industrie|emploi|intermodalité|vélo électrique|trottinette|péage urbain|"
    "zone faibles émissions|qualité de vie|énergie grise|recharge|batterie|matériaux|recyclage|sécurité routière|équité|accessibilité|"
    "tarification|gratuité",
    "|",
)
CATEGORIES = _words("Notes de veille|Billets invités|Mes billets|Carnets", "|")
FIRST_NAMES = _words("pierre marie claire thomas julien sophie nicolas camille antoine lucie paul anne")
LAST_NAMES = _words("martin bernard durand lefevre moreau garnier fournier girard roux mercier blanc faure")
EXTERNAL = _words("www.exemple-presse.fr blog.mobilite-demo.net docs.example.com www.lesechos-demo.fr slides.example.net")
MEDIA_EXTENSIONS = _words("avi flv mp4 jpg pdf")

_FOLD = str.maketrans({"’": "", "'": "", "œ": "oe", "æ": "ae", "«": "", "»": ""})
_NON_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str) -> str:
    """A WordPress-like slug: accents folded, apostrophes dropped, other runs of non-alphanumerics to ``-``.

    >>> slugify("L’innovation, c'est « simple » à Évry")
    'linnovation-cest-simple-a-evry'
    """
    folded = unicodedata.normalize("NFKD", text.lower().translate(_FOLD)).encode("ascii", "ignore").decode("ascii")
    return _NON_SLUG.sub("-", folded).strip("-")


@dataclass
class _Chunk:
    """One paragraph (one or more lines) and the post links it holds, {ours URL: theirs URL}."""

    lines: list[str]
    links: dict[str, str] = field(default_factory=dict)
    broken: bool = False  # a link whose rewrite on theirs is broken


@dataclass(frozen=True)
class _Author:
    author_id: int
    blob: str


@dataclass(frozen=True)
class _Shared:
    """What every slice of the archive shares, drawn from ``random.Random(seed)``."""

    label: str  # the theirs marker's commit id
    pools: dict[tuple[bool, bool], list[str]]  # sentences by (curly apostrophes, NBSP)
    authors: list[_Author]

    @classmethod
    def draw(cls, seed: int) -> _Shared:
        rng = random.Random(seed)
        label = f"{rng.getrandbits(160):040x}"
        base = [_sentence(rng) for _ in range(1500)]
        spaced = [x.replace("\u00a0", " ") for x in base]
        # Four typographic variants of one pool: curly or straight apostrophes, NBSP or spaces.
        pools = {(curly, nbsp): [x.replace("'", "’") if curly else x for x in (base if nbsp else spaced)] for curly in (False, True) for nbsp in (False, True)}
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        login = f"{first}{last}{rng.randint(1000, 9999)}"
        main_email = _Author(7, f"{login}{first}.{last}@{DOMAIN}{first.capitalize()}{last.capitalize()}")
        others = [_Author(author_id, f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}") for author_id in (35, 27, 24, 21)]
        return cls(label, pools, [main_email, _Author(18, f"{first} {last}"), *others])


def _sentence(rng: random.Random) -> str:
    words: list[str] = []
    for _ in range(rng.randint(6, 22)):
        pick = rng.random()
        if pick < 0.35:
            words.append(rng.choice(SMALL))
        elif pick < 0.65:
            words.append(rng.choice(NOUNS))
        elif pick < 0.8:
            words.append(rng.choice(ADJECTIVES))
        elif pick < 0.92:
            words.append(rng.choice(VERBS))
        else:
            words.append(rng.choice(ELIDED))
    if rng.random() < 0.12:
        i = rng.randrange(len(words))
        j = min(len(words), i + rng.randint(2, 5))
        words[i:j] = ["«\u00a0" + " ".join(words[i:j]) + "\u00a0»"]
    if rng.random() < 0.1:
        words.insert(rng.randrange(1, len(words) + 1), "\u00a0:" if rng.random() < 0.5 else "\u00a0;")
    text = " ".join(words).replace(" \u00a0", "\u00a0")
    end = rng.choices((".", "\u00a0?", "\u00a0!", "…", " ..."), (80, 8, 4, 5, 3))[0]
    return text[0].upper() + text[1:] + end


AUTHOR_WEIGHTS = (167, 15, 1, 1, 1, 1)  # rows per author id in the archive: 7 (with email), 18, then four guests


class _Generator:
    """Writes one slice of the archive: ``n`` posts dated within ``[first_day, end_day)``."""

    def __init__(self, shared: _Shared, rng: random.Random, n: int, first_day: datetime, end_day: datetime) -> None:
        self.rng = rng
        self.n = n
        self.label = shared.label
        self.pools = shared.pools
        self.authors = shared.authors
        self.author_weights = AUTHOR_WEIGHTS
        # Post times spread over the slice's days, in order; a day never spans two slices.
        span = (end_day - first_day).total_seconds()
        steps = [rng.expovariate(1.0) for _ in range(n + 1)]
        scale, elapsed = span / sum(steps), 0.0
        self.times: list[datetime] = []
        for step in steps[:n]:
            elapsed += step * scale
            self.times.append(first_day + timedelta(seconds=elapsed))
        self.day = ""
        self.slugs_today: set[str] = set()
        self.counts: Counter[str] = Counter()  # the post being written
        self.total: Counter[str] = Counter()  # the slice so far
        self.written = 0
        self.recent: list[tuple[datetime, str]] = []  # link targets: the slice's latest posts

    # -- text ---------------------------------------------------------------------------

    def _paragraph(self, pool: list[str], year: int) -> _Chunk:
        rng = self.rng
        kind = rng.random()
        if kind < 0.06:
            return _Chunk([f"**{rng.choice(pool).rstrip('.?!… ')}**"])
        if kind < 0.1:
            image = f"/assets/images/{year}/{rng.randint(1, 12):02d}/{slugify(rng.choice(NOUNS))}-{rng.randint(1, 999)}"
            return _Chunk([f"[![{rng.choice(NOUNS)}]({image}-300x200.jpg)]({image}.jpg)"])
        if kind < 0.12:
            return _Chunk([" ".join(["[![]()]()"] * rng.randint(1, 3))])
        if kind < 0.14:
            return _Chunk([f"[youtube http://www.youtube.com/watch?v={rng.getrandbits(48):012x}&fs=1]"])
        if kind < 0.15:
            return _Chunk([f"View more [presentations]() from [{rng.choice(FIRST_NAMES)}]()"])
        if kind < 0.2:
            return _Chunk([f"- {s}" for s in rng.choices(pool, k=rng.randint(2, 5))])
        sentences = rng.choices(pool, k=rng.randint(1, 6))
        chunk = _Chunk([])
        if rng.random() < 0.2:
            url = f"http://{rng.choice(EXTERNAL)}/{slugify(rng.choice(NOUNS))}/{rng.randint(100, 99999)}"
            sentences[-1] = f"{sentences[-1]} [{rng.choice(NOUNS)}]({url})"
        if rng.random() < P_LINK:
            sentences[-1] += " " + self._post_link(chunk, rng.random() < P_LINK_ABSOLUTE)
        if rng.random() < 0.04:
            sentences[0] = "[texte]() " + sentences[0]
        if len(sentences) > 1 and rng.random() < P_MULTILINE:
            cut = rng.randrange(1, len(sentences))
            first, second = " ".join(sentences[:cut]), " ".join(sentences[cut:])
            if rng.random() < P_SPLIT_WORD:
                # A hard break inside a word: `il semb` / `le bien`.
                words = second.split(" ")
                at = rng.randrange(len(words))
                word = words[at]
                if len(word) > 3 and word.isalpha():
                    k = rng.randint(1, len(word) - 1)
                    first = " ".join([first, *words[:at], word[:k]])
                    second = " ".join([word[k:], *words[at + 1 :]])
            chunk.lines = [first, second]
        else:
            chunk.lines = [" ".join(sentences)]
        return chunk

    def _post_link(self, chunk: _Chunk, absolute: bool) -> str:
        """A Markdown link to another post of the blog; absolute ones are rewritten on theirs."""
        rng = self.rng
        if self.recent and rng.random() > P_LINK_MISSING:
            # An earlier post of the archive (91% of the archive's links resolve, 7% but for a trailing `-`).
            target, slug = rng.choice(self.recent)
            trailing = rng.random() < P_LINK_TRAILING_HYPHEN
        else:
            target = START + timedelta(days=rng.randint(0, (END - START).days))
            slug, trailing = slugify(" ".join(rng.choices(NOUNS + ADJECTIVES, k=rng.randint(2, 6)))), False
        stem = f"/{target:%Y/%m}/{slug}{'-' if trailing else ''}.html"
        if absolute:
            ours = f"https://{DOMAIN}{stem}"
            # The rewrite of theirs; a slug ending in `-` comes out broken, as in the archive.
            theirs = f"/{target:%Y/%m/%d}/{slug}/-.html" if trailing else f"/{target:%Y/%m/%d}/{slug}/"
            chunk.links[ours] = theirs
            chunk.broken = chunk.broken or trailing
        else:
            ours = stem
        return f"[{rng.choice(NOUNS)} {rng.choice(ADJECTIVES)}]({ours})"

    def _theirs(self, chunks: list[_Chunk]) -> list[str]:
        """Theirs side of a run of paragraphs: rewritten post links, _x000D_ debris; ``[]`` if no difference."""
        rng = self.rng
        debris = rng.random() < P_BODY_BLOCK_DEBRIS or not any(c.links for c in chunks)
        out: list[str] = []
        for index, chunk in enumerate(chunks):
            if index:
                out.append("")
                if debris and rng.random() < 0.7:
                    group = rng.randint(1, 8)
                    out.extend(["_x000D_"] * group)
                    out.append("")
                    self.counts["x000d_standalone"] += group
            for number, line in enumerate(chunk.lines):
                for ours, theirs in chunk.links.items():
                    line = line.replace(ours, theirs)
                last = number == len(chunk.lines) - 1
                if debris and (not last or rng.random() < 0.5):
                    line += "_x000D_"
                    self.counts["x000d_end_of_line"] += 1
                out.append(line)
        if debris and not any("_x000D_" in x for x in out):
            out.insert(0, "_x000D_")
            out.insert(1, "")
            self.counts["x000d_standalone"] += 1
        return out

    @staticmethod
    def _ours(chunks: list[_Chunk]) -> list[str]:
        out: list[str] = []
        for index, chunk in enumerate(chunks):
            if index:
                out.append("")
            out.extend(chunk.lines)
        return out

    def _block(self, ours: list[str], theirs: list[str], region: str, broken: bool = False) -> list[str]:
        self.counts["blocks"] += 1
        self.counts[f"blocks.{region}"] += 1
        self.counts["blocks_sides_differ"] += broken
        return ["<<<<<<< HEAD", *ours, "=======", *theirs, f">>>>>>> {self.label}"]

    # -- posts --------------------------------------------------------------------------

    def _next_date(self) -> datetime:
        rng = self.rng
        when = self.times[min(self.written, self.n - 1)]
        if when.hour < 7:  # no post at night: no wall-clock time in a DST gap or overlap
            when = when.replace(hour=rng.randint(7, 12))
        return when.replace(microsecond=0)

    def _unique_slug(self, day: str, slug: str) -> str:
        """A slug not yet used on ``day``, whose ``-2`` twin name is free too."""
        if day != self.day:
            self.day, self.slugs_today = day, set()
        candidate, suffix = slug, 3
        while candidate in self.slugs_today or f"{candidate}-2" in self.slugs_today:
            candidate, suffix = f"{slug}-{suffix}", suffix + 1
        self.slugs_today.add(candidate)
        return candidate

    def _twin_slug(self, slug: str) -> str:
        self.slugs_today.add(f"{slug}-2")
        return f"{slug}-2"

    def _title(self) -> str:
        rng = self.rng
        words = rng.choices(NOUNS + ADJECTIVES + SMALL + ELIDED, k=rng.randint(2, 16))
        title = " ".join(words)
        title = title[0].upper() + title[1:]
        if rng.random() < 0.15:
            title += rng.choice(("\u00a0?", " ?", "\u00a0!", " : le débat"))
        return title

    def _tags(self) -> list[str]:
        rng = self.rng
        count = min(12, 1 + int(rng.expovariate(1 / 3)))
        return sorted(set(rng.sample(TAGS, count)), key=str.casefold)

    def post(self, out_dir: Path) -> None:
        """Write one post (and maybe its byte-identical twin)."""
        rng = self.rng
        counts = self.counts = Counter()
        when = self._next_date()
        day = f"{when:%Y-%m-%d}"
        empty_body = rng.random() < P_EMPTY_BODY
        title = f"{rng.choice(NOUNS)}{rng.choice(ADJECTIVES)}-{rng.choice(MEDIA_EXTENSIONS)}" if empty_body else self._title()
        curly, nbsp = rng.random() < P_CURLY, rng.random() < P_NBSP
        if curly:
            title = title.replace("'", "’")
        slug = slugify(title)[:100].rstrip("-") or "post"
        slug = self._unique_slug(day, slug)
        if len(self.recent) >= 1000:
            del self.recent[:500]
        self.recent.append((when, slug))
        pool = self.pools[(curly, nbsp)]

        # Title as the spreadsheet left it: double-quoted YAML, a few CSV-mangled.
        shown = title.replace("\u00a0", " ") if not nbsp else title
        if rng.random() < P_TITLE_DOUBLE_SPACE:
            shown = shown.replace(" ", "  ", 1)
        if rng.random() < P_TITLE_MANGLED:
            counts["titles_mangled"] += 1
            shown = shown + '""' if rng.random() < 22 / 35 else shown.replace(" ", '" ', 1) + '"'
        escaped = shown.replace("\\", "\\\\").replace('"', '\\"')
        header = ["---", "layout: post", f'title: "{escaped}"', f"date: {when:%Y-%m-%d %H:%M:%S} +0100", "categories: []"]
        if when.replace(tzinfo=ZONE).utcoffset() != timedelta(hours=1):
            counts["summer_dates"] += 1

        tags_empty = rng.random() < P_TAGS_EMPTY or empty_body
        tags = [] if tags_empty else self._tags()
        has_row = rng.random() < (P_ROW_UNTAGGED if tags_empty else P_ROW_TAGGED) and not empty_body

        chunks: list[_Chunk] = []
        if not empty_body:
            for _ in range(1 + int(rng.expovariate(1 / 12))):
                chunks.append(self._paragraph(pool, when.year))
            self._sprinkle(chunks)

        lines = header
        fm_body = not tags_empty and bool(chunks) and rng.random() < P_FM_BODY
        row_in_fm_block = bool(fm_body and has_row and rng.random() < P_FM_BODY_WITH_ROW)
        row_ours, row_theirs, spill = self._row(when, slug, tags, pool, chunks) if has_row else ([], [], [])
        body_start = 0
        if tags_empty:
            lines += ["tags: []", "---", ""]
            counts["tags_empty"] += 1
        else:
            ours_tags, theirs_tags = f"tags: {tags!r}", f"tags: {json.dumps(tags)}"
            if fm_body:
                body_start = len(chunks) if row_in_fm_block else rng.randint(1, len(chunks))
                inside = chunks[:body_start]
                ours = [ours_tags, "---", "", *self._ours(inside)]
                theirs = [theirs_tags, "---", "", *self._theirs(inside)]
                if row_in_fm_block:
                    ours += ["", *row_ours]
                    theirs += ["", *row_theirs]
                lines += self._block(ours, theirs, "front_matter_body", any(c.broken for c in inside))
                if body_start < len(chunks):
                    lines.append("")
            else:
                lines += self._block([ours_tags], [theirs_tags], "front_matter")
                lines += ["---", ""]

        rest = chunks[body_start:]
        spans = self._body_spans(len(rest)) if rest and rng.random() < P_BODY_BLOCKS else []
        at = 0
        for start, end in spans:
            lines += self._ours(rest[at:start])
            if start > at:
                lines.append("")
            inside = rest[start:end]
            if rng.random() < P_BODY_BLOCK_LINK and not any(c.links for c in inside):
                # An absolute post link rewritten on theirs is what made many body blocks.
                chunk = rng.choice(inside)
                chunk.lines[-1] += " " + self._post_link(chunk, absolute=True)
            lines += self._block(self._ours(inside), self._theirs(inside), "body", any(c.broken for c in inside))
            if end < len(rest):
                lines.append("")
            at = end
        lines += self._ours(rest[at:])

        if has_row and not row_in_fm_block:
            lines += rng.choice(([""], ["", " ", ""], ["", " ", "", " ", ""], ["", "\u00a0", ""]))
            lines += self._block(row_ours, row_theirs, "export_row")
        lines += spill
        if not has_row:
            counts["rows.none"] += 1
            if empty_body:
                counts["empty_bodies"] += 1
            else:
                self._row_less_ending(lines, when, slug)
        text = "\n".join(lines).rstrip("\n") + "\n"
        data = text.encode("utf-8")
        (out_dir / f"{day}-{slug}.md").write_bytes(data)
        counts["posts"] += 1
        counts["bytes"] += len(data)
        copies = 1
        if not has_row and rng.random() < P_TWIN and self.written + 2 <= self.n:
            # A byte-identical `-2` twin: same blocks, same everything but the file name.
            (out_dir / f"{day}-{self._twin_slug(slug)}.md").write_bytes(data)
            copies = 2
            self.total["twins"] += 1
        for key, value in counts.items():
            self.total[key] += value * copies
        self.written += copies

    def _sprinkle(self, chunks: list[_Chunk]) -> None:
        """Rare invisible or special characters, as in the archive."""
        rng = self.rng
        for probability, char, key in ((P_TABS, "\t", "tabs"), (P_SOFT_HYPHEN, "\u00ad", "soft_hyphens"), (P_ZWSP, "\u200b", "zero_width_spaces")):
            if rng.random() < probability:
                chunk = rng.choice(chunks)
                line = chunk.lines[0]
                at = rng.randrange(len(line) + 1) if char != "\t" else 0
                chunk.lines[0] = line[:at] + char + line[at:]
                self.counts[key] += 1
        if rng.random() < P_NFD:
            chunk = rng.choice(chunks)
            chunk.lines = [unicodedata.normalize("NFD", x) for x in chunk.lines]
            self.counts["nfd_paragraphs"] += 1

    def _body_spans(self, count: int) -> list[tuple[int, int]]:
        rng = self.rng
        spans: list[tuple[int, int]] = []
        wanted = 2 if count >= 4 and rng.random() < P_SECOND_BODY_BLOCK else 1
        bounds = sorted(rng.sample(range(count + 1), 2 * wanted)) if count + 1 >= 2 * wanted else [0, count]
        for i in range(0, len(bounds), 2):
            start, end = bounds[i], bounds[i + 1]
            if end > start:
                spans.append((start, end))
        return spans or [(0, count)]

    def _row(self, when: datetime, slug: str, tags: list[str], pool: list[str], chunks: list[_Chunk]) -> tuple[list[str], list[str], list[str]]:
        """The export row lines of each side and the spill lines written after the block."""
        rng = self.rng
        counts = self.counts
        layout = rng.choices(LAYOUTS, LAYOUT_WEIGHTS)[0]
        counts["rows"] += 1
        counts[f"rows.{layout}"] += 1
        terms_tags = tags or self._tags()
        terms = "|".join(terms_tags)
        if rng.random() < P_TERMS_CATEGORY or (not tags and rng.random() < 1 / 13):
            terms = rng.choice(CATEGORIES) + terms
        author = rng.choices(self.authors, self.author_weights)[0]
        pick = rng.random()
        if pick < P_MODIFIED_SAME:
            modified = when
        elif pick < P_MODIFIED_SAME + P_MODIFIED_MASS_EDIT and when < MASS_EDIT:
            modified = MASS_EDIT.replace(second=rng.randint(0, 59))
        else:
            modified = when + timedelta(seconds=rng.randint(60, 400 * 86400))
        date = f"{when:%Y-%m-%d %H:%M:%S}"
        cells = f"{terms}publish{author.author_id}{author.blob}{slug}{modified:%Y-%m-%d %H:%M:%S}"
        ours_url = f"https://{DOMAIN}/{when:%Y/%m}/{slug}.html"
        theirs_url = f"/{when:%Y/%m/%d}/{slug}/"

        spill: list[str] = []
        glued = ""
        roll = rng.random()
        if roll < P_SPILL_QUOTE:
            spill = ['"']
        elif roll < P_SPILL_QUOTE + P_SPILL_LINES:
            if rng.random() < P_SPILL_GLUED:
                digits = str(rng.randint(1000, 9999)) if rng.random() < P_SPILL_DIGITS else ""
                text = rng.choice(pool)
                glued = digits + (f'"" target=""_blank"">{text}' if rng.random() < 0.5 else f" {text}")
            lines: list[str] = []
            for number in range(rng.randint(1, 12)):
                if number:
                    lines.append(rng.choice(("", " ")))
                if rng.random() < 0.3:
                    lines.append(f'<span style=""MARGIN: 0pt"">{rng.choice(pool)}</span>')
                else:
                    lines.append((rng.choice(chunks).lines if chunks else [rng.choice(pool)])[0])
            if rng.random() < 0.6:
                lines += ["", '"']
            else:
                lines[-1] += '"'
            spill = lines
        if spill:
            counts["row_spills"] += 1

        before = ""
        if layout == "quoted_after_text":
            before = rng.choice(
                (
                    f"[youtube http://www.youtube.com/watch?v={rng.getrandbits(48):012x}&hl=fr_FR&fs=1]",
                    " ".join(["[![]()]()"] * rng.randint(1, 3)),
                    rng.choice(pool),
                )
            )
        elif layout == "unquoted_after_text":
            counts["row_excerpts"] += 1
            before = rng.choice(pool).rstrip(".?!… \u00a0") + rng.choice(("", f" en {when.year - 1}"))
        quote = '"' if layout.startswith("quoted") else ""
        ours = f"{before}{quote}{date}{ours_url}{cells}{glued}"
        theirs = f"{before}{quote}{date}{theirs_url}{cells}{glued}"
        if rng.random() < P_ROW_2X2:
            # The line before the row inside the block too, with debris on theirs.
            line = rng.choice(pool)
            counts["x000d_end_of_line"] += 1
            return [line, ours], [line + "_x000D_", theirs], spill
        return [ours], [theirs], spill

    def _row_less_ending(self, lines: list[str], when: datetime, slug: str) -> None:
        """How a post without an export row ends: mostly plain text, else CSV or row debris."""
        rng = self.rng
        ending = rng.choices(
            ("text", "url_slug_only", "quote_line", "quote_glued", "html_attribute"),
            (
                1 - P_URL_SLUG_ONLY - P_END_QUOTE_LINE - P_END_QUOTE_GLUED - P_END_HTML_ATTRIBUTE,
                P_URL_SLUG_ONLY,
                P_END_QUOTE_LINE,
                P_END_QUOTE_GLUED,
                P_END_HTML_ATTRIBUTE,
            ),
        )[0]
        if ending == "url_slug_only":
            self.counts["rows.none"] -= 1
            self.counts["rows"] += 1
            self.counts["rows.url_slug_only"] += 1
            lines += ["", f"https://{DOMAIN}/{when:%Y/%m}/{slug}.html{slug}"]
        elif ending == "quote_line" or (ending == "quote_glued" and not lines[-1].strip()):
            self.counts["ends_with_csv_quote"] += 1
            lines += ["", '"']
        elif ending == "quote_glued":
            self.counts["ends_with_csv_quote"] += 1
            lines[-1] += '"'
        elif ending == "html_attribute":
            self.counts["ends_in_html_attribute"] += 1
            lines += ["", '<p style=""text-align: justify']


COUNT_KEYS = (
    "posts",
    "bytes",
    "blocks",
    *(f"blocks.{region}" for region in ("front_matter", "front_matter_body", "body", "export_row")),
    "blocks_sides_differ",
    "rows",
    *(f"rows.{layout}" for layout in (*LAYOUTS, "url_slug_only", "none")),
    "row_spills",
    "row_excerpts",
    "summer_dates",
    "tags_empty",
    "twins",
    "titles_mangled",
    "ends_with_csv_quote",
    "ends_in_html_attribute",
    "empty_bodies",
    "x000d_standalone",
    "x000d_end_of_line",
    "tabs",
    "soft_hyphens",
    "zero_width_spaces",
    "nfd_paragraphs",
)
SLICE = 1000  # posts per slice: each slice has its own Random, so slices can be written in parallel


def generate(out_dir: Path, n: int, seed: int, workers: int | None = None) -> dict[str, int]:
    """Write ``n`` synthetic posts into ``out_dir`` (created; must be empty) and return the counts.

    Keys: ``posts``, ``bytes``, ``blocks`` and ``blocks.<region>`` (the regions of the
    pipeline's conflicts.parquet), ``blocks_sides_differ``, ``rows`` and ``rows.<layout>``
    (the ``wp_row_parse`` values of posts.parquet, ``rows.none`` for posts without a row),
    ``row_spills``, ``row_excerpts``, ``summer_dates``, ``tags_empty``, ``twins``,
    ``x000d_standalone``, ``x000d_end_of_line`` and a few rarer defects.

    The archive is cut into slices of ``SLICE`` posts, each covering its own run of days
    and drawing from ``random.Random(f"{seed}/{slice}")``; sentences and authors come from
    ``random.Random(seed)``. The files depend only on ``(n, seed)``, not on ``workers``
    (processes; default one per core, never more than the slices).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     counts = generate(Path(tmp) / "raw", 50, 1)
    >>> counts["posts"], counts["rows"] + counts["rows.none"]
    (50, 50)
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} is not empty; generate into an empty folder")
    slices = -(-n // SLICE)
    days = max((END - START).days, slices)
    jobs = [
        (out_dir, seed, min(SLICE, n - k * SLICE), START + timedelta(days=days * k // slices), START + timedelta(days=days * (k + 1) // slices), k)
        for k in range(slices)
    ]
    processes = min(workers or os.cpu_count() or 1, slices)
    total: Counter[str] = Counter()
    if processes <= 1:
        for job in jobs:
            total.update(_write_slice(*job))
    else:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with multiprocessing.get_context(method).Pool(processes) as pool:
            for counts in pool.starmap(_write_slice, jobs, chunksize=1):
                total.update(counts)
    return {key: total[key] for key in COUNT_KEYS}


_SHARED: dict[int, _Shared] = {}


def _write_slice(out_dir: Path, seed: int, n: int, first_day: datetime, end_day: datetime, index: int) -> Counter[str]:
    shared = _SHARED.get(seed) or _SHARED.setdefault(seed, _Shared.draw(seed))
    generator = _Generator(shared, random.Random(f"{seed}/{index}"), n, first_day, end_day)
    while generator.written < n:
        generator.post(out_dir)
    return generator.total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.synthetic", description="Write a synthetic archive with the real one's defect mix.")
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="folder for the posts (created; must be empty)")
    parser.add_argument("--posts", type=int, default=998, help="number of posts (default: 998)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--workers", type=int, help="processes (default: one per core); the files do not depend on it")
    parser.add_argument("--manifest", type=Path, help="also write the counts to this JSON file (keep it out of OUT_DIR)")
    args = parser.parse_args(argv)
    try:
        counts = generate(args.out_dir, args.posts, args.seed, args.workers)
    except (FileExistsError, ValueError) as err:
        print(f"synthetic: error: {err}", file=sys.stderr)
        return 2
    text = json.dumps({"seed": args.seed, **counts}, indent=2) + "\n"
    if args.manifest:
        args.manifest.write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
