"""``kprov cache status``: where this host's ccache lives, whether the remote store answers (and
why not: refused, timed out, a refused credential), which paths share hits, and whether the
current directory's tree is one of them (under the base_dir ccache uses here).

The config file is opened only when it is a regular file (a FIFO would block the open forever);
what it says (a timeout, the store's URL) and what ccache, the plan or the store answer is foreign
text: it is shown with control characters escaped, in the text output and in the JSON's values
alike, so neither a terminal nor a ``jq -r`` of the JSON ever acts on it.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
from typing import Any

from provision.errors import UserError, escaped
from provision.facts.cache_probe import (
    PROBE_DEADLINE_S,
    ccache_printed_size,
    ccache_stats,
    parse_remote_conf,
    probe,
    run_ccache,
)
from provision.facts.files import read_bounded
from provision.planner import shared_cache as cache_rules
from provision.rules.names import path_under
from provision.units import human_bytes


def _plan_sharing(path: str = "/etc/kprov/plan.json") -> list[str]:
    """The plan's ``ccache.sharing`` lines; none when there is no plan. A plan that is not a
    regular file, too big, or not the shape kprov writes is no plan either, said in one line (with
    the generic advice) instead of its lines; what it holds is never shown."""
    if not os.path.lexists(path):
        return []
    try:
        data = json.loads(read_bounded(path, path, _MAX_PLAN_BYTES).decode("utf-8"))
        ccache = data.get("ccache", {}) if isinstance(data, dict) else None
        sharing = ccache.get("sharing", []) if isinstance(ccache, dict) else None
        if not isinstance(sharing, list) or not all(isinstance(x, str) for x in sharing):
            raise ValueError("ccache.sharing is not a list of strings")
        return list(sharing)
    except UserError as exc:
        why = str(exc).removeprefix(f"{path}: ")
    except (RecursionError, TypeError, KeyError, ValueError, AttributeError):
        why = "not a plan kprov wrote"
    return [f"{path} ignored ({why}): no plan; {GENERIC_SHARING}"]


#: The most of /etc/kprov/plan.json read (kprov writes a few KiB).
_MAX_PLAN_BYTES = 1 << 20


#: The most of the config file read: the role writes a few lines.
MAX_CONFIG_BYTES = 65536


_KINDS = {
    stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory", stat.S_IFSOCK: "a socket",
}


class NotRegularFile(OSError):
    """The config path names something that is not a regular file."""


def read_config(path: str) -> str:
    """The client config file's text. Opened without blocking (a FIFO with no writer, a tty) and
    read only when it is a regular file; the descriptor stays non-blocking, so a file that has
    nothing to say yet (``/proc/kmsg``) is an error, not a wait."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"not a regular file ({_KINDS.get(stat.S_IFMT(mode), 'not a file')})")
        data = b""
        while len(data) < MAX_CONFIG_BYTES:
            chunk = os.read(fd, MAX_CONFIG_BYTES - len(data))
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    return data.decode("ascii")


def _inert(value: Any) -> Any:
    """Foreign text as kprov shows it: control characters escaped. Other values stay as they are."""
    return escaped(value) if isinstance(value, str) else value


def status(config_path: str | None = None, timeout: float = PROBE_DEADLINE_S, plan_path: str = "/etc/kprov/plan.json",
           cwd: str | None = None) -> dict[str, Any]:
    """What ``kprov cache status`` shows, as data (no secret in it; foreign text escaped)."""
    out: dict[str, Any] = {}
    values = (run_ccache(["-k", "cache_dir", "-k", "max_size", "-k", "base_dir", "-k", "hash_dir"]) or "").splitlines()
    stats = ccache_stats()
    size = stats.get("cache_size_kibibyte", 0) * 1024
    out["local"] = {
        "dir": _inert(values[0]) if values else None,
        "max_size": _inert(values[1]) if len(values) > 1 else None,
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
        text = read_config(path)
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
                probe={"state": p.state, "detail": _inert(p.detail),
                       "milliseconds": None if p.milliseconds is None else round(p.milliseconds, 1)},
            )
        elif "note" not in store:
            store["note"] = f"{path} has no remote_storage line"
    out["store"] = {key: _inert(value) for key, value in store.items()}
    out["store"]["stats"] = remote_stats
    out["sharing"] = [_inert(line) for line in _plan_sharing(plan_path)]
    out["tree"] = tree_coverage(cwd, values[2] if len(values) > 2 else None, values[3] if len(values) > 3 else None)
    return out


def kernel_tree(start: str) -> str | None:
    """The kernel tree ``start`` is in: the nearest directory at or above it with a top Makefile,
    Kconfig and Kbuild, or an O= directory's ``source`` link (its tree). None outside a tree."""
    path = os.path.realpath(start)
    while True:
        source = os.path.join(path, "source")
        if os.path.islink(source) and os.path.isfile(os.path.join(path, "Makefile")):
            return os.path.realpath(source)
        if all(os.path.isfile(os.path.join(path, f)) for f in ("Makefile", "Kconfig", "Kbuild")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def tree_coverage(cwd: str | None, base_dir: str | None, hash_dir: str | None) -> dict[str, Any]:
    """Whether the current directory's tree shares hits with other trees: its real path under the
    base_dir ccache uses here (this environment's CCACHE_BASEDIR, else its configuration)."""
    here = cwd or os.getcwd()
    tree = kernel_tree(here)
    path = tree or os.path.realpath(here)
    base = base_dir.strip() if base_dir and base_dir.strip() else None
    return {
        "path": _inert(path),
        "kernel_tree": tree is not None,
        "base_dir": _inert(base),
        "hash_dir": None if hash_dir is None else hash_dir.strip() == "true",
        "covered": base is not None and path_under(path, base),
    }


def render_tree(tree: dict[str, Any]) -> str:
    """One line: is the current directory's tree covered, and what to do when it is not."""
    path, base = escaped(tree["path"]), tree["base_dir"]
    what = "this tree" if tree["kernel_tree"] else "this directory (not in a kernel tree)"
    if base is None:
        line = (f"{what}: {path}: ccache has no base_dir here, so its absolute paths are hashed and only a tree at "
                "the same path shares its hits; kprov apply sets one for every user")
    elif tree["covered"]:
        line = (f"{what}: {path} is under base_dir {escaped(base)}: it shares hits with the other trees under it "
                "whose O= lies the same way from the tree")
    else:
        quoted = shlex.quote(tree["path"])
        line = (f"{what}: {path} is not under base_dir {escaped(base)}: its builds share no hits with other trees; "
                f"build it with `kprov build --tree {escaped(quoted)}` or after eval \"$(kprov env --tree {escaped(quoted)})\"")
    if tree["hash_dir"]:
        line += "; hash_dir is true, so a build with debug info hashes its O= as well"
    return line


def render_status(data: dict[str, Any]) -> str:
    """The text of ``kprov cache status``. Every value is shown through ``escaped`` even though
    :func:`status` already escaped it: data handed in from elsewhere is no less foreign."""
    local = {k: _inert(v) for k, v in data["local"].items()}
    store = {k: _inert(v) for k, v in data["store"].items()}
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
        p = {k: _inert(v) for k, v in store["probe"].items()}
        ms = "" if p["milliseconds"] is None else f" in {p['milliseconds']:.1f} ms"
        answer = {
            "answers": "answers", "refused": "REFUSED", "timeout": "TIMED OUT", "auth-failed": "AUTH FAILED",
            "forbidden": "FORBIDDEN", "unreachable": "UNREACHABLE", "error": "ERROR",
        }.get(p["state"], "ERROR")
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
        lines.append(f"hits: {escaped(line)}")
    if data.get("tree"):
        lines.append(render_tree({k: _inert(v) for k, v in data["tree"].items()}))
    return "\n".join(lines) + "\n"


GENERIC_SHARING = (
    "hits cross hosts only between builders whose autoconf.h is the same (CONFIG_CC_VERSION_TEXT, as, ld "
    "and pahole versions), with the same config, KBUILD_BUILD_*, and paths relative to base_dir"
)
