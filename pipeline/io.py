"""The filesystem edge: discovering inputs, reading them, atomic writes, the run's two
passes over the outputs, the result cache and the run log.

Nothing else in the package opens a file but ``pipeline.tables``, this edge's Parquet side.
Every output folder is written under a temporary name beside its final place and renamed
into place only when complete.

``pipeline.tables`` (pyarrow) is imported by the functions that write or read a
table, not at the top of this module: a run forks its first-pass workers, which use none
of it, before the main process has imported it (see ``runner.run_pipeline``).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import pickle
import select
import shutil
import signal
import stat
import struct
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from functools import cache, partial
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import yaml

from pipeline.config import Config
from pipeline.errors import AccountingError, ConfigError, InputError, OutputInvalid, PatchRefused
from pipeline.frozen import evolve
from pipeline.ondisk import DiskMap, DiskSet, StringMap, connect
from pipeline.outputs import FinalPost, Post, Tally, build_post, claim_file_name, claim_file_names, finish_post, light_post, table_rows, with_claimed_name
from pipeline.problems import Problem, problem
from pipeline.record import Doc, slim_doc
from pipeline.site import Entry, SiteIndex
from pipeline.vocabulary import needs_vocabulary

if TYPE_CHECKING:
    import pyarrow as pa

    from pipeline.tables import Finished


def load_params(path: Path) -> Any:
    """Read params.yaml (safe YAML); a missing or broken file is a ConfigError."""
    try:
        # libyaml's parser, as the package uses elsewhere: 7 ms less than PyYAML's own, which
        # a watch (``pipeline run --watch``) pays at each rerun.
        return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    except FileNotFoundError:
        raise ConfigError(str(path), "params file not found; pass --params FILE or create params.yaml") from None
    except yaml.YAMLError as err:
        raise ConfigError(str(path), f"params file is not valid YAML: {err}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(str(path), f"params file is not UTF-8 (byte {err.start}); save it as UTF-8") from None
    except OSError as err:
        raise ConfigError(str(path), f"cannot read the params file ({err.strerror}); pass --params FILE") from None


def read_input(path: Path) -> bytes:
    """One input file's bytes (for ``pipeline explain``); a missing file is an InputError."""
    try:
        return path.read_bytes()
    except OSError as err:
        raise InputError(str(path), f"cannot read the file ({err.strerror})") from None


def discover(raw_dir: Path) -> list[str]:
    """Input files under ``raw_dir`` as sorted relative POSIX paths (dotfiles are not inputs)."""
    if not raw_dir.is_dir():
        raise InputError(str(raw_dir), "raw folder not found; pass --raw DIR")
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(raw_dir, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        # One relative prefix per folder: a Path per file cost 30 µs, 0.3 s at 10,000 files.
        folder = Path(dirpath).relative_to(raw_dir).as_posix()
        prefix = "" if folder == "." else f"{folder}/"
        found.extend(prefix + name for name in filenames if not name.startswith("."))
    return sorted(found)


def printable_path(relative: str) -> str:
    r"""The name an input goes by in every output: ``relative`` itself, unless the file system
    gave bytes that are not UTF-8 (``os.fsdecode`` keeps them as lone surrogates, which no
    table, JSON or SQLite column can hold); those bytes are shown as ``\xNN``.

    >>> printable_path(os.fsdecode(b"caf\xe9.md"))
    'caf\\xe9.md'
    """
    if relative.isascii():
        return relative
    return relative.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@contextmanager
def reading_ahead(raw_dir: Path, relatives: list[str], ahead: int, hint: Callable[[str], None] | None = None) -> Iterator[Callable[[], None]]:
    """While the inputs are read in ``relatives``' order, ask the kernel to fetch the next
    ``ahead`` of them into its page cache (``hint_read``), from a thread; yields the call
    that says one more input was read, which lets the hints go one further.

    Inputs fresh from a disk are read one small file at a time by workers that wait on
    each read; hinted, the kernel fetches them while the workers compute. With the page
    cache dropped before each run (``benchmarks/cold_inputs.py``): 10,000 synthetic posts
    in 5.54 s against 6.39 s without hints, as fast as from a warm cache (5.44 s); 100,000
    in 58.37 s against 69.37 s. The hints stay ``ahead`` inputs ahead, not the whole
    archive: the kernel may drop cached pages that wait unused (this machine's drops them
    within a minute or two), and a million posts are 5 GB.

    With ``ahead`` 0 (``run.read_ahead: 0``) nothing is hinted and no thread starts:

    >>> hinted = []
    >>> with reading_ahead(Path("raw"), ["a.md", "b.md"], 0, hinted.append) as passed:
    ...     passed()
    >>> hinted
    []
    """
    hint = hint or (hint_read if hasattr(os, "posix_fadvise") else None)
    if ahead <= 0 or hint is None or not relatives:
        yield _nothing
        return
    room = threading.Semaphore(ahead)
    stop = threading.Event()

    def run(folder: str, names: list[str], hint: Callable[[str], None]) -> None:
        for name in names:
            room.acquire()
            if stop.is_set():
                return
            hint(os.path.join(folder, name))

    thread = threading.Thread(target=run, args=(str(raw_dir), relatives, hint), name="read-ahead", daemon=True)
    thread.start()
    try:
        yield room.release
    finally:
        stop.set()
        room.release()
        thread.join()


def _nothing() -> None:
    return None


def hint_read(path: str) -> None:
    """Ask the kernel to start reading the file at ``path`` into its page cache, without
    waiting for it (``POSIX_FADV_WILLNEED``). Only a hint: a file that cannot be opened is
    left to the reader, which reports it. Opened non-blocking, so that a FIFO among the
    inputs does not hold the hints up.

    >>> hint_read("/no/such/file") is None
    True
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_doc(raw_dir: Path, relative: str, max_bytes: int) -> Doc:
    """Read one input as a Doc; an input that cannot be read becomes a Doc with a fatal problem.

    ``relative`` is the name ``discover`` listed; the Doc goes by its ``printable_path``. A
    file whose name is not UTF-8 is read (its bytes go to quarantine) but not cleaned: its
    slug and URL would come from a name no output can spell.
    """
    shown = printable_path(relative)
    if shown != relative:
        doc = _read_doc(raw_dir, relative, shown, max_bytes)
        name = problem(
            "file_name_not_utf8",
            "the file name is not valid UTF-8 (its other bytes are shown as \\xNN); rename it in UTF-8, e.g. convmv -f latin1 -t utf8, and run again",
        )
        return evolve(doc, problems=(*doc.problems, name))
    return _read_doc(raw_dir, relative, relative, max_bytes)


def _read_doc(raw_dir: Path, relative: str, shown: str, max_bytes: int) -> Doc:
    path = os.path.join(raw_dir, relative)  # plain strings and one lstat: this runs for every input
    try:
        status = os.lstat(path)
        size = status.st_size
        if stat.S_ISLNK(status.st_mode):
            target = Path(path).resolve()
            if not target.is_relative_to(raw_dir.resolve()):
                return refused_doc(shown, problem("symlink_outside", f"symbolic link to {target} outside the raw folder; copy the file in instead"))
            size = target.stat().st_size
        if size > max_bytes:
            return refused_doc(
                shown,
                problem("too_large", f"the file has {size} bytes, over resolve.max_bytes={max_bytes}; raise the limit if it is a real post"),
            )
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as err:
        return refused_doc(shown, problem("unreadable", f"cannot read the file ({err.strerror}); check its permissions"))
    return read_bytes_doc(shown, raw)


def stamp_inputs(raw_dir: Path, relatives: list[str]) -> dict[str, int]:
    """Each input's stamp: a hash of its size, mtime, ctime and inode, as git's index keeps them.

    A rerun takes an input whose stamp is unchanged for unchanged without reading it (about
    a fifth of a rerun's time at 100,000 posts). Taken before the inputs are read: a file
    changed between the stamp and the read gets a new stamp next time, so it is read again.
    No stamp, so always read: symbolic links (their target may change), and files changed in
    the last ``STAMP_MARGIN_NS`` (a write in the same clock tick as the stamp would not move it).

    >>> import tempfile; folder = Path(tempfile.mkdtemp()); _ = (folder / "a.md").write_text("x")
    >>> stamp_inputs(folder, ["a.md"])  # just written: not trusted yet
    {}
    """
    now = time.time_ns()
    stamps: dict[str, int] = {}
    for relative, status in _statuses(raw_dir, relatives):
        _stamp_into(stamps, relative, status, now)
    return stamps


def _stamp_into(stamps: dict[str, int], relative: str, status: os.stat_result, now: int) -> None:
    if stat.S_ISREG(status.st_mode) and max(status.st_mtime_ns, status.st_ctime_ns) < now - STAMP_MARGIN_NS:
        stamps[relative] = int.from_bytes(hashlib.blake2b(_stat_key(status), digest_size=8).digest(), "little")


@dataclass(frozen=True, eq=False)
class InputSnapshot:
    """What ``snapshot_inputs`` saw: a fingerprint to compare (two snapshots are equal when
    their fingerprints are), and the listing and stamps a run can take instead of walking
    the folder again (``relatives`` is None when the raw folder was missing)."""

    fingerprint: bytes
    relatives: list[str] | None
    stamps: dict[str, int]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InputSnapshot) and other.fingerprint == self.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)


def snapshot_inputs(raw_dir: Path, also: Iterable[Path] = (), hashes: dict[str, tuple[bytes, bytes]] | None = None) -> InputSnapshot:
    """A fingerprint of the inputs as the file system lists them, and of the files ``also``
    names (the params file): it moves when an input is added, removed, renamed or written.

    For ``pipeline run --watch``, which takes one at each look. Each file counts by its stat (size, mtime,
    ctime, inode). One changed in the last ``STAMP_MARGIN_NS`` also counts by a hash of its
    bytes, as a file system with coarse times (FAT's 2 s) may give a second write of the
    same size the same stat; ``hashes`` (relative path: stat, hash) keeps that hash while
    the stat holds, so that a file growing old does not move the fingerprint. A symbolic
    link counts by its target's stat too. A missing raw folder or file is a state like
    another, not an error. The same stats give the inputs' stamps (``stamp_inputs``), so a
    watch's rerun need not list and stat the folder again (0.9 s of a 100,000-post rerun).

    >>> import tempfile; folder = Path(tempfile.mkdtemp()); _ = (folder / "a.md").write_text("x")
    >>> before = snapshot_inputs(folder); _ = (folder / "b.md").write_text("y")
    >>> snapshot_inputs(folder) == before
    False
    """
    kept: dict[str, tuple[bytes, bytes]] = {}
    stamps: dict[str, int] = {}
    digest = hashlib.blake2b(digest_size=16)
    listed: list[str] | None
    try:
        listed = discover(raw_dir)
    except InputError:
        listed = None
        digest.update(b"\0no raw folder\0")
    now = time.time_ns()
    recent = now - STAMP_MARGIN_NS
    for relative, status in _statuses(raw_dir, listed or []):
        _stamp_into(stamps, relative, status, now)
        key = _stat_key(status)
        path = os.path.join(raw_dir, relative)
        with suppress(OSError):
            if stat.S_ISLNK(status.st_mode):
                status = os.stat(path)
                key += _stat_key(status)
            known = None if hashes is None else hashes.get(relative)
            if stat.S_ISREG(status.st_mode) and max(status.st_mtime_ns, status.st_ctime_ns) >= recent:
                with open(path, "rb") as handle:  # read again at every snapshot while recent: the stat may hide a write
                    known = (key, hashlib.file_digest(handle, "blake2b").digest())
            if known is not None and known[0] == key:
                kept[relative] = known
                key += known[1]
        digest.update(os.fsencode(relative) + b"\0" + key)
    if hashes is not None:  # only the hashes that still hold: a file written or removed drops its own
        hashes.clear()
        hashes.update(kept)
    for extra in also:
        with suppress(OSError):
            digest.update(os.fsencode(extra) + b"\0" + _stat_key(os.stat(extra)))
    return InputSnapshot(digest.digest(), listed, stamps)


def _statuses(raw_dir: Path, relatives: list[str]) -> Iterator[tuple[str, os.stat_result]]:
    """Each input's ``lstat``, relative to one open folder; a file gone meanwhile is skipped."""
    with suppress(OSError):
        folder = os.open(raw_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for relative in relatives:
                with suppress(OSError):
                    yield relative, os.stat(relative, dir_fd=folder, follow_symlinks=False)  # no path to join and walk
        finally:
            os.close(folder)


def _stat_key(status: os.stat_result) -> bytes:
    # What git's index compares to take a file for unchanged without reading it.
    return struct.pack("<4q", status.st_size, status.st_mtime_ns, status.st_ctime_ns, status.st_ino)


# inotify(7): what a watched folder reports. The noticed kinds are those that move a
# folder's listing or a file's stat, which is what ``snapshot_inputs`` fingerprints.
_IN_MODIFY, _IN_ATTRIB, _IN_CLOSE_WRITE = 0x2, 0x4, 0x8
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x40, 0x80, 0x100, 0x200
_IN_DELETE_SELF, _IN_MOVE_SELF, _IN_Q_OVERFLOW, _IN_IGNORED = 0x400, 0x800, 0x4000, 0x8000
_IN_ONLYDIR, _IN_ISDIR = 0x1000000, 0x40000000
_IN_NOTICED: Final = _IN_MODIFY | _IN_ATTRIB | _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE | _IN_DELETE_SELF | _IN_MOVE_SELF
_IN_EVENT: Final = struct.Struct("iIII")  # wd, mask, cookie, length of the name that follows


class InputNotices:
    """The kernel's notices of changes to the inputs (Linux's inotify), for ``pipeline run --watch``,
    which then need not poll to see a change (``watch.settled_changes``).

    Watched: the raw folder and every folder under it that ``discover`` enters (those made
    later as they appear, a folder's watch set before it is listed so that none made
    meanwhile is missed), and by their names only: the raw folder in its parent (removed,
    renamed or made again), each file ``also`` names (the params file) in its folder, and
    such a file's target if it is a symbolic link. A name that is not an input (a dotfile:
    an editor's swap or temporary file) is no notice. A notice says that something may have
    changed; the watch takes a snapshot to see what. ``reliable`` turns False for good when
    a folder cannot be watched (the user's limit, ``fs.inotify.max_user_watches``,
    reached): the watch then polls as it does without notices.
    """

    def __init__(self, fd: int, libc: Any, raw_dir: Path, also: Iterable[Path]) -> None:
        self._fd, self._libc, self._raw_dir = fd, libc, str(raw_dir)
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)
        self._watches: dict[int, tuple[bool, frozenset[str]]] = {}  # wd: (a folder of inputs; other names noticed)
        self._places = (raw_dir, *also)
        self._root: int | None = None
        self._walk = True  # the raw folder's tree is to be (re)watched before the next wait
        self.reliable = True
        self._watch_tree()

    @classmethod
    def open(cls, raw_dir: Path, also: Iterable[Path] = ()) -> InputNotices | None:
        """The notices, or None where the system gives none (not Linux, or no inotify
        instance left for this user) or cannot watch every folder."""
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
            libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, AttributeError):
            return None
        if fd < 0:
            return None
        try:
            notices = cls(fd, libc, raw_dir, also)
        except BaseException:
            os.close(fd)
            raise
        if not notices.reliable:
            notices.close()
            return None
        return notices

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> InputNotices:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def wait(self, timeout: float) -> bool:
        """True as soon as a notice comes, False if none came within ``timeout`` seconds.

        >>> import tempfile; folder = Path(tempfile.mkdtemp()); notices = InputNotices.open(folder)
        >>> _ = (folder / "a.md").write_text("x"); notices is None or notices.wait(1.0)  # None: not Linux
        True
        >>> _ = notices is None or notices.close()
        """
        if self._walk or self._root is None:  # a raw folder missing is looked for at each wait
            self._watch_tree()
        deadline = time.monotonic() + timeout
        while True:
            remaining = max(0.0, deadline - time.monotonic())
            if not self._poll.poll(remaining * 1000):
                return False
            if self._read():
                return True
            if remaining == 0.0:
                return False

    def _watch_tree(self) -> None:
        self._walk = False
        for folder, name in _named_places(self._places):  # resolved again: a link may point elsewhere now
            self._watch(folder, False, frozenset((name,)))
        # Each folder's watch before its listing: a folder made after the listing is told of.
        watched: set[int] = set()
        self._root = None
        folders = [self._raw_dir]
        while folders:
            folder = folders.pop()
            wd = self._watch(folder, True, frozenset())
            if wd is None:
                continue
            watched.add(wd)
            if folder == self._raw_dir:
                self._root = wd
            with suppress(OSError), os.scandir(folder) as entries:
                folders.extend(entry.path for entry in entries if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False))
        for wd, (inputs, names) in list(self._watches.items()):
            if inputs and wd not in watched:  # a folder moved out of the raw folder, or the old tree of a raw folder renamed away
                if names:
                    self._watches[wd] = (False, names)  # still a named place's
                else:
                    self._unwatch(wd)

    def _watch(self, path: str, inputs: bool, names: frozenset[str]) -> int | None:
        wd = int(self._libc.inotify_add_watch(self._fd, os.fsencode(path), _IN_NOTICED | _IN_ONLYDIR))
        if wd < 0:
            # A folder gone or replaced meanwhile is no loss, nor is an unreadable folder of
            # inputs (``discover`` skips it too); any other refusal is.
            harmless = (errno.ENOENT, errno.ENOTDIR, errno.EACCES) if inputs else (errno.ENOENT, errno.ENOTDIR)
            self.reliable = self.reliable and ctypes.get_errno() in harmless
            return None
        old_inputs, old_names = self._watches.get(wd, (False, frozenset()))
        self._watches[wd] = (inputs or old_inputs, names | old_names)  # the params file may sit in a raw folder
        return wd

    def _unwatch(self, wd: int) -> None:
        self._libc.inotify_rm_watch(self._fd, wd)
        _, names = self._watches.pop(wd)
        self._walk = self._walk or bool(names)  # it was a named place's too: watched again by name

    def _read(self) -> bool:
        noticed = False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return noticed
            offset = 0
            while offset < len(data):
                wd, mask, _, length = _IN_EVENT.unpack_from(data, offset)
                name = os.fsdecode(data[offset + _IN_EVENT.size : offset + _IN_EVENT.size + length].rstrip(b"\0"))
                offset += _IN_EVENT.size + length
                noticed = self._event(wd, mask, name) or noticed

    def _event(self, wd: int, mask: int, name: str) -> bool:
        if mask & _IN_Q_OVERFLOW:  # events were lost, folders made among them too
            self._walk = True
            return True
        if wd not in self._watches:
            return False
        inputs, names = self._watches[wd]
        if mask & _IN_IGNORED:  # the folder is gone, and its watch with it
            del self._watches[wd]
            self._walk = self._walk or bool(names) or wd == self._root  # a named place's: watch what holds its name now
            return True
        if wd == self._root and mask & _IN_MOVE_SELF:  # renamed away: the raw path names another folder, or none
            self._root = None
            self._walk = True
            return True
        if not inputs and mask & _IN_MOVE_SELF:  # a params file's folder renamed: its path names another, or none
            self._unwatch(wd)
            return True
        if name in names:
            if not inputs and mask & (_IN_CREATE | _IN_DELETE | _IN_MOVED_FROM | _IN_MOVED_TO):
                self._walk = True  # the raw folder or a params link made, removed or renamed: resolve it again
            return True
        if not inputs:
            return False
        if not name:  # the folder itself
            return True
        if name.startswith("."):  # not an input, nor a folder ``discover`` enters
            return False
        if mask & _IN_ISDIR and mask & (_IN_MOVED_FROM | _IN_CREATE | _IN_MOVED_TO | _IN_ATTRIB):
            self._walk = True  # a folder made, moved in or out, renamed or made readable: watch what is under the raw folder now
        return True


def _named_places(paths: Iterable[Path]) -> Iterator[tuple[str, str]]:
    """(folder, name) of each path, and of its target if it is a symbolic link."""
    for path in paths:
        for place in dict.fromkeys((os.path.abspath(path), os.path.realpath(path))):
            yield os.path.dirname(place), os.path.basename(place)


# File systems keep times in coarse ticks (a few ms on Linux, 2 s on FAT): a file changed
# this close to its stamp is read again next time rather than trusted.
STAMP_MARGIN_NS: Final = 3_000_000_000


def read_bytes_doc(relative: str, raw: bytes) -> Doc:
    """The Doc of an input's bytes, however they were read (a local file, fsspec, explain)."""
    return Doc(source_path=relative, sha256=hashlib.sha256(raw).hexdigest(), raw=raw)


def refused_doc(relative: str, reason: Problem) -> Doc:
    """The Doc of an input that was not read (too large, unreadable, a link outside): no bytes, one fatal problem.

    >>> refused_doc("a.md", problem("unreadable")).fatal.code
    'unreadable'
    """
    return Doc(source_path=relative, sha256=EMPTY_SHA256, raw=b"", problems=(reason,))


# The input hash of an input that was not read (and of an empty file).
EMPTY_SHA256: Final = hashlib.sha256(b"").hexdigest()


class AtomicDir:
    """A folder written under a temporary name and swapped into place by ``commit``.

    On Linux the swap is one ``renameat2(RENAME_EXCHANGE)`` call: at every instant the final
    name holds either the previous complete folder or the new complete one. Elsewhere it is
    two renames, and a run killed between them leaves the previous folder under
    ``.<name>.old``, which the next run puts back before it starts. Leftover temporary
    folders of a killed run are removed by the next run. This covers a process that dies or
    is killed; files are not fsynced, so a power cut is outside what it promises.
    """

    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = final.with_name(f".{final.name}.tmp")
        self.old = final.with_name(f".{final.name}.old")
        final.parent.mkdir(parents=True, exist_ok=True)
        if self.old.exists() and not final.exists():
            self.old.rename(final)
        for leftover in (self.tmp, self.old):
            if leftover.exists():
                shutil.rmtree(leftover)
        self.tmp.mkdir()

    def path(self, relative: str) -> Path:
        return self.tmp / relative

    def write_text(self, relative: str, text: str) -> None:
        target = self.tmp / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8", newline="\n")

    def write_lines(self, relative: str, lines: Iterable[str]) -> None:
        """A text file written as its lines come (each ending with its own newline)."""
        with (self.tmp / relative).open("w", encoding="utf-8", newline="\n") as handle:
            handle.writelines(lines)

    def commit(self) -> None:
        if self.final.exists() and _exchange(self.tmp, self.final):
            shutil.rmtree(self.tmp)
            return
        if self.final.exists():
            self.final.rename(self.old)
        self.tmp.rename(self.final)
        if self.old.exists():
            shutil.rmtree(self.old)

    def abandon(self) -> None:
        if self.tmp.exists():
            shutil.rmtree(self.tmp)


def create_file(path: str, text: str) -> None:
    """Create a file that must not exist yet (a post's Markdown: two posts never share a
    name, ``claim_file_name``), with plain ``os`` calls and no ``mkdir``.

    Called by the second pass's workers, each for the posts it renders, and by a patched
    rerun for its changed posts. On an idle machine the archive's 978 files take 27 ms
    (``Path.write_text`` with its ``mkdir`` took 83 to 450 ms); but on ext4 without a
    journal (this machine) the kernel scans past every inode freed in the last 30 s
    (``recently_deleted``): a run soon after a previous output was deleted paid 0.3 to
    0.9 s for them (``perf``).
    """
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(handle, text.encode("utf-8"))
    finally:
        os.close(handle)


_RENAME_EXCHANGE: Final = 2
_AT_FDCWD: Final = -100


def _exchange(left: Path, right: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    result = renameat2(_AT_FDCWD, os.fsencode(left), _AT_FDCWD, os.fsencode(right), _RENAME_EXCHANGE)
    return bool(result == 0)


def write_json_file(path: Path, data: Any) -> None:
    """Write JSON to ``path`` atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_file(path, json_text(data))


def write_text_file(path: Path, text: str) -> None:
    """Write UTF-8 text to ``path`` atomically (temporary file beside it, then rename)."""
    tmp = aside(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_pickle_file(path: Path, value: Any) -> None:
    """Pickle ``value`` to ``path`` atomically (temporary file beside it, then rename)."""
    tmp = aside(path)
    try:
        with tmp.open("wb") as handle:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def aside(path: Path) -> Path:
    """The temporary file this process writes ``path`` under before renaming it into place.

    >>> aside(Path("runs/a.pickle")).name == f".a.pickle.{os.getpid()}.tmp"
    True
    """
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_metrics(directory: Path, report: dict[str, Any], per_year: list[dict[str, Any]]) -> None:
    """DVC metrics (report.json) and plots (per_year.csv), written atomically as a folder."""
    target = AtomicDir(directory)
    write_json(target, "report.json", report)
    columns = list(per_year[0]) if per_year else ["year"]
    lines = [",".join(columns), *(",".join(str(row[c]) for c in columns) for row in per_year)]
    target.write_text("per_year.csv", "\n".join(lines) + "\n")
    target.commit()


def json_text(data: Any) -> str:
    """JSON as every output file of the package writes it (report.json of both engines).

    >>> json_text({"é": 1})
    '{\\n  "é": 1\\n}\\n'
    """
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False) + "\n"


def write_json(directory: AtomicDir, relative: str, data: Any) -> None:
    directory.write_text(relative, json_text(data))


SPILL_BUFFER: Final = 1 << 20


class Exporter:
    """Writes the export outputs of a run into an AtomicDir, in two passes.

    ``add`` builds each post (first pass), keeps it and adds its entry to the site index;
    posts are kept in memory up to ``KEEP_IN_MEMORY`` bytes of input, and spilled to a
    temporary file in the output's temporary folder beyond, so memory stays flat however
    large the archive. ``finish`` settles the index
    (duplicates, link targets), then streams the spilled posts back, finishes and writes
    them (second pass): posts/*.md, posts.parquet, links.parquet, redirects.csv,
    conflicts.parquet, quarantine.parquet, problems.parquet, authors.parquet, report.json.
    It checks the accounting before renaming the folder into place. ``patch`` writes the
    same outputs from a previous run's folder and the few posts that changed since.
    With a ``RunLog``, what the next run needs to patch this one is logged as it goes.
    """

    def __init__(self, out_dir: Path, config: Config, metrics_dir: Path | None = None, log: RunLog | None = None) -> None:
        self.config = config
        self.metrics_dir = metrics_dir
        self.log = log
        self.dir = AtomicDir(out_dir)
        # The index's database beside the spill file, in the temporary folder: the workers of
        # the second pass open it by name.
        self.index_path = self.dir.path(".site-index.sqlite")
        self.index = SiteIndex(extra_hosts=tuple(config.export.site_hosts), database=str(self.index_path))
        self.kept: deque[tuple[Doc, Post | bytes | None]] = deque()
        self.kept_bytes = 0
        self.spill_path = self.dir.path(".spill.pickle")
        # A buffer that takes many posts: with the default 8 KiB, pickle wrote each post's
        # bytes in a call of its own, and each call let go of the GIL and waited to get it
        # back from the pool's threads (10,000 posts: 0.61 s of this process in pickle.dump,
        # 0.27 s with this buffer; the run 3.7 to 5.2% faster in three A/Bs; no difference
        # at 100,000 posts). Reading back is left at the default: a 1 MiB buffer made
        # pickle.load ten times slower.
        self.spill = self.spill_path.open("wb", buffering=SPILL_BUFFER)
        self.spilled = 0
        self.count = 0
        self.second: SecondPass | None = None

    def add(self, doc: Doc, post: Post | PickledPost | None = None) -> None:
        """First pass for one post (``post`` is built here unless the caller built it; a
        worker's post comes pickled, and its bytes are kept or spilled as they came)."""
        if post is None and not doc.fatal:
            post = build_post(doc, self.config, self.count)
        kept: Post | bytes | None = None
        size = len(doc.raw)  # a quarantined input's bytes
        if post is not None:
            # The entry's order is the post's place in this run, which only this process knows.
            self.index.add(evolve(post.entry, order=self.count))
            doc = slim_doc(doc)
            # A built post's Doc has no bytes left (slim_doc): its body stands for its size.
            kept, size = (post.data, post.body_size) if isinstance(post, PickledPost) else (post, len(post.body))
        self.count += 1
        # Once one post is spilled all later ones are, so that kept + spilled is input order.
        if not self.spilled and self.kept_bytes + size <= KEEP_IN_MEMORY:
            self.kept.append((doc, kept))
            self.kept_bytes += size
            return
        pickle.dump((doc, kept), self.spill, protocol=pickle.HIGHEST_PROTOCOL)
        self.spilled += 1

    def _spilled(self) -> Iterator[tuple[Doc, Post | bytes | None]]:
        while self.kept:
            yield self.kept.popleft()  # released as the second pass goes
        if not self.spilled:
            return
        with self.spill_path.open("rb") as spill:
            while True:
                try:
                    yield pickle.load(spill)  # our own file, written by add() in this run
                except EOFError:
                    return

    def settle(self) -> SecondPass:
        """End of the first pass: the index knows every post (duplicates, link targets), and
        the posts' file names are claimed; returns what finishing a post needs."""
        if self.second is None:
            self.spill.close()
            self.index.settle()
            if self.log is not None:
                self.log.begin(self.index.fingerprint(), self.index.entries())
            names = claim_file_names(self.index)
            self.second = SecondPass(self.index, self.config, names, str(self.dir.path("posts")))
        return self.second

    def finish(self, finish_many: FinishMany | None = None) -> dict[str, Any]:
        """Second pass and the outputs. ``finish_many`` finishes a window of posts and writes
        their Markdown files (the runner passes one that uses its worker processes) under the
        names claimed when the index settled (``claim_file_names``); the claims of old URLs
        and the counts stay here, in input order, so outputs do not depend on who did the work."""
        from pipeline.tables import PER_POST_TABLES, TableWriter, group_rows, with_claims

        second = self.settle()
        finish_many = finish_many or partial(_finish_serially, second=second)
        size = self.config.export.batch_size
        writers = {name: TableWriter(self.dir.path(f"{name}.parquet"), schema, group_rows(name, size)) for name, schema in PER_POST_TABLES.items()}
        self.dir.path("posts").mkdir()
        claims = _Claims(self.config.resolve.side, self.log, second.file_name)
        for pairs, posts_table in _in_windows(self._spilled(), finish_many):
            claimed: list[FinalPost] = []
            for doc, finished in pairs:
                final = claims.claim(doc, finished)
                for table, rows in table_rows(doc, final).items():
                    if table != "posts":  # built where the posts were finished, in posts_table
                        writers[table].add(rows)
                if final is not None:
                    claimed.append(final)
            writers["posts"].add_table(with_claims(posts_table, claimed))
        for writer in writers.values():
            writer.close()
        return self._complete(claims, writers["posts"].count)

    def patch(self, previous: Path, items: Iterable[tuple[Doc, FinalPost | None, Logged | None]]) -> dict[str, Any]:
        """The outputs from the ``previous`` run's folder, for a run that changed few posts.

        ``items`` are every post of the run in order, finished (``finish_post``, before the
        claims) and flagged fresh when it changed; the others must be what the previous run
        finished (the caller checked it: same input, same index fingerprint). Fresh posts are
        written; the others' Markdown files are hard links to the previous ones, and their
        table rows are copied from the previous tables. Claims, counts and report are
        redone over every post, so the outputs are byte-identical to a full run's.
        """
        from pipeline.tables import PER_POST_TABLES, group_rows, merge_table

        self.dir.path("posts").mkdir()
        claims = _Claims(self.config.resolve.side, self.log)
        fresh_rows: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in PER_POST_TABLES}
        position: dict[str, int] = {}  # each post's place in the run, for the tables' order
        posts_before = os.path.join(previous, "posts")
        posts_now = str(self.dir.path("posts"))
        for doc, finished, logged in items:
            final = claims.claim(doc, finished, logged)
            position[doc.source_path] = len(position)
            markdown = final.markdown if final is not None else None
            name = final.file_name if final is not None and markdown is not None else None
            if logged is None:  # a fresh post
                for table in PER_POST_TABLES:
                    fresh_rows[table][doc.source_path] = []
                for table, rows in table_rows(doc, final).items():
                    fresh_rows[table][doc.source_path] = rows
                if name is not None and markdown is not None:
                    create_file(os.path.join(posts_now, name), markdown)
            elif name is not None:
                link_or_copy(os.path.join(posts_before, name), os.path.join(posts_now, name))
        size = self.config.export.batch_size
        counts = {
            name: merge_table(previous / f"{name}.parquet", self.dir.path(f"{name}.parquet"), schema, fresh_rows[name], position, group_rows(name, size))
            for name, schema in PER_POST_TABLES.items()
        }
        return self._complete(claims, counts["posts"])

    def _complete(self, claims: _Claims, posts_written: int) -> dict[str, Any]:
        """Everything after the per-post outputs: run-wide files, checks, the swap into place."""
        from pipeline.tables import AUTHORS_SCHEMA, TableWriter, validate_posts

        self.spill.close()
        self.spill_path.unlink()
        self.index.close()
        size = self.config.export.batch_size
        authors = TableWriter(self.dir.path("authors.parquet"), AUTHORS_SCHEMA, size)
        authors.add(claims.tally.author_rows())
        authors.close()
        self.dir.write_lines("redirects.csv", redirects_csv(claims.redirects.sorted_items()))
        report = claims.tally.report()
        if not report["accounting_ok"] or posts_written != report["cleaned"]:
            self.abandon()
            raise AccountingError(report["inputs"], report["cleaned"], report["quarantined"])
        try:
            validate_posts(self.dir.path("posts.parquet"))
        except OutputInvalid:
            self.abandon()
            raise
        write_json(self.dir, "report.json", report)
        # Out of the folder before it goes into place, and only once it passed its checks.
        if self.log is not None and self.index.settled:
            self.log.keep(self.index_path, self.index.kept_state(), claims.tally)
        else:
            self.index_path.unlink()
        self.dir.commit()
        if self.log is not None:
            self.log.commit(self.dir.final)
        if self.metrics_dir is not None:
            write_metrics(self.metrics_dir, report, claims.tally.per_year_rows())
        return report

    def abandon(self) -> None:
        if not self.spill.closed:
            # Closing flushes what the spill's buffer holds, and a full disk refuses it
            # again: the folders below must go all the same.
            with suppress(OSError):
                self.spill.close()
        self.dir.abandon()
        if self.log is not None:
            self.log.abandon()


class _Claims:
    """The run-wide decisions of the second pass, post by post in order: file names, old
    URLs, counts; and the log of what each post was before them."""

    def __init__(self, side: str, log: RunLog | None, settled: Callable[[FinalPost], str | None] | None = None) -> None:
        self.tally = Tally(side=side)
        # The names claimed ahead of the second pass (``SecondPass.file_name``), which its
        # workers wrote the files under; without them, each name is claimed here in turn.
        self.name: Callable[[FinalPost], FinalPost] = (
            partial(claim_file_name, taken_names=DiskSet()) if settled is None else lambda post: with_claimed_name(post, settled(post))
        )
        self.redirects = DiskMap()
        self.log = log

    def claim(self, doc: Doc, finished: FinalPost | None, logged: Logged | None = None) -> FinalPost | None:
        """One post's claims and counts; ``logged``: its record in the previous run's log,
        logged again as it is (it has lost its row, so it could not be made again)."""
        final = None
        if finished is not None:
            final = claim_redirects(self.name(finished), self.redirects)
        self.tally.add(doc, final)
        if self.log is not None and logged is not None:
            self.log.add_record(logged)
        elif self.log is not None:
            self.log.add(doc, finished)
        return final


# Bytes of the posts the first pass keeps in memory (a built post's body, a quarantined
# input's bytes); beyond, posts go to the spill file. Keeping saves a pickle round trip, but
# a budget of 32 MB added 200 MB to the peak of every large run.
KEEP_IN_MEMORY: Final = 8 * 1024 * 1024
# Starts ``SecondPass.finish`` on a window of posts and returns what waits for the results,
# so that the next window is under way while this process writes the previous one.
FinishMany = Callable[[list[Post | bytes]], Callable[[], "Finished"]]


@dataclass(frozen=True)
class PickledPost:
    """A built post as the first-pass worker that built it pickled it, with what the main
    process reads of it: its index entry and its body's size. The bytes go on unread (kept
    in memory or spilled, then handed to a second-pass worker), so that the post is
    unpickled once, where it is finished, rather than in the main process twice and
    pickled there twice (10,000 posts: 13.6 → 12.4 s, alternating runs).

    >>> PickledPost.of(None) is None
    True
    """

    entry: Entry
    body_size: int
    data: bytes

    @classmethod
    def of(cls, post: Post | None) -> PickledPost | None:
        return None if post is None else cls(post.entry, len(post.body), pickle.dumps(post, protocol=pickle.HIGHEST_PROTOCOL))


def as_post(post: Post | PickledPost | bytes) -> Post:
    """A built post, whichever form it travelled in: as built, or pickled by this run's
    first-pass worker (``PickledPost``, or the bytes it kept or spilled)."""
    if isinstance(post, PickledPost):
        post = post.data
    return cast(Post, pickle.loads(post)) if isinstance(post, bytes) else post  # our own bytes


@dataclass(frozen=True)
class SecondPass:
    """What finishing a post needs once the first pass is over: the settled index, the
    params, the file names claimed ahead (``claim_file_names``) and the posts folder. The
    runner's second-pass workers inherit it when they fork."""

    index: SiteIndex
    config: Config
    names: dict[str, str]  # source path -> claimed file name, where it is not the wanted one
    posts_dir: str

    def file_name(self, post: FinalPost) -> str | None:
        """The name a finished post's Markdown is written under."""
        return None if post.file_name is None else self.names.get(post.row["source_path"], post.file_name)

    def finish(self, post: Post | bytes) -> FinalPost:
        """``finish_post``, and its Markdown file written; returned with the Markdown emptied
        ("" where a file was written), as the claims and counts only ask whether there is one.
        A post pickled by its first-pass worker (``PickledPost``) is unpickled here.

        Written here, in the worker that rendered it: the text never travels back to the
        main process, and no thread there waits on the disk."""
        final = finish_post(as_post(post), self.index, self.config)
        name = self.file_name(final)
        if final.markdown is None or name is None:
            return final
        create_file(os.path.join(self.posts_dir, name), final.markdown)
        return evolve(final, markdown="")

    def finish_chunk(self, posts: list[Post | bytes]) -> Finished:
        """``finish`` for several posts, with their posts.parquet rows built here too: the
        main process gets light posts (``light_post``) and the rows as Arrow columns rather
        than a dict of 40 fields a post to unpickle and convert. Measured, the work moved to
        the workers about as much as it left the main process (10,000 posts: 9.55 → 9.33 s,
        within the noise); it keeps the main process, the one that runs alone, light."""
        from pipeline.tables import POSTS_SCHEMA, Finished, rows_table

        finals = [self.finish(post) for post in posts]
        return Finished([light_post(final) for final in finals], rows_table([final.row for final in finals], POSTS_SCHEMA))


# Posts handed to ``finish_many`` at a time: enough to keep worker processes busy, few
# enough that memory holds two windows, not the archive.
FINISH_WINDOW: Final = 256


def _finish_serially(posts: list[Post | bytes], second: SecondPass) -> Callable[[], Finished]:
    return lambda: second.finish_chunk(posts)


def _in_windows(pairs: Iterator[tuple[Doc, Post | bytes | None]], finish_many: FinishMany) -> Iterator[tuple[list[tuple[Doc, FinalPost | None]], pa.Table]]:
    """A window at a time: each spilled doc with its finished post (None when quarantined),
    and the window's posts rows; the next window is handed out before this one is yielded."""
    pending: tuple[list[tuple[Doc, Post | bytes | None]], Callable[[], Finished]] | None = None
    while True:
        window = list(islice(pairs, FINISH_WINDOW))
        started = (window, finish_many([post for _, post in window if post is not None])) if window else None
        if pending is not None:
            done, results = pending
            finished = results()
            posts = iter(finished.posts)
            yield [(doc, next(posts) if post is not None else None) for doc, post in done], finished.table
        if started is None:
            return
        pending = started


def claim_redirects(post: FinalPost, taken: StringMap) -> FinalPost:
    """Keep the post's old URLs that no earlier post claimed; report the others."""
    kept = []
    lost = []
    for old, new in post.redirects:
        if taken.setdefault(old, new) == new:
            kept.append((old, new))
        else:
            lost.append(old)
    if not lost:
        return post
    conflict = problem("redirect_conflict", f"old URL(s) {', '.join(lost[:3])} already redirect to another post")
    row = {**post.row, "problems": sorted({*post.row["problems"], conflict.code})}
    return evolve(post, row=row, redirects=tuple(kept), problems=(*post.problems, conflict))


def redirects_csv(redirects: Iterable[tuple[str, str]]) -> Iterator[str]:
    """redirects.csv's lines: a header, then one ``old_path,new_path`` line per old URL, in
    the order given (sorted by old path, as ``DiskMap.sorted_items`` gives them).

    >>> "".join(redirects_csv([("/2010/01/a.html", "/a/"), ("/2010/01/b.html", "/b/")]))
    'old_path,new_path\\n/2010/01/a.html,/a/\\n/2010/01/b.html,/b/\\n'
    """
    yield "old_path,new_path\n"
    for old, new in redirects:
        yield f"{csv_field(old)},{csv_field(new)}\n"


def csv_field(value: str) -> str:
    """One field of redirects.csv, quoted as RFC 4180 wants when it holds a comma, quote or newline.

    >>> csv_field("/2010/01/a.html"), csv_field("/a,b")
    ('/2010/01/a.html', '"/a,b"')
    """
    return f'"{value.replace(chr(34), chr(34) * 2)}"' if any(c in value for c in ',"\n') else value


@cache  # once per process: the code it runs is the code it imported
def code_version() -> str:
    """A hash of the package's source and of the libraries that shape its output (Python,
    PyYAML and whether it uses libyaml, ftfy, pyarrow): a cache entry, or a patched rerun's
    previous output, from other code is never reused."""
    from importlib import metadata  # versions without importing: pyarrow (pipeline.tables), ftfy (escapes, on demand)

    digest = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(f"{sys.version}|{yaml.__version__}|{yaml.__with_libyaml__}|{metadata.version('ftfy')}|{metadata.version('pyarrow')}".encode())
    return digest.hexdigest()


class ResultCache:
    """Per-file results kept between runs, by content hash (``run --cache DIR``).

    Entries are pickles written by this package into a folder the user named; a corrupt or
    unreadable entry counts as a miss. Writes go to a temporary name, then rename, so two
    workers or a killed run never leave half an entry.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.pickle"

    def get(self, key: str) -> Any | None:
        try:
            with self._path(key).open("rb") as handle:
                return pickle.load(handle)  # our own entries, keyed by content hash
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError):
            return None

    def put(self, key: str, value: Any) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        write_pickle_file(path, value)


# A post in a run log: its Doc without texts or row, its row's category names, its light post.
LogRecord = tuple[Doc, tuple[str, ...], FinalPost | None]
# A LogRecord read back, with the pickle of the batch it came from and that batch's size: a
# rerun logs a batch of unchanged posts again by copying its bytes (pickling 100,000
# records one by one again cost 2.6 s of a 27 s rerun).
Logged = tuple[LogRecord, bytes, int]
# Records pickled together: one pickle shares the class and field names of its records
# (a record pickled alone repeats them), and a batch without a changed post is copied.
LOG_BATCH: Final = 64
# What a later run reads of every post before it streams the records: source path, input
# hash, quarantined, waiting for the archive's category names, its row's category names,
# and the input's stamp (``stamp_inputs``; None: never trusted, the input is read again).
LoggedPost = tuple[str, str, bool, bool, tuple[str, ...], int | None]


@dataclass(frozen=True)
class PreviousRun:
    """What a cached run logged of itself, read back by the next run into the same folder.
    ``kept``: what ``patch_in_place`` needs (``RunLog.commit``), absent from a patched run's
    log when its index was not settled anew."""

    salt: str
    posts: list[LoggedPost]
    records_path: Path
    run_id: str
    kept: dict[str, Any]
    files: str
    batches: list[int]  # where each batch of posts starts in the records
    records_size: int  # the records file's size when the log was written

    def records_whole(self) -> bool:
        """Whether the records file has the size the log wrote: a patch in place reads only
        the batches of the posts it changes, and would not see another one cut short or
        grown. (Bytes altered in place, size kept, are seen only by a reader of them.)"""
        try:
            return self.records_path.stat().st_size == self.records_size
        except OSError:
            return False

    def index(self) -> tuple[str, Iterator[Entry]]:
        """The index fingerprint and the entries as the first pass built them, streamed."""
        items = self._items()
        fingerprint = next(items, None)
        if not isinstance(fingerprint, str):
            raise PatchRefused("the run log's records are unreadable (no index fingerprint)")
        overrides: dict[str, Entry] = self.kept.get("overrides", {})  # entries patched in place since
        return fingerprint, (overrides.get(entry.source_path, entry) for entry in _checked_entries(items))

    def records(self) -> Iterator[Logged]:
        """The logged posts, in run order, streamed a batch at a time (never all in memory)."""
        blobs = self._items(self.batches)
        left = len(self.posts)
        while left > 0:
            blob = next(blobs, None)
            if not isinstance(blob, bytes):
                raise PatchRefused("the run log's records are unreadable (fewer posts than logged)")
            batch = cast(list[LogRecord], _unpickle_batch(blob))
            for record in batch:
                yield record, blob, len(batch)
            left -= len(batch)

    def batches_at(self, numbers: list[int]) -> dict[int, list[LogRecord]]:
        """The logged batches of posts numbered ``numbers``, read where they start."""
        try:
            starts = [self.batches[number] for number in numbers]
        except IndexError:
            raise PatchRefused("the run log's records are unreadable (fewer batches than posts)") from None
        return {number: cast(list[LogRecord], _unpickle_batch(blob)) for number, blob in zip(numbers, self._items(starts), strict=True)}

    def _items(self, starts: Iterable[int] | None = None) -> Iterator[Any]:
        """The records file's pickles after its run id: in a row, or one at each of ``starts``
        (a patch in place appends the batches it changed, and the header says where each is)."""
        try:
            with self.records_path.open("rb") as handle:
                if pickle.load(handle) != self.run_id:  # our own file, written by RunLog
                    raise PatchRefused("the run log's two files are of different runs")
                if starts is None:
                    while True:
                        yield pickle.load(handle)
                for start in starts:
                    handle.seek(start)
                    yield pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError, TypeError) as err:
            raise PatchRefused(f"the run log's records are unreadable ({err!r})") from None


def _until_end(items: Iterator[Any]) -> Iterator[bytes]:
    """The pickled batches of a section of the records file, up to its end mark (``b""``)."""
    for blob in items:
        if not isinstance(blob, bytes):
            raise PatchRefused("the run log's records are unreadable (a section without its end)")
        if not blob:
            return
        yield blob


def _checked_entries(items: Iterator[Any]) -> Iterator[Entry]:
    for blob in _until_end(items):
        for entry in _unpickle_batch(blob):
            if not isinstance(entry, Entry):
                raise PatchRefused("the run log's records are unreadable (the index's entries run into the posts)")
            yield entry


def _unpickle_batch(blob: bytes) -> list[Any]:
    try:
        batch = pickle.loads(blob)  # our own bytes, pickled by RunLog
    except (pickle.UnpicklingError, AttributeError, ValueError, TypeError, EOFError) as err:
        raise PatchRefused(f"the run log's records are unreadable ({err!r})") from None
    if not isinstance(batch, list) or not batch:
        raise PatchRefused("the run log's records are unreadable (an empty batch)")
    return batch


class RunLog:
    """The log a cached run keeps beside its cache, so that the next run can patch its output.

    Two files per output folder, under ``<cache>/runs/``. The records file holds the index
    fingerprint, the entries as the first pass built them (in batches, then an end mark),
    then every post in run order, in batches of ``LOG_BATCH`` (its Doc without texts or
    row, its category names, its finished post with only what claims and counts read:
    ``light_post``). The main file holds the cache salt, a short line per post
    (``LoggedPost``, with the input's stamp), a digest of every output file's size,
    mtime and inode (``tree_digest``) once in place, where each batch of posts starts in
    the records file, and that file's size (``write_log_header``). Both are written under temporary
    names and renamed after the folder's swap, the main file last; a random run id in both
    tells a mismatched pair. A folder changed since (a file edited, added or removed) no
    longer matches its log, and the next run does not patch it.
    """

    def __init__(self, cache_dir: Path, out_dir: Path, salt: str, stamps: dict[str, int] | None = None) -> None:
        self.stamps = stamps or {}
        self.path = run_log_path(cache_dir, out_dir)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records_path = self.path.with_suffix(".records")
        self.records_tmp = aside(self.records_path)
        self.salt = salt
        self.run_id = os.urandom(8).hex()
        self.posts: list[LoggedPost] = []
        self.batches: list[int] = []  # where each batch of posts starts in the records file
        self.kept: dict[str, Any] = {}
        self.batch: list[LogRecord] = []
        self.batch_from: tuple[bytes, int] | None = None  # the previous batch all of this one came from
        self.handle = self.records_tmp.open("wb")
        pickle.dump(self.run_id, self.handle, protocol=pickle.HIGHEST_PROTOCOL)

    def begin(self, fingerprint: str, entries: Iterable[Entry]) -> None:
        # Into the records file as they come, a batch at a time, then an end mark: held, or
        # pickled at once, the entries of 100,000 posts weighed 220 MB. Each batch is pickled
        # twice over, so that streaming the records skips them as bytes.
        pickle.dump(fingerprint, self.handle, protocol=pickle.HIGHEST_PROTOCOL)
        stream = iter(entries)
        while batch := list(islice(stream, LOG_BATCH)):
            pickle.dump(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL), self.handle, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(b"", self.handle, protocol=pickle.HIGHEST_PROTOCOL)

    def add(self, doc: Doc, finished: FinalPost | None) -> None:
        self._log(log_record(doc, finished), None)

    def add_record(self, logged: Logged) -> None:
        """Log a post as the previous run logged it (its batch is copied if wholly unchanged)."""
        record, blob, size = logged
        self._log(record, (blob, size))

    def _log(self, record: LogRecord, came_from: tuple[bytes, int] | None) -> None:
        self.posts.append(logged_post(record, self.stamps))
        if not self.batch:
            self.batch_from = came_from
        elif came_from is None or self.batch_from is None or came_from[0] is not self.batch_from[0]:
            self.batch_from = None
        self.batch.append(record)
        if len(self.batch) == LOG_BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self.batch:
            return
        whole = self.batch_from is not None and self.batch_from[1] == len(self.batch)
        blob = self.batch_from[0] if whole and self.batch_from is not None else pickle.dumps(self.batch, protocol=pickle.HIGHEST_PROTOCOL)
        self.batches.append(self.handle.tell())
        pickle.dump(blob, self.handle, protocol=pickle.HIGHEST_PROTOCOL)
        self.batch = []

    def commit(self, out_dir: Path) -> None:
        self._flush()
        records_size = self.handle.tell()
        self.handle.close()
        self.records_tmp.replace(self.records_path)
        done = PreviousRun(self.salt, self.posts, self.records_path, self.run_id, self.kept, tree_digest(out_dir), self.batches, records_size)
        write_log_header(self.path, done)

    def keep(self, index_path: Path, index_state: dict[str, Any], tally: Tally) -> None:
        """Keep the settled index's database beside the log, with the index's other state
        and the run's tally: a later rerun that changes no entry reuses them
        (``patch_in_place``) instead of settling the index and counting every post again."""
        target = self.path.with_suffix(".index.sqlite")
        try:
            os.replace(index_path, target)
        except OSError:  # another file system: the cache folder is the user's to place
            shutil.copyfile(index_path, target)
            index_path.unlink()
        status = target.stat()
        self.kept = {"index": index_state, "index_file": (status.st_size, status.st_mtime_ns, status.st_ino), "tally": tally}

    def abandon(self) -> None:
        self.handle.close()
        self.records_tmp.unlink(missing_ok=True)


def log_record(doc: Doc, finished: FinalPost | None) -> LogRecord:
    """A post as a run log keeps it: its Doc without row, the row's category names (all a
    later run compares of it, a third of a Doc's size), its light post."""
    categories = doc.row.categories if doc.row is not None else ()
    return evolve(doc, row=None), categories, None if finished is None else light_post(finished)


def logged_post(record: LogRecord, stamps: dict[str, int]) -> LoggedPost:
    """A log's short line for a post (``LoggedPost``)."""
    doc, categories, light = record
    return doc.source_path, doc.sha256, light is None, needs_vocabulary(doc), categories, _stamp(doc.source_path, doc.sha256, stamps)


def _stamp(source_path: str, sha256: str, stamps: dict[str, int]) -> int | None:
    # An input that was not read has no bytes its stamp could vouch for.
    return stamps.get(source_path) if sha256 != EMPTY_SHA256 else None


_LOG_FORMAT: Final = 10


def run_log_path(cache_dir: Path, out_dir: Path) -> Path:
    """Where the run log of an output folder lives in a cache (one per folder)."""
    return cache_dir / "runs" / f"{hashlib.sha256(str(out_dir.resolve()).encode()).hexdigest()[:32]}.pickle"


def forget_run_log(cache_dir: Path, out_dir: Path) -> None:
    """Remove the run log of an output folder that is about to go (a dry run's scratch folder)."""
    path = run_log_path(cache_dir, out_dir)
    path.unlink(missing_ok=True)
    path.with_suffix(".records").unlink(missing_ok=True)
    path.with_suffix(".index.sqlite").unlink(missing_ok=True)


def read_run_log(cache_dir: Path, out_dir: Path) -> PreviousRun | None:
    """The previous run's log for ``out_dir``, or None: no log, an unreadable one, one of
    another format, or a folder that changed since the log was written."""
    path = run_log_path(cache_dir, out_dir)
    try:
        with path.open("rb") as handle:
            header = pickle.load(handle)  # our own file, written by RunLog
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ValueError, TypeError):
        return None
    if not isinstance(header, dict) or header.get("format") != _LOG_FORMAT:
        return None
    if not out_dir.is_dir() or header["files"] != tree_digest(out_dir):
        return None
    return PreviousRun(records_path=path.with_suffix(".records"), **{name: header[name] for name in _HEADER_FIELDS})


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT (Ctrl-C) and SIGTERM are held while the block runs and delivered after it.

    For the few steps that take an output folder from one whole state to the next: an
    interruption between them would leave a folder that is neither. The signals are taken
    by a handler that notes them, and raised again once the previous handlers are back, so
    each does then what it would have done (KeyboardInterrupt, the end of the process). A
    thread's signal mask would not do: the kernel gives a process's signal to any thread
    that does not block it (Arrow's pool has some). Only the main thread can set handlers;
    elsewhere it holds nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous: dict[signal.Signals, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if handler is not None:  # None: set outside Python, and it could not be put back
            previous[signum] = signal.signal(signum, lambda number, _frame: held.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for number in dict.fromkeys(held):
            signal.raise_signal(number)


def patch_in_place(
    previous: PreviousRun, out_dir: Path, config: Config, changed: list[tuple[int, Doc, Post | None]], stamps: dict[str, int], metrics_dir: Path | None = None
) -> dict[str, Any]:
    """Patch the previous run's output folder in place for the ``changed`` posts (their
    place in the run, their new Doc and built post): only their files change.

    It holds when no changed post changes anything a full run decides across posts: its
    index entry is the one logged (slug, date, URLs, twin key, title, link hosts, file
    name), so the settled index kept by the previous run is the one a full run would
    settle; its claims took nothing from another post (its file name and old URLs are
    its own, before and after); it keeps its author and its rows' count in every table.
    Then the tally is the logged one with the post counted anew (``Tally.swap``), each
    table gets the row group that holds the post re-encoded and spliced in
    (``tables.splice_table``), its Markdown file is replaced (a file that would get the
    bytes it has is left as it is), and the log is rewritten around the changed batch.
    Anything else raises PatchRefused before a file of the folder is touched, and the
    caller patches the slower way.

    The files are replaced one by one (each by a rename): the log is removed first, so a
    run killed half way leaves a folder the next run rebuilds in full.
    """
    from pipeline.tables import AUTHORS_SCHEMA, PER_POST_TABLES, TableWriter, check_post_rules, group_rows, merge_table, splice_table

    kept = previous.kept
    index_path = previous.records_path.with_suffix(".index.sqlite")
    try:
        status = index_path.stat()
    except OSError:
        status = None
    if not kept or status is None or (status.st_size, status.st_mtime_ns, status.st_ino) != kept["index_file"]:
        raise PatchRefused("the previous run kept no settled index to reuse")
    index = SiteIndex.reopen(str(index_path), kept["index"])
    tally = cast(Tally, kept["tally"])
    records = previous.batches_at(sorted({place // LOG_BATCH for place, _, _ in changed}))
    overrides: dict[str, Entry] = dict(kept.get("overrides", {}))
    fresh_rows: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in PER_POST_TABLES}
    markdown: dict[str, str] = {}
    wanted: dict[str, FinalPost] = {}  # the previous run's light post, to check its claims took nothing
    new_keys: set[str] = set()  # the changed posts' twin keys: the index knows only their old ones
    try:
        for place, doc, post in changed:
            old_doc, _, old_light = records[place // LOG_BATCH][place % LOG_BATCH]
            if old_doc.source_path != doc.source_path:
                raise PatchRefused("the run log's records are not in the order of its posts")
            finished = None
            if post is not None:
                entry = evolve(post.entry, order=place)
                if old_light is None or not _same_settling(index, entry) or entry.dup_key in new_keys:
                    raise PatchRefused(
                        f"{doc.source_path} changes its index entry (slug, date, URLs, file name, links' hosts, a twin, a link to a re-dated post)"
                    )
                if entry.dup_key is not None:
                    new_keys.add(entry.dup_key)
                overrides[doc.source_path] = entry
                finished = finish_post(post, index, config)
                if (finished.file_name, finished.redirects, finished.markdown is None) != (
                    old_light.file_name,
                    old_light.redirects,
                    old_light.markdown is None,
                ):
                    raise PatchRefused(f"{doc.source_path} now wants another file name or other old URLs")
                wanted[doc.source_path] = old_light
                if finished.file_name is not None and finished.markdown is not None:
                    markdown[finished.file_name] = finished.markdown
                doc = slim_doc(doc)
            try:
                tally.swap(place, (old_doc, old_light), (doc, None if finished is None else light_post(finished)))
            except ValueError as err:
                raise PatchRefused(str(err)) from None
            for name, rows in table_rows(doc, finished).items():
                fresh_rows[name][doc.source_path] = rows
            for name in PER_POST_TABLES:
                fresh_rows[name].setdefault(doc.source_path, [])
            records[place // LOG_BATCH][place % LOG_BATCH] = log_record(doc, finished)
    finally:
        index.close()
    report = tally.report()
    if not report["accounting_ok"]:
        raise AccountingError(report["inputs"], report["cleaned"], report["quarantined"])
    check_post_rules([row for rows in fresh_rows["posts"].values() for row in rows], "posts.parquet")
    replaced: list[tuple[Path, str]] = []  # (temporary file, the folder's file it replaces)
    temporaries: list[Path] = []
    places: dict[str, int] | None = None

    def temporary(folder: Path) -> Path:
        # Short: a post's file name may be 255 bytes long already.
        temporaries.append(folder / f".patch.{os.getpid()}.{len(temporaries)}.tmp")
        return temporaries[-1]

    try:
        for name, schema in PER_POST_TABLES.items():
            tmp = temporary(out_dir)
            old_rows = splice_table(out_dir / f"{name}.parquet", tmp, schema, fresh_rows[name])
            if old_rows is None:  # a post's number of rows changed: the table is written again
                if places is None:
                    places = {post[0]: place for place, post in enumerate(previous.posts)}
                merge_table(out_dir / f"{name}.parquet", tmp, schema, fresh_rows[name], places, group_rows(name, config.export.batch_size))
                if name == "posts":
                    raise AssertionError("a post has one posts row")
                old_rows = []
            if name == "posts":
                for row in old_rows:
                    light = wanted.get(row["source_path"])
                    if light is not None and (row["output_path"], row["problems"]) != (light.row["output_path"], light.row["problems"]):
                        raise PatchRefused(f"{row['source_path']}: the previous run's claims changed its file name or old URLs")
            if tmp.exists():
                replaced.append((tmp, f"{name}.parquet"))
        if changed:  # with none, only the log's stamps change
            tmp = temporary(out_dir)
            authors = TableWriter(tmp, AUTHORS_SCHEMA, config.export.batch_size)
            authors.add(tally.author_rows())
            authors.close()
            replaced.append((tmp, "authors.parquet"))
            tmp = temporary(out_dir)
            tmp.write_text(json_text(report), encoding="utf-8")
            replaced.append((tmp, "report.json"))
        for file_name, text in markdown.items():
            tmp = temporary(out_dir / "posts")
            create_file(str(tmp), text)
            replaced.append((tmp, f"posts/{file_name}"))
        # A file the patch would write as it is stays untouched (the report and the authors
        # after most body edits, a Markdown file an edit does not reach): what syncs or
        # deploys the folder sees only the files that changed. Their temporaries go with the
        # others, here too if the comparison is interrupted.
        replaced = [(tmp, relative) for tmp, relative in replaced if not same_bytes(tmp, out_dir / relative)]
    except BaseException as err:
        for tmp in temporaries:
            tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise PatchRefused(f"cannot write the patch's files into {out_dir} ({err.strerror})") from None
        raise
    # From here on the folder changes: its log goes first. A Ctrl-C or SIGTERM waits until the
    # folder is whole again (milliseconds: a few renames and the log), not half patched.
    with signals_held():
        _update_entries(index_path, [entry for path, entry in overrides.items() if path not in kept.get("overrides", {}) or kept["overrides"][path] != entry])
        status = index_path.stat()
        kept = {**kept, "overrides": overrides, "index_file": (status.st_size, status.st_mtime_ns, status.st_ino)}
        try:
            previous.records_path.with_suffix(".pickle").unlink(missing_ok=True)  # the folder no longer matches it
            count, total = previous.files.split(":")
            digest = int(total, 16)
            for tmp, relative in replaced:
                digest -= _file_hash(relative, (out_dir / relative).stat())
                os.replace(tmp, out_dir / relative)
                digest += _file_hash(relative, (out_dir / relative).stat())
        finally:
            for tmp in temporaries:
                tmp.unlink(missing_ok=True)
        if metrics_dir is not None:
            write_metrics(metrics_dir, report, tally.per_year_rows())
        _rewrite_log(previous, records, {**kept, "tally": tally}, stamps, f"{count}:{digest % (1 << 128):032x}")
    return report


def _same_settling(index: SiteIndex, entry: Entry) -> bool:
    """Whether the settled index would be the same with ``entry`` in place of the post's
    entry: equal but for its twin key and title (what a body or title edit changes), in no
    twin group before or after (only twins read those two), and but for links to posts
    that no old address of a re-dated post is among (``linked_old_urls``)."""
    logged = index.entry(entry.source_path)
    if logged is None or evolve(entry, dup_key=logged.dup_key, title=logged.title, post_links=logged.post_links) != logged:
        return False
    if entry == logged:
        return True
    if any(index.resolve(target).rule == "redated" for target in set(entry.post_links) ^ set(logged.post_links)):
        return False
    return not any(index.shares_dup_key(key, entry.source_path) for key in {logged.dup_key, entry.dup_key} if key is not None)


def _update_entries(database: Path, entries: list[Entry]) -> None:
    """Write the twin key, title and post links of entries patched in place into a kept index's
    database, so that the next patch compares with them; and index the columns a patch in
    place looks posts up by, once (0.3 s at 100,000 posts, paid by the first patch rather
    than by every full run; each lookup then takes microseconds instead of a scan).

    Without a journal or syncs, as the run wrote it (``ondisk.connect``): a default
    connection synced each update, 2.6 ms of a watch's 50 ms rerun. A process killed
    mid-write leaves the file with another size or mtime than the log keeps, and the next
    run does not reuse it (``patch_in_place``). A power loss is another matter, as for the
    whole log and the output folder, which no run syncs either: the cache is not meant to
    survive one (the metadata could reach the disk before the pages), and a run after one
    should start without it (``--cache`` on an empty folder)."""
    if not entries:
        return
    with closing(connect(str(database))) as db:
        db.execute("CREATE INDEX IF NOT EXISTS entries_by_source ON entries (source_path)")
        db.execute("CREATE INDEX IF NOT EXISTS entries_by_dup_key ON entries (dup_key)")
        db.executemany(
            "UPDATE entries SET dup_key = ?, title = ?, post_links = ? WHERE source_path = ?",
            [(e.dup_key, e.title, json.dumps(e.post_links), e.source_path) for e in entries],
        )


def _rewrite_log(previous: PreviousRun, records: dict[int, list[LogRecord]], kept: dict[str, Any], stamps: dict[str, int], files: str) -> None:
    """The log of a run patched in place: the previous records with the changed batches
    written anew (the rest copied as bytes), and a header with this run's stamps and digest."""
    batches = list(previous.batches)
    # The changed batches go at the end of the records file, and the header says where each
    # batch starts (``PreviousRun.records``): copying 215 MB of records around one changed
    # batch took a fifth of a 100,000-post rerun. The header is gone until it is written
    # below, so a run killed in between leaves no log that could pair with these records.
    with previous.records_path.open("ab") as handle:
        for number in sorted(records):
            batches[number] = handle.tell()
            pickle.dump(pickle.dumps(records[number], protocol=pickle.HIGHEST_PROTOCOL), handle, protocol=pickle.HIGHEST_PROTOCOL)
        records_size = handle.tell()
    posts = []
    for place, post in enumerate(previous.posts):
        number, at = divmod(place, LOG_BATCH)
        if number in records:
            posts.append(logged_post(records[number][at], stamps))
        else:
            posts.append((*post[:5], _stamp(post[0], post[1], stamps)))
    done = evolve(previous, posts=posts, kept=kept, files=files, batches=batches, records_size=records_size)
    write_log_header(previous.records_path.with_suffix(".pickle"), done)


_HEADER_FIELDS: Final = ("salt", "posts", "run_id", "kept", "files", "batches", "records_size")


def write_log_header(path: Path, run: PreviousRun) -> None:
    """The run log's main file (``RunLog``): the fields of ``run`` but its records path,
    which the main file's own name gives. Written aside and renamed over the old one, last."""
    write_pickle_file(path, {"format": _LOG_FORMAT, **{name: getattr(run, name) for name in _HEADER_FIELDS}})


def _file_hash(relative: str, status: os.stat_result) -> int:
    """One file's share of ``tree_digest``."""
    line = f"{relative}\0{status.st_size}\0{status.st_mtime_ns}\0{status.st_ino}".encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(line, digest_size=16).digest(), "little")


def tree_digest(root: Path) -> str:
    """A digest of the size, mtime and inode of every file under ``root``, by relative path:
    a folder edited, added to or pruned since gets another digest.

    Summed over the files, so neither the walk's order nor the folder's size costs memory
    (a dict of them weighed 25 MB at 100,000 posts, and as much again to pickle).

    >>> import tempfile; folder = Path(tempfile.mkdtemp()); _ = (folder / "a.md").write_text("x")
    >>> before = tree_digest(folder); _ = (folder / "b.md").write_text("y")
    >>> before == tree_digest(folder)
    False
    """
    total, count = 0, 0
    pending = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((Path(entry.path), f"{prefix}{entry.name}/"))
                    continue
                total += _file_hash(f"{prefix}{entry.name}", entry.stat(follow_symlinks=False))
                count += 1
    return f"{count}:{total % (1 << 128):032x}"


def link_or_copy(source: str, target: str) -> None:
    """A hard link to an unchanged output file (a copy where links are refused): the file is
    never written again in place, so the previous folder and the new one may share it."""
    try:
        os.link(source, target)
    except OSError:
        try:
            shutil.copyfile(source, target)
        except OSError as err:
            raise PatchRefused(f"cannot reuse {source} ({err.strerror})") from None


@contextmanager
def scratch_dir() -> Iterator[Path]:
    """A temporary folder removed afterwards (what ``--dry-run`` writes into instead of --out)."""
    path = Path(tempfile.mkdtemp(prefix="pipeline-dry-run-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def compare_trees(current: Path, new: Path) -> dict[str, list[str]]:
    """Files that ``new`` would add to, remove from or change in ``current`` (relative paths)."""

    def files(root: Path) -> dict[str, Path]:
        if not root.is_dir():
            return {}
        return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}

    old_files, new_files = files(current), files(new)
    return {
        "added": sorted(new_files.keys() - old_files.keys()),
        "removed": sorted(old_files.keys() - new_files.keys()),
        "changed": [k for k in sorted(old_files.keys() & new_files.keys()) if not same_bytes(old_files[k], new_files[k])],
    }


def same_bytes(left: Path, right: Path) -> bool:
    """Whether two files hold the same bytes; False when either cannot be read (missing,
    unreadable, a folder), so that a caller deciding whether to write one writes it.
    Compared a MiB at a time: a 100,000-post ``posts.parquet`` is 115 MB.

    >>> folder = Path(tempfile.mkdtemp()); _ = (folder / "a").write_text("x"); _ = (folder / "b").write_text("x")
    >>> same_bytes(folder / "a", folder / "b"), same_bytes(folder / "a", folder), same_bytes(folder / "a", folder / "c")
    (True, False, False)
    """
    try:
        if left.stat().st_size != right.stat().st_size:
            return False
        with left.open("rb") as one, right.open("rb") as other:
            while chunk := one.read(1 << 20):
                if chunk != other.read(len(chunk)):
                    return False
        return True
    except OSError:
        return False
