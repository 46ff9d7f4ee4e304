"""Reading files that come from outside: a size bound on every read, JSON without NaN, huge
numbers or duplicate surprises, and paths made absolute against a working directory that may be gone.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

from provision.errors import UserError
from provision.units import MIB

#: The most kprov reads from one file a user names: a facts file is a few KiB, Ansible's setup
#: facts of a big host ~200 KiB, an allyesconfig .config ~300 KiB.
MAX_FILE_BYTES = 16 * MIB


#: Digits an integer in a facts file may have: 2^63 has 19. Python's json would otherwise build
#: 4,000-digit integers (and refuse beyond 4,300 with a ValueError of its own).
MAX_JSON_DIGITS = 20


def read_bounded(path: str | os.PathLike, what: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file ``path``; UserError naming ``what`` for anything else.

    A FIFO, a device (``/dev/zero``), a directory or a socket is refused before it is read: the
    type is checked with stat before opening (opening some devices has effects), and the open
    uses O_NONBLOCK so a file swapped for a FIFO in between cannot block; fstat then decides.
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise UserError(f"{what}: not a regular file")
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise UserError(f"{what}: cannot read it ({exc.strerror or exc})") from None
    except ValueError:  # a NUL byte in the path
        raise UserError(f"{what}: not a valid path") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UserError(f"{what}: not a regular file")
        size_text = f"{limit // MIB} MiB" if limit % MIB == 0 else f"{limit} bytes"
        too_big = UserError(f"{what}: larger than {size_text}, not a file kprov reads")
        if info.st_size > limit:
            raise too_big
        chunks, size = [], 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # it grew while being read
                raise too_big
        return b"".join(chunks)
    except OSError as exc:
        raise UserError(f"{what}: cannot read it ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def read_text(path: str | os.PathLike, what: str, limit: int = MAX_FILE_BYTES) -> str:
    """:func:`read_bounded` as UTF-8 text (a byte-order mark is allowed); anything else is refused."""
    data = read_bounded(path, what, limit)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"{what}: not UTF-8 text (byte {exc.start})") from None


def _json_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_JSON_DIGITS:
        raise UserError(f"a {digits}-digit integer (at most {MAX_JSON_DIGITS} digits)")
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise UserError(f"{text[:20]} is out of range for a number")
    return value


def _json_constant(name: str) -> float:
    raise UserError(f"{name} is not a number JSON allows")


def parse_json(text: str, what: str) -> object:
    """JSON text -> data, refusing what Python's json accepts but a facts file must not contain:
    NaN and Infinity, numbers that overflow, integers of more than :data:`MAX_JSON_DIGITS` digits,
    and nesting deeper than the interpreter's stack."""
    try:
        return json.loads(
            text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
        )
    except json.JSONDecodeError as exc:
        raise UserError(f"{what}: not JSON ({exc.msg} at line {exc.lineno})") from None
    except UserError as exc:
        raise UserError(f"{what}: {exc.message}") from None
    except RecursionError:
        raise UserError(f"{what}: nested too deeply to be facts") from None
    except ValueError as exc:  # what json raises past the checks above, e.g. a lone surrogate
        raise UserError(f"{what}: not JSON ({exc})") from None


def current_dir() -> str:
    try:
        return os.getcwd()
    except FileNotFoundError:
        raise UserError(
            "the current directory no longer exists: cd to a directory that does and run kprov again"
        ) from None


def absolute_path(path: str | os.PathLike) -> Path:
    """``path`` (``~`` expanded) made absolute without touching the file system beyond the cwd."""
    expanded = Path(os.path.expanduser(str(path)))
    return expanded if expanded.is_absolute() else Path(current_dir()) / expanded
