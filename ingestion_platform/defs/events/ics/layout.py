"""The text of a feed as lines: physical lines, unfolded content lines and VEVENT blocks.

icalendar does not say where in the text a component or a complaint comes from; this module does, so that
every reject can name its line and carry the raw VEVENT text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import icalendar

from ingestion_platform.defs.events.ics.values import text

_CONTENT_LINE = re.compile(r"^[A-Za-z0-9-]+[;:]")
_LINE_BREAK = re.compile(r"\r\n|\n|\r")


@dataclass
class Block:
    """One ``BEGIN:VEVENT`` … ``END:VEVENT`` in the text."""

    line: int
    uid: str | None = None
    props: dict[str, int] = field(default_factory=dict)  # property name → line of its first occurrence
    text: str | None = None  # the raw lines, BEGIN to END (None while the block is not closed)


@dataclass
class Layout:
    physical: list[str]
    content: list[tuple[int, str]]  # (physical line number of the first part, unfolded content line)
    blocks: list[Block]
    _cursor: int = field(default=0, init=False, repr=False)  # blocks before it are matched to parsed VEVENTs

    @classmethod
    def of(cls, text: str) -> Layout:
        physical = _LINE_BREAK.split(text)
        if physical and physical[-1] == "":
            physical.pop()
        content: list[tuple[int, str]] = []
        for number, line in enumerate(physical, start=1):
            if line[:1] in (" ", "\t") and content:
                start, previous = content[-1]
                content[-1] = (start, previous + line[1:])
            else:
                content.append((number, line))
        return cls(physical, content, _blocks(physical, content))

    def block_of(self, event: icalendar.Event) -> Block | None:
        """The block of the next parsed VEVENT (icalendar keeps the order of the text), checked by UID."""
        uid = text(event.get("UID"))
        if self._cursor < len(self.blocks):
            block = self.blocks[self._cursor]
            if (block.uid or None) == uid:
                self._cursor += 1
                return block
        for position in range(self._cursor, len(self.blocks)):
            if uid is not None and self.blocks[position].uid == uid:
                self._cursor = position + 1
                return self.blocks[position]
        return None

    def locate_error(self, message: str) -> int | None:
        """Best guess of the line a parser complaint is about."""
        quoted = re.findall(r"'([^']*)'", message) + re.findall(r'"([^"]*)"', message)
        for token in quoted:
            for number, line in self.content:
                if token and line.strip() == token.strip():
                    return number
        for number, line in self.content:
            if line.strip(" \t") and not _CONTENT_LINE.match(line):
                return number
        tokens = [t for t in quoted if len(t.strip()) >= 4]
        tokens += re.findall(r"[+-]\d{3,}|\d{6,}T?\d*Z?", message)
        for token in tokens:
            for number, line in self.content:
                if token in line:
                    return number
        return None

    def structure_problem(self) -> tuple[str, int | None]:
        """Why no complete VCALENDAR came out of a text icalendar accepted."""
        stack: list[tuple[str, int]] = []
        seen_calendar = False
        for number, line in self.content:
            name = content_name(line)
            value = line.split(":", 1)[1].strip().upper() if ":" in line else ""
            if name == "BEGIN":
                seen_calendar = seen_calendar or value == "VCALENDAR"
                stack.append((value, number))
            elif name == "END":
                if not stack or stack[-1][0] != value:
                    expected = f"END:{stack[-1][0]} for line {stack[-1][1]}" if stack else "no open component"
                    return f"END:{value} does not match ({expected})", number
                stack.pop()
        if stack:
            value, number = stack[0]
            return f"BEGIN:{value} is never closed (no END:{value})", number
        if not seen_calendar:
            return "no BEGIN:VCALENDAR found", None
        return "no complete VCALENDAR found", None


def blocks_text(blocks: Iterable[Block | None]) -> str | None:
    """The raw text of these VEVENT blocks (None when none is known)."""
    return "\r\n".join(block.text for block in blocks if block and block.text) or None


def content_name(line: str) -> str | None:
    match = _CONTENT_LINE.match(line)
    return match.group(0)[:-1].upper() if match else None


def _blocks(physical: list[str], content: list[tuple[int, str]]) -> list[Block]:
    blocks: list[Block] = []
    depth = 0  # nesting below the current VEVENT (VALARM …)
    current: Block | None = None
    for number, line in content:
        name = content_name(line)
        value = line.split(":", 1)[1].strip() if ":" in line else ""
        if name == "BEGIN" and current is None and value.upper() == "VEVENT":
            current = Block(number)
            blocks.append(current)
        elif current is not None and name == "BEGIN":
            depth += 1
        elif current is not None and name == "END":
            if depth:
                depth -= 1
            else:
                current.text = "\r\n".join(physical[current.line - 1 : number])
                current = None
        elif current is not None and depth == 0 and name:
            current.props.setdefault(name, number)
            if name == "UID" and current.uid is None:
                current.uid = value
    return blocks
