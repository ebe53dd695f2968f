"""Sets and maps that keep their members in SQLite, so that a run's memory stays flat.

The run-wide decisions (taken file names, claimed old URLs, the site index's lookups) grow
with the archive: held in Python dicts and sets they cost about a kilobyte a post, a gigabyte
at a million posts. Here they live in a SQLite database whose page cache is bounded
(``CACHE_KIB``); beyond it, pages go to a file.

A database name of ``""`` is SQLite's private temporary database: an anonymous file in the
system's temporary folder, deleted when the connection closes, so no path is handled here.
A named database is a file that other processes can open read-only (``open_reader``); the
caller owns its path. ``DiskSet`` and ``DiskMap`` store strings as UTF-8 with surrogates
passed through, so that any Python ``str`` round-trips, and order them as Python does
(UTF-8's byte order is the code points' order). The site index's tables hold plain UTF-8
text, as the Parquet tables do. ``SpillList`` holds any picklable items in an anonymous
temporary file, in order.
"""

from __future__ import annotations

import pickle
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Final, Generic, Protocol, TypeVar
from urllib.parse import quote

T = TypeVar("T")

# The page cache of each connection, SQLite's default. Beyond it pages are read back from
# the file, from the system's file cache in practice, which no process's RSS counts.
CACHE_KIB: Final = 2 * 1024


def connect(database: str = "") -> sqlite3.Connection:
    """A connection for writing: no journal and no syncing, as the database is scratch that
    a failed run throws away with its temporary folder."""
    connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    connection.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    connection.execute("PRAGMA journal_mode = OFF")
    connection.execute("PRAGMA synchronous = OFF")
    connection.execute("PRAGMA temp_store = FILE")
    return connection


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """One transaction around a block, committed when it ends, rolled back when it raises."""
    connection.execute("BEGIN")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def open_reader(database: str) -> sqlite3.Connection:
    """A read-only connection to a named database that no process writes any more
    (``immutable``: SQLite then takes no locks), for worker processes."""
    connection = sqlite3.connect(f"file:{quote(database)}?mode=ro&immutable=1", uri=True, isolation_level=None, check_same_thread=False)
    connection.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    return connection


def encode(text: str) -> bytes:
    """A string as stored: UTF-8, lone surrogates passed through (file names may hold them)."""
    return text.encode("utf-8", "surrogatepass")


def decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


class StringSet(Protocol):
    """What the claims ask of a set of taken names: a ``set`` or a ``DiskSet``."""

    def __contains__(self, item: object, /) -> bool: ...

    def add(self, item: str, /) -> None: ...


class StringMap(Protocol):
    """What the claims ask of a map of taken old URLs: a ``dict`` or a ``DiskMap``."""

    def setdefault(self, key: str, value: str, /) -> str: ...


class DiskSet:
    """A set of strings in a private temporary database: ``in`` and ``add``, as a ``set`` has.

    >>> names = DiskSet()
    >>> names.add("a.md"); names.add("a.md")
    >>> "a.md" in names, "b.md" in names, len(names)
    (True, False, 1)
    """

    def __init__(self) -> None:
        self.db = connect()
        self.db.execute("CREATE TABLE members (item BLOB PRIMARY KEY) WITHOUT ROWID")
        self.db.execute("BEGIN")  # never committed: the database goes with the connection

    def __contains__(self, item: object) -> bool:
        if not isinstance(item, str):
            return False
        return self.db.execute("SELECT 1 FROM members WHERE item = ?", (encode(item),)).fetchone() is not None

    def add(self, item: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO members VALUES (?)", (encode(item),))

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM members").fetchone()[0])


class DiskMap:
    """A map of strings to strings in a private temporary database: ``setdefault``, as a
    ``dict`` has, and its items in key order.

    >>> taken = DiskMap()
    >>> taken.setdefault("/b", "/1/"), taken.setdefault("/a", "/2/"), taken.setdefault("/b", "/3/")
    ('/1/', '/2/', '/1/')
    >>> list(taken.sorted_items())
    [('/a', '/2/'), ('/b', '/1/')]
    """

    def __init__(self) -> None:
        self.db = connect()
        self.db.execute("CREATE TABLE items (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID")
        self.db.execute("BEGIN")  # never committed: the database goes with the connection

    def setdefault(self, key: str, value: str) -> str:
        """The key's value: ``value`` if the key was not there (then it is stored)."""
        stored = encode(key)
        if self.db.execute("INSERT OR IGNORE INTO items VALUES (?, ?)", (stored, encode(value))).rowcount:
            return value
        return decode(self.db.execute("SELECT value FROM items WHERE key = ?", (stored,)).fetchone()[0])

    def sorted_items(self) -> Iterator[tuple[str, str]]:
        """Every (key, value), keys in Python's order for strings, streamed."""
        for key, value in self.db.execute("SELECT key, value FROM items ORDER BY key"):
            yield decode(key), decode(value)

    def __len__(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM items").fetchone()[0])


class SpillList(Generic[T]):
    """A list that keeps its items pickled in an anonymous temporary file: ``append``, then
    iterate (once); the file goes when the list has been read to its end, or is collected.

    >>> held = SpillList[str]()
    >>> held.append("a"); held.append("b")
    >>> list(held), len(held)
    (['a', 'b'], 2)
    """

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115  # open for the life of the list, closed once read
        self.count = 0

    def append(self, item: T, /) -> None:
        pickle.dump(item, self.file, protocol=pickle.HIGHEST_PROTOCOL)
        self.count += 1

    def __iter__(self) -> Iterator[T]:
        if self.file.closed:
            raise ValueError("SpillList is read once, and was read")
        self.file.seek(0)
        with self.file:
            for _ in range(self.count):
                yield pickle.load(self.file)  # written by append() in this process

    def __len__(self) -> int:
        return self.count
