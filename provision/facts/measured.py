"""What was measured on this host's trees: ``kprov calibrate``'s profiles and ``kprov build``'s
records, read into one type (:class:`CalibrationProfile`) through one loader (:func:`parse_profile`).

A calibration profile is one JSON file (``$XDG_STATE_HOME/kprov/calibration/*.json``); the build
history is JSON lines (``$XDG_STATE_HOME/kprov/builds.jsonl``), each record carrying the profile of
its build under ``"profile"`` in the same format. Reading is bounded (the newest
:data:`MAX_HISTORY_BYTES` of the history) and a record whose profile does not validate is skipped:
a file anyone may have edited is read, never trusted.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path
from typing import Any

from provision.errors import EnvironmentProblem, UserError, escaped
from provision.facts.files import parse_json, read_text
from provision.model.facts import PROFILE_SCHEMA, CalibrationProfile

MAX_HISTORY_BYTES = 64 << 20
#: Profile schemas this kprov reads: 1 (calibrate's before builds wrote profiles) and the current one.
READABLE_SCHEMAS = (1, PROFILE_SCHEMA)


def history_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "kprov" / "builds.jsonl"


def parse_profile(data: Any, where: str = "") -> CalibrationProfile:
    """``data`` (a profile file's object, or a build record's ``"profile"``) as a profile of the
    current schema; one line of UserError for anything else, an unknown schema included."""
    if not isinstance(data, dict):
        raise UserError(f"{where + ': ' if where else ''}expected an object, got {type(data).__name__}")
    schema = data.get("schema", PROFILE_SCHEMA)
    if schema not in READABLE_SCHEMAS or isinstance(schema, bool):
        raise UserError(
            f"{where + ': ' if where else ''}profile schema {str(schema)[:20]} is not one this kprov reads "
            f"({', '.join(map(str, READABLE_SCHEMAS))}): measure again with kprov calibrate or kprov build"
        )
    return CalibrationProfile.from_dict(dict(data, schema=PROFILE_SCHEMA), where=where)


def read_profile(path: Path) -> CalibrationProfile:
    """A calibration profile file, with its path."""
    data = parse_json(read_text(path, f"profile {path}"), f"profile {path}")
    try:
        profile = parse_profile(data)
    except (TypeError, ValueError) as exc:
        raise UserError(f"profile {path}: wrong shape ({exc})") from None
    except UserError as exc:
        raise UserError(f"profile {path}: {exc.message}") from None
    return dataclasses.replace(profile, path=str(path))


def read_history_lines(path: Path | None = None) -> list[Any]:
    """The history's lines as JSON values, oldest first (None for a line that is not JSON, so
    that positions stay line numbers)."""
    path = path or history_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise EnvironmentProblem(f"cannot read the build history {escaped(str(path))}: {exc.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise EnvironmentProblem(f"the build history {escaped(str(path))} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        if st.st_size > MAX_HISTORY_BYTES:
            f.seek(st.st_size - MAX_HISTORY_BYTES)
            f.readline()
        data = f.read(MAX_HISTORY_BYTES)
    out = []
    for line in data.splitlines():
        try:
            out.append(json.loads(line))
        except (ValueError, RecursionError):
            out.append(None)
    return out


def build_profiles(path: Path | None = None) -> list[CalibrationProfile]:
    """The profiles of the recorded builds that carry one (a successful or OOM-killed build that
    compiled something), oldest first."""
    path = path or history_path()
    out = []
    for n, line in enumerate(read_history_lines(path), 1):
        if not isinstance(line, dict) or line.get("profile") is None:
            continue
        try:
            profile = parse_profile(line["profile"], f"build record {n}")
        except (UserError, TypeError, ValueError, RecursionError):
            continue
        out.append(dataclasses.replace(profile, path=f"{path}:{n}"))
    return out
