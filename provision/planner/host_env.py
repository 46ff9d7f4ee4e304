"""The environment kprov writes for every user of a host: ``/etc/profile.d/kprov-kbuild.sh``.

Every login shell of every user sources that file, so it holds only what is true for every user
and every tree; the rest of ``kprov env`` belongs to one tree or one build and is set where the
tree is known (``kprov env --tree``, ``kprov build``):

- ``KBUILD_OUTPUT``, ``CCACHE_BASEDIR``: one tree's ``O=`` and base_dir. The host-wide base_dir is
  in ccache's own configuration (``/etc/ccache.conf``), which every ccache call reads, login
  shell or not.
- ``KCFLAGS``: the debug-info prefix map of one tree's base_dir; for every user, the map of the
  host-wide base_dir instead. ccache hashes the option's name (not its paths, with hash_dir
  false), so every build must carry a map, or none, for hits to cross.
- ``MAKEFLAGS``: ``-j`` reaches every ``make`` that reads it, kernel or not (a package's own
  build, another project's recursive make), and is sized for a kernel build's memory. Every user
  gets it as ``KPROV_MAKEFLAGS`` instead, which no make reads: ``make $KPROV_MAKEFLAGS ...`` for
  a kernel build; ``kprov build`` and ``eval "$(kprov env)"`` set ``MAKEFLAGS`` for theirs.
- ``ARCH``, ``CROSS_COMPILE``, ``LLVM`` of a cross build (``--arch``): kbuild reads them from the
  environment, so in every shell they would turn every user's native build into a cross build.
  They stay in ``KPROV_MAKE_ARGS`` (the make variables a kernel build passes on purpose) and in
  ``eval "$(kprov env)"``.
"""

from __future__ import annotations

from provision.model.plan import CcachePlan
from provision.planner.shared_cache import prefix_map

#: `kprov env` exports that belong to one tree or one build, never to /etc/profile.d.
PER_TREE_ENV = ("KBUILD_OUTPUT", "CCACHE_BASEDIR", "KCFLAGS", "MAKEFLAGS", "ARCH", "CROSS_COMPILE", "LLVM")


def host_env(env: dict[str, str], ccache: CcachePlan) -> dict[str, str]:
    """What every user's login shell gets, from what ``kprov env`` exports (``env``)."""
    out: dict[str, str] = {}
    for name, value in env.items():
        if name == "MAKEFLAGS":
            out["KPROV_MAKEFLAGS"] = value
        elif name not in PER_TREE_ENV:
            out[name] = value
    if ccache.enabled and not ccache.hash_dir and ccache.base_dir:
        out["KCFLAGS"] = prefix_map(ccache.base_dir)
    return out
