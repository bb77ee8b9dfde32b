"""Reading a stream of JSON lines, shared by the stream parsers: one JSON value per line,
lines that are not JSON counted (the first one and whether the last one was, for a stream
cut off mid-line), a document spread over several lines (gemini's `-o json`) put back
together; and `read_all`, which runs a parser over a finished run's whole stdout."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.adapters.base import ParsedOutput, StreamParser
    from orchestrator.progress.events import Event

JsonObject = dict[str, Any]

MAX_DOCUMENT = 8 * 1024 * 1024  # a document over several lines: at most this much is kept


class JsonLines:
    """The JSON objects of each line fed (an object, or an array of objects, per line).

    With `documents`, a line that opens a JSON value at its first column without closing
    it starts a document that runs until a line closing it at the first column (a JSON
    document printed with indentation) or `finish`. With `strict`, every line is decoded
    (a number or a string is JSON too); else only lines that open an object or array.
    """

    def __init__(self, *, documents: bool = False, strict: bool = False) -> None:
        self.documents = documents
        self.strict = strict
        self.lines = 0
        self.bad = 0  # non-empty lines that are not JSON
        self.first_bad: tuple[int, str] | None = None  # (line number, why)
        self.last_bad = False  # the last non-empty line was not JSON (cut off mid-line?)
        self._pending: list[bytes] = []
        self._pending_size = 0

    def objects(self, line: bytes) -> list[JsonObject]:
        self.lines += 1
        text = line.strip()
        if not text:
            return []
        if self._pending:
            return self._continue(line, text)
        if not self.strict and text[:1] not in (b"{", b"["):
            self._bad("not JSON")
            return []
        try:
            value = json.loads(text)
        except ValueError as exc:
            if self.documents and line[:1] in (b"{", b"["):
                self._pending, self._pending_size = [line], len(line)
                return []
            self._bad(getattr(exc, "msg", "not JSON"))
            return []
        self.last_bad = False
        return _objects_in(value)

    def _continue(self, line: bytes, text: bytes) -> list[JsonObject]:
        """A line of a document begun earlier, or a new standalone line that ends it."""
        if line[:1] in (b"{", b"[") and (alone := _decoded(text)) is not None:
            self._drop_pending()  # a complete line of its own: the document was broken
            self.last_bad = False
            return _objects_in(alone)
        self._pending_size += len(line)
        if self._pending_size > MAX_DOCUMENT:
            self._drop_pending()
            return []
        self._pending.append(line)
        if line[:1] not in (b"}", b"]"):
            return []
        whole = _decoded(b"\n".join(self._pending))
        if whole is None:
            return []
        self._pending, self._pending_size = [], 0
        self.last_bad = False
        return _objects_in(whole)

    def finish(self) -> list[JsonObject]:
        """The end of the stream: a document still open is read as it stands."""
        if not self._pending:
            return []
        whole = _decoded(b"\n".join(self._pending))
        if whole is None:
            self._drop_pending()
            return []
        self._pending, self._pending_size = [], 0
        self.last_bad = False
        return _objects_in(whole)

    def _drop_pending(self) -> None:
        self._pending, self._pending_size = [], 0
        self._bad("an unfinished JSON document")

    def _bad(self, why: str) -> None:
        self.bad += 1
        self.last_bad = True
        if self.first_bad is None:
            self.first_bad = (self.lines, why)


def _decoded(text: bytes) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _objects_in(value: Any) -> list[JsonObject]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []


def read_all(
    parser: StreamParser, stdout: bytes, stderr: bytes, exit_code: int | None
) -> ParsedOutput:
    """Run `parser` over a finished run's stdout, line by line, as the live run fed it;
    a last line without its newline is fed too (a stream cut off mid-line)."""
    lines = stdout.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    for line in lines:
        parser.feed(line)
    return parser.result(stderr, exit_code)


def dict_at(value: Any, *keys: str) -> JsonObject:
    """`value[k1][k2]...` when each step is a dict, else {}."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else {}


def text_at(value: Any, key: str) -> str | None:
    found = value.get(key) if isinstance(value, dict) else None
    return found if isinstance(found, str) else None


class ObjectStream:
    """A stream parser that keeps its first line (for a message when no event comes) and
    hands each JSON object of a line to `_take`; `lines` and `head` are set by the class."""

    lines: JsonLines
    head: bytes

    def feed(self, line: bytes) -> list[Event]:
        if not self.head and line.strip():
            self.head = line[:400]
        events: list[Event] = []
        for obj in self.lines.objects(line):
            events += self._take(obj)
        return events

    def _take(self, obj: JsonObject) -> list[Event]:
        raise NotImplementedError
