"""Reading files that others may have planted: regular files only, never a blocking open,
never an unbounded read, and names that always fit the filesystem.

Everything the daemon or a command reads from the work directory or the workspace goes
through here. An open never blocks (O_NONBLOCK: a FIFO opens at once and is then refused by
its type), a read stops at its limit whatever the file claims to be (a link to /dev/zero, a
40 GB sparse file), and `open_inside` checks the file it *opened*, not the name it looked
at, so a path swapped for a symlink between the check and the read cannot escape.

The open flags are POSIX and mean the same on Linux (WSL 2 too) and macOS; native Windows
is not supported (docs/platforms.md).
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

NAME_MAX = 255  # bytes in one name (ext4, xfs, btrfs, tmpfs; macOS's APFS: 255 characters)
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0) | os.O_CLOEXEC


class NotRegular(OSError):
    """The path is not a regular file (a FIFO, a device, a socket, a directory, a link)."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(f"{path.name} is {what}")
        self.what = what


class TooLarge(OSError):
    """The file is larger than the reader's limit (nothing was read)."""

    def __init__(self, path: Path, size: int, limit: int) -> None:
        super().__init__(f"{path} is {size} bytes (the limit is {limit})")
        self.size = size
        self.limit = limit


@dataclass(frozen=True)
class Opened:
    """A file opened for reading, with its fstat."""

    fd: int
    info: os.stat_result


def kind_of(mode: int) -> str:
    """What a non-regular file is, in a word for messages."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def open_regular(path: Path, *, follow: bool = False) -> Opened:
    """Open `path` for reading without blocking; NotRegular unless it is a regular file.

    With `follow=False` a symlink as the last component is refused (O_NOFOLLOW)."""
    flags = _OPEN_FLAGS | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:  # O_NOFOLLOW on a symlink
            raise NotRegular(path, "a symbolic link") from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise NotRegular(path, kind_of(info.st_mode))
    return Opened(fd, info)


def _real_path(fd: int) -> Path | None:
    """The path the kernel has for an open descriptor (Linux), or None."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    return Path(target)


def read_fd(fd: int, limit: int) -> bytes:
    """At most `limit` bytes from `fd`, from where it stands."""
    chunks = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(1 << 20, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_regular(path: Path, limit: int, *, follow: bool = False) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (checked before reading, and
    the read is bounded too: a file that grows meanwhile is cut, then refused)."""
    opened = open_regular(path, follow=follow)
    try:
        if opened.info.st_size > limit:
            raise TooLarge(path, opened.info.st_size, limit)
        data = read_fd(opened.fd, limit + 1)
    finally:
        os.close(opened.fd)
    if len(data) > limit:
        raise TooLarge(path, len(data), limit)
    return data


def read_head(path: Path, size: int) -> bytes | None:
    """The first `size` bytes of a regular file; None when it is missing or not regular."""
    try:
        opened = open_regular(path)
    except OSError:
        return None
    try:
        return read_fd(opened.fd, size)
    finally:
        os.close(opened.fd)


def open_inside(root: Path, relative: str) -> Opened:
    """Open a workspace file named by a relative path, then check what was opened: it must
    be a regular file whose real path lies inside `root` (already resolved).

    Raises PermissionError when the opened file is outside `root` (a symlink, or one swapped
    in after any earlier check), NotRegular for FIFOs and devices."""
    opened = open_regular(root / relative, follow=True)
    real = _real_path(opened.fd)  # looked up only here: the other readers need no path
    if real is None:  # no /proc: fall back to resolving the name (a narrow race remains)
        real = (root / relative).resolve()
    if not real.is_relative_to(root) or real.name.endswith(" (deleted)"):
        os.close(opened.fd)
        raise PermissionError(0, f"{relative} is outside the workspace", str(real))
    return opened


def fit_name(stem: str, tail: str = "", limit: int = NAME_MAX) -> str:
    """`stem + tail`, with `stem` shortened (at a character boundary, plus a short hash of
    the whole, so shortened names stay distinct) when it would pass `limit` bytes."""
    whole = stem + tail
    encoded = os.fsencode(whole)
    if len(encoded) <= limit:
        return whole
    digest = hashlib.sha256(encoded).hexdigest()[:10]
    room = limit - len(os.fsencode(tail)) - len(digest) - 1
    return f"{cut_bytes(stem, room)}~{digest}{tail}"


def cut_bytes(text: str, limit: int) -> str:
    """The longest prefix of `text` whose file-system encoding fits in `limit` bytes (never
    half a UTF-8 character)."""
    encoded = os.fsencode(text)
    if len(encoded) <= limit:
        return text
    cut = encoded[: max(limit, 0)]
    try:
        cut.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.end == len(cut):  # a character cut in half at the end: drop its bytes
            cut = cut[: exc.start]
    return os.fsdecode(cut)
