"""Post dates: WordPress wall-clock times read in the blog's time zone.

WordPress writes local wall-clock time. This archive adds a fixed ``+0100`` even in summer,
so the written offset is not trusted: the wall-clock time is read in the configured time
zone, and a differing written offset is reported, not used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

_DATE: Final = re.compile(
    r"\s*(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d\d)(?::(\d\d)(?:\.\d+)?)?)?"
    r"\s*(Z|[+-]\d\d:?\d\d)?\s*"
)


@dataclass(frozen=True)
class WallClock:
    """A date as written: the local time and the offset written beside it, if any."""

    local: datetime
    written_offset: timedelta | None


def parse_wall_clock(text: str) -> WallClock | None:
    """Read ``YYYY-MM-DD[ HH:MM[:SS]][ offset]``; None when it is not such a date.

    >>> parse_wall_clock("2014-07-05 16:38:27 +0100")
    WallClock(local=datetime.datetime(2014, 7, 5, 16, 38, 27), written_offset=datetime.timedelta(seconds=3600))
    """
    match = _DATE.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second, offset = match.groups()
    try:
        local = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    return WallClock(local, _offset(offset))


def _offset(text: str | None) -> timedelta | None:
    if text is None:
        return None
    if text == "Z":
        return timedelta(0)
    digits = text[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return -delta if text[0] == "-" else delta


def localize(wall: WallClock, zone: ZoneInfo) -> datetime:
    """The wall-clock time as an aware datetime in ``zone`` (the written offset is ignored).

    >>> localize(parse_wall_clock("2014-07-05 16:38:27 +0100"), ZoneInfo("Europe/Paris")).isoformat()
    '2014-07-05T16:38:27+02:00'
    """
    return wall.local.replace(tzinfo=zone)


def offset_was_wrong(wall: WallClock, aware: datetime) -> bool:
    """Whether a written offset disagrees with the zone's offset at that time.

    >>> wall = parse_wall_clock("2014-07-05 16:38:27 +0100")
    >>> offset_was_wrong(wall, localize(wall, ZoneInfo("Europe/Paris")))
    True
    """
    return wall.written_offset is not None and wall.written_offset != aware.utcoffset()
