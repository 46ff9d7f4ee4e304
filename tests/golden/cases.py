"""The golden cases: which host, which switches, which outputs.

Each case runs ``kprov plan`` (text, ``--json``, ``--yaml``) and ``kprov env`` on a facts file, in
process; a case whose switches are refused records its one-line error and exit code instead. The
fleet cases plan an inventory's hosts (a distcc farm; a shared compile cache with its store) as
``kprov plan -i`` does, from gathered facts, and record the table and the JSON.
"""

from __future__ import annotations

FIXTURE_HOSTS = (
    "alpine-3.20", "arch", "container-4c-4g-on-32c", "debian12-2c-24g", "fedora-40", "laptop-8c-16g",
    "opensuse-tumbleweed", "rpi4-4g", "vps-1cpu-2g", "workstation-64c-256g",
)
SYNTHETIC_HOSTS = (
    "board-4c-512m", "tiny-1c-1g-noswap", "cgroup-2g-on-24g", "quota-2.5-on-8c", "kprov-zram-active",
    "many-128c-512g", "clang-lld-16c-32g", "fedora-8g-swap", "arch-6c-affinity-2", "alpine-2c-3g-container",
)

GOALS: dict[str, tuple[str, ...]] = {
    "default": (),
    "allmod-clang-thin": ("--target", "allmodconfig", "--compiler", "clang", "--lto", "thin"),
    "btf": ("--debug-info", "btf"),
    "dwarf-allyes": ("--target", "allyesconfig", "--debug-info", "dwarf"),
    "jobs3-load2": ("--jobs", "3", "--load", "2"),
    "distcc-client": ("--distcc-hosts", "10.0.0.2/8", "--distcc-hosts", "b3:3633/4",
                      "--host-entry", "10.0.0.2=b2,b2.lab", "--host-entry", "10.0.0.3=b3"),
    "distcc-server": ("--distcc-server", "--allow", "10.0.0.0/24", "--allow", "10.0.1.7",
                      "--listen", "10.0.0.5"),
    "cache-store": ("--ccache-server", "--listen", "10.0.0.5", "--allow", "10.0.0.0/24",
                    "--ccache-client", "b1:write", "--ccache-client", "b2", "--ccache-backend", "redis"),
    "zram-forced": ("--zram", "--zram-percent", "80", "--zram-algorithm", "lzo", "--no-ccache"),
    "private-keep4": ("--ccache-private", "--builds-to-keep", "4", "--for-other-machine"),
    "tinyconfig-size": ("--target", "tinyconfig", "--ccache-size", "2G", "--build-dir", "/srv/kbuild"),
}

# every host with the default goals; the other goals on hosts where they mean something different
CASES: list[tuple[str, str]] = [(host, "default") for host in FIXTURE_HOSTS + SYNTHETIC_HOSTS]
CASES += [(host, goals) for goals in GOALS if goals != "default" for host in (
    "debian12-2c-24g", "board-4c-512m", "workstation-64c-256g", "fedora-40", "container-4c-4g-on-32c",
)]
CASES += [("tiny-1c-1g-noswap", "btf"), ("kprov-zram-active", "btf"), ("quota-2.5-on-8c", "jobs3-load2"),
          ("cgroup-2g-on-24g", "allmod-clang-thin"), ("many-128c-512g", "allmod-clang-thin")]

OUTPUTS: dict[str, tuple[str, ...]] = {
    "txt": ("plan",),
    "json": ("plan", "--json"),
    "yaml": ("plan", "--yaml"),
    "env": ("env",),
}
