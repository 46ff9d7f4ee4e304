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

from provision.errors import EnvironmentProblem, UserError
from provision.facts.measured import build_profiles, read_profile
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
    """A calibration profile file (the loader build records go through too: provision.facts.measured)."""
    return read_profile(path)


def save_profile(profile: CalibrationProfile, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = profile.to_dict()
    data.pop("path", None)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def find_profile(
    k: KconfigFacts, tree: str, root: Path | None = None, history: Path | None = None
) -> tuple[CalibrationProfile | None, list[str]]:
    """The profile measured on this host for ``k``'s kernel version, config hash, compiler and arch:
    the newest recorded build's when there is one (a real build measures every unit and phase),
    else the newest calibration's. An OOM kill of an earlier build of the same config at fewer
    jobs is carried into it (so the next plan does not go back to a -j that was killed). Notes say
    why the profiles of this tree that do not match are not used."""
    directory = root or state_root()
    host = socket.gethostname()
    candidates: list[CalibrationProfile] = []
    others: list[str] = []
    if directory.is_dir():
        for path in sorted(directory.glob("*.json")):
            try:
                candidates.append(load_profile(path))
            except UserError as exc:
                others.append(f"calibration profile {path} is unreadable ({exc.message}): not used")
    try:
        builds = build_profiles(history)
    except EnvironmentProblem as exc:
        builds = []
        others.append(f"{exc.message}: no recorded build used")
    matching: list[CalibrationProfile] = []
    for profile in candidates + builds:
        what = f"build record {profile.path} ({profile.date[:10]})" if profile.from_build else f"calibration profile {profile.path}"
        same_tree = os.path.realpath(profile.tree) == os.path.realpath(tree)
        same_arch = not profile.arch or not k.arch or profile.arch == k.arch
        if profile.config_hash == k.config_hash and profile.compiler == k.compiler and same_arch:
            if profile.host != host:
                if same_tree:
                    others.append(f"{what} was measured on host {profile.host}: not used here")
                continue
            if profile.kernel_version != k.kernel_version:
                if same_tree:
                    others.append(f"{what} is for Linux {profile.kernel_version}, this tree is {k.kernel_version}: not used")
                continue
            matching.append(profile)
        elif same_tree and not profile.from_build:
            others.append(f"{what} is for another config or compiler ({_mismatch(profile, k)}): not used")
    if not matching:
        if any(p.from_build and os.path.realpath(p.tree) == os.path.realpath(tree) for p in builds):
            others.append(
                f"the builds recorded for this tree are of another config, compiler or arch (this plan's config "
                f"hash {k.config_hash[:12]}): their figures are not used"
            )
        return None, others
    built = [p for p in matching if p.from_build]
    chosen = max(built or matching, key=lambda p: p.date)
    killed = [p for p in built if p.oom_jobs and (not chosen.oom_jobs or p.oom_jobs < chosen.oom_jobs)]
    if killed:
        worst = min(killed, key=lambda p: p.oom_jobs)
        chosen = dataclasses.replace(
            chosen, oom_jobs=worst.oom_jobs, oom_phase=worst.oom_phase, oom_date=worst.oom_date or worst.date,
            oom_budget_bytes=worst.oom_budget_bytes,
        )
    return chosen, []


def _mismatch(profile: CalibrationProfile, k: KconfigFacts) -> str:
    why = []
    if profile.config_hash != k.config_hash:
        why.append(f"config {profile.target} hash {profile.config_hash[:12]}, not {k.config_hash[:12]}")
    if profile.compiler != k.compiler:
        why.append(f"compiler '{profile.compiler}', not '{k.compiler}'")
    if profile.arch and k.arch and profile.arch != k.arch:
        why.append(f"arch {profile.arch}, not {k.arch}")
    return "; ".join(why)
