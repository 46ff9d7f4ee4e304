"""Calibration profiles on disk: where they live (``~/.local/state/kprov/calibration``), how they
are named (tree version, config hash, compiler), and finding the one that matches a plan.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
from pathlib import Path

from provision.errors import UserError
from provision.facts.files import parse_json, read_text
from provision.model.facts import CalibrationProfile, KconfigFacts


def state_root() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kprov" / "calibration"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kprov" / "calibrate"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")[:40] or "unknown"


def profile_path(k: KconfigFacts, root: Path | None = None) -> Path:
    return (root or state_root()) / f"{k.config_hash[:16]}-{slug(k.compiler)}.json"


def load_profile(path: Path) -> CalibrationProfile:
    data = parse_json(read_text(path, f"profile {path}"), f"profile {path}")
    try:
        profile = CalibrationProfile.from_dict(data, where="")
    except (TypeError, ValueError) as exc:
        raise UserError(f"profile {path}: wrong shape ({exc})") from None
    except UserError as exc:
        raise UserError(f"profile {path}: {exc.message}") from None
    return dataclasses.replace(profile, path=str(path))


def save_profile(profile: CalibrationProfile, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = profile.to_dict()
    data.pop("path", None)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def find_profile(k: KconfigFacts, tree: str, root: Path | None = None) -> tuple[CalibrationProfile | None, list[str]]:
    """The newest profile measured on this host for ``k``'s config hash and compiler; notes say
    why the profiles of this tree that do not match are not used."""
    directory = root or state_root()
    if not directory.is_dir():
        return None, []
    host = socket.gethostname()
    matching: list[CalibrationProfile] = []
    others: list[str] = []
    for path in sorted(directory.glob("*.json")):
        try:
            profile = load_profile(path)
        except UserError as exc:
            others.append(f"calibration profile {path} is unreadable ({exc.message}): not used")
            continue
        same_tree = os.path.realpath(profile.tree) == os.path.realpath(tree)
        if profile.config_hash == k.config_hash and profile.compiler == k.compiler:
            if profile.host != host:
                if same_tree:
                    others.append(f"calibration profile {path} was measured on host {profile.host}: not used here")
                continue
            if profile.kernel_version != k.kernel_version:
                if same_tree:
                    others.append(
                        f"calibration profile {path} is for Linux {profile.kernel_version}, this tree is "
                        f"{k.kernel_version}: not used"
                    )
                continue
            matching.append(profile)
        elif same_tree:
            why = []
            if profile.config_hash != k.config_hash:
                why.append(f"config {profile.target} hash {profile.config_hash[:12]}, not {k.config_hash[:12]}")
            if profile.compiler != k.compiler:
                why.append(f"compiler '{profile.compiler}', not '{k.compiler}'")
            others.append(
                f"calibration profile {path} is for another config or compiler ({'; '.join(why)}): not used"
            )
    if matching:
        return max(matching, key=lambda p: p.date), []
    return None, others
