"""The rejects of one feed, as the platform's :class:`~ingestion_platform.lib.errors.Reject`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ingestion_platform.defs.events.ics.layout import Block, blocks_text
from ingestion_platform.defs.events.ics.values import clean
from ingestion_platform.lib.errors import RecordError, Reject


class Rejects:
    """Collects the rejects of one feed; their errors name the feed, the UID and the property or line."""

    def __init__(self, feed: str) -> None:
        self.feed = feed
        self.items: list[Reject] = []
        self.generated_uids: set[str] = set()  # UIDs we made up for VEVENTs without one
        self._names: Counter[str] = Counter()  # dead-letter names given so far

    def add(
        self,
        reason: str,
        *,
        dropped: bool,
        uid: str | None = None,
        prop: str | None = None,
        line: int | None = None,
        blocks: Sequence[Block | None] = (),
    ) -> None:
        """``dropped``: the event (series, calendar) produced no rows; else a value was not taken as written.

        ``field`` is the property, else ``line N``; with a property the line is named in the message.
        """
        notes = [f"line {line}"] if line is not None and prop else []
        if uid in self.generated_uids:
            notes.append("the VEVENT has no UID")
        reason = clean(reason, limit=1000)
        error = RecordError(
            f"{', '.join(notes)}: {reason}" if notes else reason,
            request=self.feed,
            record=f"VEVENT UID {uid}" if uid else None,
            field=prop or (f"line {line}" if line is not None else None),
        )
        self.items.append(Reject(error, record=blocks_text(blocks), dropped=dropped, name=self._name(uid, dropped)))

    def prop(
        self,
        uid: str | None,
        block: Block | None,
        prop: str,
        reason: str,
        *,
        series: Sequence[Block | None] | None = None,
    ) -> None:
        """A reject about one property of a VEVENT; given ``series`` (its blocks), the whole series was dropped."""
        line = block.props.get(prop) if block else None
        if line is None and block is not None:
            line = block.line
        dropped = series is not None
        self.add(reason, dropped=dropped, uid=uid, prop=prop, line=line, blocks=series if dropped else [block])

    def _name(self, uid: str | None, dropped: bool) -> str | None:
        """``uid_<UID>``; a second dead letter of the same UID in this feed gets ``_2`` (and so on)."""
        if not uid:
            return None
        name = f"uid_{uid}"
        if not dropped:
            return name
        self._names[name] += 1
        count = self._names[name]
        return f"{name}_{count}" if count > 1 else name
