"""A cached rerun patches the previous output only when that gives a full run's bytes.

Every test edits an archive after a cached run, reruns with the cache into the same folder,
then runs from scratch into another folder and compares the two trees byte for byte. The
edits that one post cannot make alone (a title, a removed file, a hand-edited output) must
be refused, with their reason, and the run must still equal a fresh one.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.config import Config, load_config
from pipeline.errors import PatchRefused
from pipeline.runner import run_pipeline
from tests.conftest import corpus_or_skip, same_tree

FRESH = load_config({})


def _cached(tmp_path: Path) -> Config:
    return load_config({"run": {"cache_dir": str(tmp_path / "cache")}})


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from benchmarks.synthetic import generate

    raw = tmp_path_factory.mktemp("synthetic") / "raw"
    generate(raw, 150, 11)
    return raw


def _rerun(raw: Path, tmp_path: Path, label: str) -> tuple[dict[str, int], list[str], list[str]]:
    """A cached rerun into ``out``, then a fresh run: (stats, notes, files that differ).
    The notes leave out why a patch was not made in place (``_in_place`` tells)."""
    stats, notes = _in_place(raw, tmp_path)
    run_pipeline(raw, tmp_path / f"fresh-{label}", FRESH)
    return stats, notes, same_tree(tmp_path / "out", tmp_path / f"fresh-{label}")


def _in_place(raw: Path, tmp_path: Path) -> tuple[dict[str, int], list[str]]:
    """A cached rerun into ``out``: its stats, and its notes but for why it was not patched
    in place; ``stats["in_place"]`` says whether it was."""
    stats: dict[str, int] = {}
    notes: list[str] = []
    run_pipeline(raw, tmp_path / "out", _cached(tmp_path), stats=stats, notes=notes)
    return stats, [note for note in notes if not note.startswith("not in place: ")]


def _prepared(source: Path, tmp_path: Path) -> Path:
    raw = tmp_path / "raw"
    shutil.copytree(source, raw)
    notes: list[str] = []
    run_pipeline(raw, tmp_path / "out", _cached(tmp_path), notes=notes)
    assert notes == ["whole second pass: no log of a previous run into this folder, or the folder changed since"]
    return raw


def _append(text: str) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")

    return edit


def _insert(sentence: str) -> Callable[[Path], None]:
    """Add a paragraph at the top of the body: the trailing export row stays the last line."""

    def edit(path: Path) -> None:
        text = path.read_text(encoding="utf-8")
        end = text.index("\n---\n", 4) + 5
        path.write_text(f"{text[:end]}\n{sentence}\n{text[end:]}", encoding="utf-8")

    return edit


def _retitle(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"(?m)^title: .*$", "title: Un titre tout neuf", text, count=1), encoding="utf-8")


def _drop_export_row(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r'(?m)^"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d.*$', "", text), encoding="utf-8")


def _redate(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_text(re.sub(r"(?m)^date: (\d{4})", lambda m: f"date: {int(m[1]) - 1}", text, count=1), encoding="utf-8")


def test_nothing_changed_is_patched_and_rewrites_nothing(synthetic: Path, tmp_path: Path) -> None:
    raw = _prepared(synthetic, tmp_path)
    before = (tmp_path / "out" / "posts").stat().st_ino, sorted(p.stat().st_ino for p in (tmp_path / "out" / "posts").iterdir())
    stats, notes, differ = _rerun(raw, tmp_path, "same")
    assert (stats, notes, differ) == ({"cache_hits": 150, "patched": 0, "in_place": 1}, [], [])
    # The Markdown files are the previous ones, left where they are, not written again.
    assert sorted(p.stat().st_ino for p in (tmp_path / "out" / "posts").iterdir()) == before[1]


@pytest.mark.parametrize("position", [0, 37, 149])
def test_a_body_edit_is_patched_and_equals_a_full_run(synthetic: Path, tmp_path: Path, position: int) -> None:
    raw = _prepared(synthetic, tmp_path)
    _insert("Une phrase de plus, sans lien.")(sorted(raw.iterdir())[position])
    before = {path: (path.stat().st_ino, path.read_bytes()) for path in sorted((tmp_path / "out").rglob("*")) if path.is_file()}
    stats, notes, differ = _rerun(raw, tmp_path, "body")
    assert (stats.get("patched"), stats.get("in_place"), notes, differ) == (1, 1, [], [])
    # A file whose bytes did not change is the previous file, not written again.
    kept = {path.relative_to(tmp_path / "out").as_posix() for path, (inode, _) in before.items() if path.stat().st_ino == inode}
    same = {path.relative_to(tmp_path / "out").as_posix() for path, (_, data) in before.items() if path.read_bytes() == data}
    assert kept == same
    assert {"links.parquet", "quarantine.parquet", "authors.parquet"} <= kept
    assert "posts.parquet" not in kept


def test_a_new_internal_link_is_patched_and_resolved(synthetic: Path, tmp_path: Path) -> None:
    raw = _prepared(synthetic, tmp_path)
    posts = pq.read_table(tmp_path / "out" / "posts.parquet", columns=["old_paths", "url", "duplicate_of"]).to_pylist()
    target = next(post for post in posts[5:] if post["duplicate_of"] is None and post["old_paths"])
    _insert(f"Voir aussi [ce billet](https://example.org{target['old_paths'][0]}).")(sorted(raw.iterdir())[80])
    stats, notes, differ = _rerun(raw, tmp_path, "link")
    assert (stats.get("patched"), notes, differ) == (1, [], [])
    links = pq.read_table(tmp_path / "out" / "links.parquet").to_pylist()
    assert any(link["new_target"] == target["url"] and link["source_path"] == sorted(raw.iterdir())[80].name for link in links)


def test_successive_patches_stay_equal_to_full_runs(synthetic: Path, tmp_path: Path) -> None:
    raw = _prepared(synthetic, tmp_path)
    for step, (position, edit) in enumerate([(3, _insert("Étape 0.")), (90, _retitle), (3, _insert("Étape 2.")), (110, _insert("Étape 3."))]):
        edit(sorted(raw.iterdir())[position])
        stats, notes, differ = _rerun(raw, tmp_path, f"step{step}")
        assert (stats.get("patched"), notes, differ) == (1, [], []), step


def test_a_removed_export_row_stays_local_and_is_patched(synthetic: Path, tmp_path: Path) -> None:
    """Its author, status and dates change, but not its URL: the other posts are untouched."""
    raw = _prepared(synthetic, tmp_path)
    posts = pq.read_table(tmp_path / "out" / "posts.parquet", columns=["source_path", "wp_row_parse"]).to_pylist()
    edited = next(post["source_path"] for post in posts if post["wp_row_parse"] == "quoted_line_start")
    _drop_export_row(raw / edited)
    stats, notes, differ = _rerun(raw, tmp_path, "row")
    assert (stats.get("patched"), notes, differ) == (1, [], [])
    after = pq.read_table(tmp_path / "out" / "posts.parquet", columns=["source_path", "wp_row_parse"]).to_pylist()
    assert next(post["wp_row_parse"] for post in after if post["source_path"] == edited) == "none"


def test_an_empty_draft_that_gets_text_is_refused_and_still_equals_a_full_run(synthetic: Path, tmp_path: Path) -> None:
    """Published now, it claims redirects that later posts' claims depend on."""
    raw = _prepared(synthetic, tmp_path)
    posts = pq.read_table(tmp_path / "out" / "posts.parquet", columns=["source_path", "problems"]).to_pylist()
    _insert("Enfin du texte.")(raw / next(post["source_path"] for post in posts if "empty_post" in post["problems"]))
    stats, notes, differ = _rerun(raw, tmp_path, "claims")
    assert "patched" not in stats
    assert len(notes) == 1 and "now wants another file name or other old URLs" in notes[0]
    assert differ == []


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (_redate, "a changed post changes the site index (slug, date, old URL, twin or link host)"),
        (Path.unlink, "inputs were added or removed"),
        (lambda path: shutil.copy(path, path.with_name("2099-01-01-copie.md")), "inputs were added or removed"),
        (lambda path: path.write_bytes(b"\xff\xfe\x00 not text"), "went into or out of quarantine"),
    ],
    ids=["date", "removed", "added", "quarantined"],
)
def test_an_edit_that_reaches_other_posts_is_refused_and_still_equals_a_full_run(
    synthetic: Path, tmp_path: Path, edit: Callable[[Path], object], reason: str
) -> None:
    raw = _prepared(synthetic, tmp_path)
    edit(sorted(raw.iterdir())[42])
    stats, notes, differ = _rerun(raw, tmp_path, "refused")
    assert "patched" not in stats
    assert len(notes) == 1 and reason in notes[0]
    assert differ == []


def test_a_hand_edited_output_is_not_patched_but_rebuilt(synthetic: Path, tmp_path: Path) -> None:
    raw = _prepared(synthetic, tmp_path)
    _append("\nA hand edit in the output.\n")(next((tmp_path / "out" / "posts").iterdir()))
    stats, notes, differ = _rerun(raw, tmp_path, "hand")
    assert "patched" not in stats
    assert notes == ["whole second pass: no log of a previous run into this folder, or the folder changed since"]
    assert differ == []


@pytest.mark.parametrize("damage", ["truncated in the entries", "truncated in the posts", "grown"])
def test_a_run_log_of_another_size_is_not_patched_but_rebuilt(synthetic: Path, tmp_path: Path, damage: str) -> None:
    """The edited post's batch is the first: a patch in place reads no other, and would not
    see the last one cut short; the records file's size, which the log keeps, tells."""
    raw = _prepared(synthetic, tmp_path)
    records = next((tmp_path / "cache" / "runs").glob("*.records"))
    data = records.read_bytes()
    damaged = {"truncated in the entries": data[: len(data) // 10], "truncated in the posts": data[:-100], "grown": data + b"\0"}[damage]
    records.write_bytes(damaged)
    _insert("Une phrase de plus.")(sorted(raw.iterdir())[20])
    stats, notes, differ = _rerun(raw, tmp_path, "damaged")
    assert "patched" not in stats
    assert notes == ["whole second pass: the run log's records are unreadable (the file is not the size the log wrote)"]
    assert differ == []


@pytest.mark.parametrize("damage", ["end mark overwritten", "last posts overwritten"])
def test_a_run_log_damaged_in_place_is_not_patched_but_rebuilt(synthetic: Path, tmp_path: Path, damage: str) -> None:
    """Bytes altered, size kept: a patch that reads them sees it. Without the kept index the
    patch is the slower one, which reads the entries and every post's record."""
    raw = _prepared(synthetic, tmp_path)
    records = next((tmp_path / "cache" / "runs").glob("*.records"))
    data = records.read_bytes()
    end_mark = pickle.dumps(b"", protocol=pickle.HIGHEST_PROTOCOL)
    assert data.count(end_mark) == 1  # between the index's entries and the posts
    at = data.index(end_mark) if damage == "end mark overwritten" else len(data) - 100
    records.write_bytes(data[:at] + b"\0" * 100 + data[at + 100 :])
    next((tmp_path / "cache" / "runs").glob("*.index.sqlite")).unlink()
    _insert("Une phrase de plus.")(sorted(raw.iterdir())[20])
    stats, notes, differ = _rerun(raw, tmp_path, "damaged")
    assert "patched" not in stats
    assert len(notes) == 1 and notes[0].startswith("whole second pass: the run log's records are unreadable ("), notes
    assert "not the size" not in notes[0]
    assert differ == []


def test_other_params_are_not_patched(synthetic: Path, tmp_path: Path) -> None:
    raw = _prepared(synthetic, tmp_path)
    theirs = load_config({"run": {"cache_dir": str(tmp_path / "cache")}, "resolve": {"side": "theirs"}})
    notes: list[str] = []
    run_pipeline(raw, tmp_path / "out", theirs, notes=notes)
    assert notes == ["whole second pass: the code or the params changed since the previous run"]
    run_pipeline(raw, tmp_path / "fresh", load_config({"resolve": {"side": "theirs"}}))
    assert same_tree(tmp_path / "out", tmp_path / "fresh") == []


def test_a_body_edit_of_the_real_archive_is_patched(tmp_path: Path) -> None:
    raw = _prepared(corpus_or_skip(), tmp_path)
    edited = raw / "2011-09-08-les-transports-du-futur-resumons-nous-en-13-notes-de-synthese.md"
    _insert("Une phrase de plus.")(edited)
    stats, notes, differ = _rerun(raw, tmp_path, "corpus")
    assert (stats.get("patched"), stats.get("in_place"), notes, differ) == (1, 1, [], [])


def test_row_groups_of_a_patch_are_cut_where_a_full_run_cuts_them(synthetic: Path, tmp_path: Path) -> None:
    """Row groups of 7 rows: many groups per table, fresh posts at the start, middle and end."""
    small = {"export": {"batch_size": 7}}
    cached = load_config({**small, "run": {"cache_dir": str(tmp_path / "cache")}})
    raw = tmp_path / "raw"
    shutil.copytree(synthetic, raw)
    run_pipeline(raw, tmp_path / "out", cached)
    for step, positions in enumerate([(0,), (75, 149), (1, 2, 148)]):
        for position in positions:
            _insert(f"Étape {step}.")(sorted(raw.iterdir())[position])
        stats: dict[str, int] = {}
        run_pipeline(raw, tmp_path / "out", cached, stats=stats)
        run_pipeline(raw, tmp_path / f"fresh{step}", load_config(small))
        assert (stats.get("patched"), stats.get("in_place")) == (len(positions), 1)
        assert same_tree(tmp_path / "out", tmp_path / f"fresh{step}") == [], step
    assert pq.ParquetFile(tmp_path / "out" / "posts.parquet").num_row_groups > 10


@pytest.mark.parametrize("edit", ["emptied", "grown"])
def test_an_input_that_was_not_read_is_reworked_and_equals_a_full_run(synthetic: Path, tmp_path: Path, edit: str) -> None:
    """Unread inputs have no bytes to key on: a too-large file emptied or grown must not keep its old reason."""
    raw = tmp_path / "raw"
    shutil.copytree(synthetic, raw)
    largest = max(raw.iterdir(), key=lambda path: path.stat().st_size)
    limit = {"resolve": {"max_bytes": largest.stat().st_size - 1}}
    cached = load_config({**limit, "run": {"cache_dir": str(tmp_path / "cache")}})
    run_pipeline(raw, tmp_path / "out", cached)
    largest.write_text("" if edit == "emptied" else largest.read_text(encoding="utf-8") + "\nEncore plus long.\n", encoding="utf-8")
    stats: dict[str, int] = {}
    run_pipeline(raw, tmp_path / "out", cached, stats=stats)
    run_pipeline(raw, tmp_path / "fresh", load_config(limit))
    assert stats.get("patched") == 1
    assert same_tree(tmp_path / "out", tmp_path / "fresh") == []


def test_a_run_that_fails_in_its_second_pass_leaves_no_temporary_log(synthetic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.io

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(pipeline.io, "claim_redirects", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        run_pipeline(synthetic, tmp_path / "out", _cached(tmp_path))
    assert list((tmp_path / "cache" / "runs").iterdir()) == []
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.tmp").exists()


def test_a_spill_the_disk_refuses_at_abandon_still_leaves_nothing(tmp_path: Path) -> None:
    """The spill's buffer holds posts not yet written; closing it on a full disk raises
    again, and the temporary folder and the log's temporary file must go all the same."""
    import errno
    import io

    from pipeline.io import Exporter, RunLog

    class FullDisk(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    out, cache = tmp_path / "out", tmp_path / "cache"
    exporter = Exporter(out, FRESH, log=RunLog(cache, out, "salt"))
    exporter.spill.close()
    exporter.spill = io.BufferedWriter(FullDisk(), buffer_size=1 << 20)
    exporter.spill.write(b"a post not yet written")
    exporter.abandon()
    assert not (tmp_path / ".out.tmp").exists() and not out.exists()
    assert list((cache / "runs").iterdir()) == []


def test_an_interrupted_patch_leaves_no_temporary_file_in_the_folder(synthetic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Interrupted while it compares its files with the folder's (the last step before the
    folder changes), a patch in place takes its temporary files away; the next run patches."""
    import pipeline.io

    raw = _prepared(synthetic, tmp_path)
    _insert("Une phrase de plus.")(sorted(raw.iterdir())[20])

    def interrupted(left: Path, right: Path) -> bool:
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(pipeline.io, "same_bytes", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_pipeline(raw, tmp_path / "out", _cached(tmp_path))
    assert [path.name for path in (tmp_path / "out").rglob("*") if ".patch." in path.name] == []
    stats, notes, differ = _rerun(raw, tmp_path, "interrupted")
    assert (stats.get("patched"), stats.get("in_place"), notes, differ) == (1, 1, [], [])


def _settled_stamps(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files of a test are seconds old: trust their stamps at once, as a rerun would minutes later."""
    import pipeline.io

    monkeypatch.setattr(pipeline.io, "STAMP_MARGIN_NS", 0)


def test_inputs_whose_stamp_is_unchanged_are_not_read(synthetic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.runner
    from pipeline.io import read_doc as real_read_doc

    _settled_stamps(monkeypatch)
    raw = _prepared(synthetic, tmp_path)
    edited = sorted(raw.iterdir())[42]
    _insert("Une phrase de plus.")(edited)
    read: list[str] = []

    def counting_read_doc(raw_dir: Path, relative: str, max_bytes: int) -> object:
        read.append(relative)
        return real_read_doc(raw_dir, relative, max_bytes)

    monkeypatch.setattr(pipeline.runner, "read_doc", counting_read_doc)
    stats: dict[str, int] = {}
    run_pipeline(raw, tmp_path / "out", _cached(tmp_path), stats=stats)
    assert (read, stats) == ([edited.name], {"cache_hits": 149, "patched": 1, "in_place": 1})
    run_pipeline(raw, tmp_path / "fresh", FRESH)
    assert same_tree(tmp_path / "out", tmp_path / "fresh") == []


def test_an_edit_that_keeps_size_and_mtime_is_still_seen(synthetic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stamp holds the ctime, which no tool can set back: restoring the mtime hides nothing."""
    _settled_stamps(monkeypatch)
    raw = _prepared(synthetic, tmp_path)
    edited = sorted(raw.iterdir())[7]
    before = edited.stat()
    text = edited.read_text(encoding="utf-8")
    end = text.index("\n---\n", 4) + 5
    edited.write_text(text[:end] + text[end:].replace("e", "a", 1), encoding="utf-8")
    os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (edited.stat().st_size, edited.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    stats, notes, differ = _rerun(raw, tmp_path, "same-size")
    assert (stats.get("patched"), notes, differ) == (1, [], [])


def test_a_log_copied_batch_by_batch_still_patches_right(synthetic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 16 records: a rerun copies the batches without a changed post and pickles the
    others again; the next reruns read that mixed log."""
    import pipeline.io

    monkeypatch.setattr(pipeline.io, "LOG_BATCH", 16)
    raw = _prepared(synthetic, tmp_path)
    for step, position in enumerate([40, 41, 149, 0]):
        _insert(f"Étape {step}.")(sorted(raw.iterdir())[position])
        stats, notes, differ = _rerun(raw, tmp_path, f"batch{step}")
        assert (stats.get("patched"), notes, differ) == (1, [], []), step


def test_a_patched_rerun_does_not_import_pyarrow_compute(synthetic: Path, tmp_path: Path) -> None:
    """Dropping a changed post's old rows takes slices, not Table.filter, which would import
    pyarrow.compute (57 to 85 ms, a tenth of a patched rerun of the archive)."""
    raw = _prepared(synthetic, tmp_path)
    _insert("Une phrase de plus, sans lien.")(sorted(raw.iterdir())[40])
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pipeline.config import load_config\n"
        "from pipeline.runner import run_pipeline\n"
        "stats = {}\n"
        f"config = load_config({{'run': {{'cache_dir': {str(tmp_path / 'cache')!r}}}}})\n"
        f"run_pipeline(Path({str(raw)!r}), Path({str(tmp_path / 'out')!r}), config, stats=stats)\n"
        "print(stats.get('patched'), 'pyarrow.compute' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["1", "False"]
    run_pipeline(raw, tmp_path / "fresh", FRESH)
    assert same_tree(tmp_path / "out", tmp_path / "fresh") == []


def test_patches_in_place_keep_the_log_equal_to_a_full_runs(synthetic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 16 posts: changes in several batches, twice over; the log a patched run
    leaves (posts, entries, records) is the one a full cached run of the same inputs writes."""
    import pipeline.io
    import pipeline.runner
    from pipeline.io import read_run_log

    monkeypatch.setattr(pipeline.io, "LOG_BATCH", 16)
    raw = _prepared(synthetic, tmp_path)
    for step, positions in enumerate([(1, 75, 148), (2, 149)]):
        for position in positions:
            _insert(f"Étape {step}.")(sorted(raw.iterdir())[position])
        stats, notes, differ = _rerun(raw, tmp_path, f"step{step}")
        assert (stats.get("patched"), stats.get("in_place"), notes, differ) == (len(positions), 1, [], []), step
    # Then a patch from the log, which reads the batches and entries the patches in place left.
    with monkeypatch.context() as patched_here:
        patched_here.setattr(pipeline.runner, "patch_in_place", _refuse_in_place)
        _insert("Étape 2.")(sorted(raw.iterdir())[75])
        stats, notes, differ = _rerun(raw, tmp_path, "step2")
        assert (stats.get("patched"), stats.get("in_place"), notes, differ) == (1, None, [], [])
    _insert("Étape 3.")(sorted(raw.iterdir())[148])
    stats, notes, differ = _rerun(raw, tmp_path, "step3")
    assert (stats.get("patched"), stats.get("in_place"), notes, differ) == (1, 1, [], [])
    run_pipeline(raw, tmp_path / "full", load_config({"run": {"cache_dir": str(tmp_path / "other-cache")}}))
    patched = read_run_log(tmp_path / "cache", tmp_path / "out")
    full = read_run_log(tmp_path / "other-cache", tmp_path / "full")
    assert patched is not None and full is not None
    assert patched.posts == full.posts
    assert [record for record, _, _ in patched.records()] == [record for record, _, _ in full.records()]
    assert list(patched.index()[1]) == list(full.index()[1])
    assert patched.index()[0] == full.index()[0]


def _refuse_in_place(*args: object) -> dict[str, object]:
    raise PatchRefused("refused by the test")


def test_random_edits_of_the_real_archive_equal_full_runs(tmp_path: Path) -> None:
    """Six seeded edits of the archive, one rerun each (a sentence inserted, a character
    typed, a tag added, an internal link appended): every rerun equals a fresh full run,
    however it patched. 33 of 40 such edits were patched in place when this was written."""
    import random

    raw = _prepared(corpus_or_skip(), tmp_path)
    files = sorted(raw.iterdir())
    rng = random.Random(8)
    edits: list[Callable[[Path], object]] = [
        _insert("Une phrase ajoutée."),
        lambda path: path.write_text((text := path.read_text(encoding="utf-8"))[: len(text) * 3 // 4] + "x" + text[len(text) * 3 // 4 :], encoding="utf-8"),
        lambda path: path.write_text(re.sub(r"(?m)^tags: \[", "tags: ['nouveau', ", path.read_text(encoding="utf-8"), count=1), encoding="utf-8"),
        _append(f"\nVoir [ceci](http://www.transportsdufutur.typepad.fr/{files[500].name[:4]}/{files[500].name[5:7]}/{files[500].name[11:-3]}.html).\n"),
    ]
    in_place = 0
    for step in range(6):
        rng.choice(edits)(rng.choice(files))
        stats, _, differ = _rerun(raw, tmp_path, f"step{step}")
        assert differ == [], step
        in_place += stats.get("in_place", 0)
    assert in_place >= 3


def _post(title: str, date: str, body: str, extra: str = "") -> str:
    return f"---\nlayout: post\ntitle: \"{title}\"\ndate: {date}\ncategories: []\ntags: ['velo']\n{extra}---\n{body}\n"


def _small_archive(tmp_path: Path, extra: dict[str, str]) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    for i in range(20):  # two changed posts are within an eighth
        (raw / f"2014-03-{i + 1:02d}-post-{i}.md").write_text(_post(f"Titre {i}", f"2014-03-{i + 1:02d} 10:00:00 +0100", f"Corps {i}."), encoding="utf-8")
    for name, text in extra.items():
        (raw / name).write_text(text, encoding="utf-8")
    run_pipeline(raw, tmp_path / "out", _cached(tmp_path))
    return raw


def test_two_posts_made_twins_by_one_rerun_are_not_patched_in_place(tmp_path: Path) -> None:
    """Each one's new twin key is new to the kept index; only together are they twins (found in review)."""
    date = "2014-07-05 10:00:00 +0200"
    raw = _small_archive(tmp_path, {"2014-07-05-alpha.md": _post("Alpha", date, "Premier."), "2014-07-05-beta.md": _post("Beta", date, "Second.")})
    for name in ("2014-07-05-alpha.md", "2014-07-05-beta.md"):
        (raw / name).write_text(_post("Même titre", date, "Même corps."), encoding="utf-8")
    stats, notes = _in_place(raw, tmp_path)
    run_pipeline(raw, tmp_path / "fresh", FRESH)
    assert ("in_place" not in stats, notes, same_tree(tmp_path / "out", tmp_path / "fresh")) == (
        True,
        ["whole second pass: a changed post changes the site index (slug, date, old URL, twin or link host)"],
        [],
    )
    merged = pq.read_table(tmp_path / "out" / "posts.parquet", columns=["duplicate_of"]).column(0).to_pylist()
    assert merged.count("2014-07-05-beta.md") == 1


def test_a_post_whose_file_name_takes_255_bytes_is_patched_in_place(tmp_path: Path) -> None:
    """A temporary name built from the file name would be too long (found in review)."""
    slug = "é" * 40 + "a" * 160  # the slug cap is 200 characters: 240 bytes here
    raw = _small_archive(tmp_path, {"2014-07-05-long.md": _post("Long", "2014-07-05 10:00:00 +0200", "Premier.", f"slug: {slug}\n")})
    assert max(len(p.name.encode()) for p in (tmp_path / "out" / "posts").iterdir()) > 250
    (raw / "2014-07-05-long.md").write_text(_post("Long", "2014-07-05 10:00:00 +0200", "Modifié.", f"slug: {slug}\n"), encoding="utf-8")
    stats, notes, differ = _rerun(raw, tmp_path, "long")
    assert (stats.get("in_place"), notes, differ) == (1, [], [])
    assert not [p for p in (tmp_path / "out").rglob(".*")]  # no temporary file left


def test_a_link_to_a_redated_posts_old_address_redirects_it_and_reruns_equal_full_runs(tmp_path: Path) -> None:
    """Heuristic ``linked_old_urls``: the link is the only trace of the address the post had
    before it was re-dated; adding or removing it changes another post's redirects, which a
    patch in place cannot do, while a link that resolves exactly is still patched in place."""
    moved = "2015-07-21-vincent-musk.md"
    raw = _small_archive(tmp_path, {moved: _post("Vincent Musk", "2015-07-21 16:35:26 +0100", "Texte.")})

    def redirects() -> tuple[list[str], list[str]]:
        rows = pq.read_table(tmp_path / "out" / "posts.parquet", columns=["source_path", "old_paths"]).to_pylist()
        front = (tmp_path / "out" / "posts" / moved).read_text(encoding="utf-8")
        return next(row["old_paths"] for row in rows if row["source_path"] == moved), [line for line in front.splitlines() if line.startswith("- /")]

    assert redirects() == (["/2015/07/vincent-musk.html"], ["- /2015/07/vincent-musk.html"])
    linking = raw / "2014-03-04-post-3.md"
    linking.write_text(_post("Titre 3", "2014-03-04 10:00:00 +0100", "Voir [Vincent](/2014/12/vincent-musk.html)."), encoding="utf-8")
    stats, notes, differ = _rerun(raw, tmp_path, "linked")
    assert ("in_place" not in stats, differ) == (True, [])
    assert redirects() == (
        ["/2014/12/vincent-musk.html", "/2015/07/vincent-musk.html"],
        ["- /2014/12/vincent-musk.html", "- /2015/07/vincent-musk.html"],
    )
    assert "/2014/12/vincent-musk.html,/2015/07/21/vincent-musk/" in (tmp_path / "out" / "redirects.csv").read_text(encoding="utf-8")
    # A link that resolves exactly changes no other post: patched in place.
    both = "Voir [Vincent](/2014/12/vincent-musk.html) et [5](/2014/03/post-5.html)."
    linking.write_text(_post("Titre 3", "2014-03-04 10:00:00 +0100", both), encoding="utf-8")
    stats, notes, differ = _rerun(raw, tmp_path, "exact")
    assert (stats.get("in_place"), notes, differ) == (1, [], [])
    # Without the link, the old address goes again.
    linking.write_text(_post("Titre 3", "2014-03-04 10:00:00 +0100", "Voir [5](/2014/03/post-5.html)."), encoding="utf-8")
    stats, notes, differ = _rerun(raw, tmp_path, "unlinked")
    assert ("in_place" not in stats, differ) == (True, [])
    assert redirects() == (["/2015/07/vincent-musk.html"], ["- /2015/07/vincent-musk.html"])
