"""``kprov cache status``: where this host's ccache lives, whether the remote store answers (and
why not: refused, timed out, a refused credential), and which paths share hits.
"""

from __future__ import annotations

import json
import os
from typing import Any

from provision.errors import UserError
from provision.facts.cache_probe import (
    PROBE_TIMEOUT_S,
    ccache_printed_size,
    ccache_stats,
    parse_remote_conf,
    probe,
    run_ccache,
)
from provision.planner import shared_cache as cache_rules
from provision.units import human_bytes


def _plan_sharing(path: str = "/etc/kprov/plan.json") -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        return [str(x) for x in data.get("ccache", {}).get("sharing", [])]
    except (OSError, ValueError, AttributeError):
        return []


def status(config_path: str | None = None, timeout: float = PROBE_TIMEOUT_S, plan_path: str = "/etc/kprov/plan.json") -> dict[str, Any]:
    """What ``kprov cache status`` shows, as data (no secret in it)."""
    out: dict[str, Any] = {}
    values = (run_ccache(["-k", "cache_dir", "-k", "max_size"]) or "").splitlines()
    stats = ccache_stats()
    size = stats.get("cache_size_kibibyte", 0) * 1024
    out["local"] = {
        "dir": values[0] if values else None,
        "max_size": values[1] if len(values) > 1 else None,
        "size_bytes": size,
        "files": stats.get("files_in_cache", 0),
        "hits": stats.get("local_storage_hit", 0),
        "misses": stats.get("local_storage_miss", 0),
        "available": bool(values),
        "fullness": None,
    }
    limit = ccache_printed_size(values[1]) if len(values) > 1 else None
    if limit:
        out["local"]["fullness"] = round(size / limit, 4)
        out["local"]["max_size_bytes"] = limit
    remote_stats = {k: stats.get(f"remote_storage_{k}", 0) for k in ("hit", "miss", "error", "timeout", "write")}
    path = config_path or os.environ.get("CCACHE_CONFIGPATH") or cache_rules.REMOTE_CONF
    store: dict[str, Any] = {"config": path, "configured": False}
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read(65536)
    except FileNotFoundError:
        store["note"] = f"{path} does not exist: this host uses no remote store"
    except PermissionError:
        store["note"] = (
            f"cannot read {path} (it holds the store's password: root and the build group only); "
            "run as root or as a member of the ccache group"
        )
    except (OSError, UnicodeDecodeError) as exc:
        store["note"] = f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}"
    else:
        try:
            line = parse_remote_conf(text, path)
        except UserError as exc:
            line = None
            store["note"] = str(exc)
        if line is not None:
            p = probe(line, timeout)
            store.update(
                configured=True,
                url=line.url,
                user=line.user,
                access="read" if line.read_only else "read and write",
                remote_only=line.only,
                connect_timeout_ms=line.attributes.get("connect-timeout"),
                operation_timeout_ms=line.attributes.get("operation-timeout"),
                probe={"state": p.state, "detail": p.detail,
                       "milliseconds": None if p.milliseconds is None else round(p.milliseconds, 1)},
            )
        elif "note" not in store:
            store["note"] = f"{path} has no remote_storage line"
    store["stats"] = remote_stats
    out["store"] = store
    out["sharing"] = _plan_sharing(plan_path)
    return out


def render_status(data: dict[str, Any]) -> str:
    local, store = data["local"], data["store"]
    lines = []
    if local["available"]:
        full = f" ({local['fullness']:.0%} full)" if local.get("fullness") is not None else ""
        lines.append(
            f"local cache: {local['dir']} {human_bytes(local['size_bytes'])} of "
            f"{human_bytes(local['max_size_bytes']) if local.get('max_size_bytes') else local['max_size']}{full}, "
            f"{local['files']} files; hits {local['hits']}, misses {local['misses']}"
        )
    else:
        lines.append("local cache: ccache did not answer (not installed?)")
    if store.get("configured"):
        p = store["probe"]
        ms = "" if p["milliseconds"] is None else f" in {p['milliseconds']:.1f} ms"
        answer = {
            "answers": "answers", "refused": "REFUSED", "timeout": "TIMED OUT", "auth-failed": "AUTH FAILED",
            "forbidden": "FORBIDDEN", "unreachable": "UNREACHABLE", "error": "ERROR",
        }[p["state"]]
        lines.append(f"store: {store['url']} as {store['user']} ({store['access']}): {answer}{ms}: {p['detail']}")
        lines.append(
            f"timeouts: connect {store['connect_timeout_ms'] or 'default'} ms, operation "
            f"{store['operation_timeout_ms'] or 'default'} ms" + ("; remote only" if store["remote_only"] else "")
        )
    else:
        lines.append(f"store: {store.get('note', 'none')}")
    s = store["stats"]
    lines.append(
        f"remote: hits {s['hit']}, misses {s['miss']}, errors {s['error']}, timeouts {s['timeout']}, writes {s['write']}"
    )
    for line in data["sharing"] or [GENERIC_SHARING]:
        lines.append(f"hits: {line}")
    return "\n".join(lines) + "\n"


GENERIC_SHARING = (
    "hits cross hosts only between builders whose autoconf.h is the same (CONFIG_CC_VERSION_TEXT, as, ld "
    "and pahole versions), with the same config, KBUILD_BUILD_*, and paths relative to base_dir"
)
