"""Every number the planner uses, in one table, each with where it comes from.

The planner holds no magic numbers: it reads the names defined here. Each constant is registered in
:data:`TABLE` with its source, which starts with one of

* ``measured:`` a figure measured on the reference machine kind (``REFERENCE.md`` section named),
* ``published:`` a figure from documentation, a man page or a peer tool (named),
* ``estimate:`` not measured yet; the value is chosen to be conservative and the source says why.

When a measurement disagrees with an estimate here, replace the value and its source together.
This module is pure data: no I/O, no imports beyond the standard library's typing helpers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MIB = 1 << 20
GIB = 1 << 30


@dataclass(frozen=True)
class Constant:
    name: str
    value: Any
    source: str


#: name -> Constant: the single table (``kprov`` and the tests read it, e.g. to print sources).
TABLE: dict[str, Constant] = {}


def _k(name: str, value: Any, source: str) -> Any:
    if name in TABLE:
        raise ValueError(f"calibration constant {name} defined twice")
    TABLE[name] = Constant(name, value, source)
    return value


def source_of(name: str) -> str:
    return TABLE[name].source


# --------------------------------------------------------------------------- target classes

#: Config targets grouped by how heavy their builds are. ``olddefconfig`` is classed by the
#: tree's .config (a distro config with thousands of modules is not a defconfig).
TARGET_CLASS = _k(
    "TARGET_CLASS",
    {
        "tinyconfig": "tiny",
        "allnoconfig": "tiny",
        "defconfig": "default",
        "localmodconfig": "local",
        "olddefconfig": "default",
        "allmodconfig": "all",
        "allyesconfig": "all",
    },
    "published: kernel Makefile config targets; REFERENCE.md §7 (localmodconfig keeps only loaded "
    "modules, all*config build everything)",
)
DISTRO_CONFIG_MIN_MODULES = _k(
    "DISTRO_CONFIG_MIN_MODULES",
    1000,
    "estimate: distro configs enable several thousand =m options, defconfigs and localmodconfig "
    "a few hundred at most; 1000 separates the two with room on both sides",
)

# --------------------------------------------------------------------------- compile memory

PER_JOB_MIB = _k(
    "PER_JOB_MIB",
    {"tiny": 102, "default": 160, "local": 160, "distro": 192, "all": 320},
    "measured: REFERENCE.md §1 cc1 peak RSS p99, tinyconfig 102 MiB, defconfig 155 MiB (rounded "
    "to 160). estimate: local = default (same per-file work, fewer files); distro 192 and all "
    "320 (2x defconfig p99, above its 256 MiB max) because more options enlarge every unit",
)
COMPILER_MEMORY_FACTOR = _k(
    "COMPILER_MEMORY_FACTOR",
    {"gcc": 1.0, "clang": 1.25},
    "estimate: clang unmeasured on kernel code; +25% over gcc to stay on the safe side",
)
DEBUG_MEMORY_FACTOR = _k(
    "DEBUG_MEMORY_FACTOR",
    {"none": 1.0, "dwarf": 1.75, "btf": 1.75},
    "estimate: DWARF unmeasured (REFERENCE.md §1 'not measured yet'); the compiler keeps the debug "
    "info tree of the whole unit, counted as +75%. BTF is generated from DWARF, same factor",
)
AS_PER_JOB_MIB = _k(
    "AS_PER_JOB_MIB",
    16,
    "measured: REFERENCE.md §1 'as' per job ~4-15 MiB; runs beside cc1 in a pipe",
)
BUILD_BASE_MIB = _k(
    "BUILD_BASE_MIB",
    96,
    "measured: REFERENCE.md §1 whole build -j2 ~235 MiB, +70 MiB per extra job -> make, shells "
    "and kbuild scripts ~95 MiB independent of -j",
)
BUILD_PER_JOB_AVERAGE_MIB = _k(
    "BUILD_PER_JOB_AVERAGE_MIB",
    70,
    "measured: REFERENCE.md §1 whole-build anonymous memory grows ~70 MiB per extra job (-j2 235, "
    "-j8 640, -j20 1.4 GiB); the plan budgets the p99 (PER_JOB_MIB) instead, which covers the "
    "15-20% headroom a memory cap needs",
)
LINK_PEAK_MIB = _k(
    "LINK_PEAK_MIB",
    {
        ("tiny", "none"): 128,
        ("default", "none"): 320,
        ("local", "none"): 512,
        ("distro", "none"): 1024,
        ("all", "none"): 2048,
        ("tiny", "dwarf"): 512,
        ("default", "dwarf"): 2048,
        ("local", "dwarf"): 3072,
        ("distro", "dwarf"): 6144,
        ("all", "dwarf"): 8192,
    },
    "measured: REFERENCE.md §1 final ld of a defconfig vmlinux ~302 MiB (-> 320). estimate: the "
    "others scale with vmlinux size; with debug info the link takes several GiB (REFERENCE.md §1 "
    "'debug info grows the link a lot'); btf uses the dwarf figure (pahole runs after the link)",
)
LTO_FULL_LINK_MIB = _k(
    "LTO_FULL_LINK_MIB",
    {"tiny": 2048, "default": 4096, "local": 6144, "distro": 10240, "all": 13312},
    "published: REFERENCE.md §7 full-LTO ld.lld link peak about 4 GB up to 13 GB",
)
THINLTO_BASE_MIB = _k(
    "THINLTO_BASE_MIB",
    1024,
    "estimate: ThinLTO's serial thin-link step holds the summaries of every unit; below the "
    "4 GB of a full-LTO link (REFERENCE.md §7: ThinLTO is lighter and --thinlto-jobs limits it)",
)
THINLTO_PER_BACKEND_MIB = _k(
    "THINLTO_PER_BACKEND_MIB",
    512,
    "estimate: each ThinLTO backend optimises and codegens one module at a time, ~2-3x a cc1 job",
)

# --------------------------------------------------------------------------- memory budget

OS_RESERVE_MIN_MIB = _k(
    "OS_RESERVE_MIN_MIB",
    256,
    "estimate: kernel, init, sshd and page cache for the source tree on a small host",
)
OS_RESERVE_FRACTION = _k(
    "OS_RESERVE_FRACTION",
    0.05,
    "estimate: 5% of RAM for the rest of the system on larger hosts (desktops, editors)",
)
OS_RESERVE_MAX_MIB = _k(
    "OS_RESERVE_MAX_MIB",
    2048,
    "estimate: a large host does not need more than 2 GiB set aside beside MemAvailable",
)

# --------------------------------------------------------------------------- zram

ZRAM_SMALL_HOST_BYTES = _k(
    "ZRAM_SMALL_HOST_BYTES",
    8 * GIB,
    "estimate: below 8 GiB a debug-info link or a desktop beside the build can exhaust RAM and "
    "livelock (REFERENCE.md §1: memory pressure livelocks rather than OOM-kills); Fedora enables "
    "zram on every host (REFERENCE.md §3)",
)
ZRAM_DEFAULT_PERCENT = _k(
    "ZRAM_DEFAULT_PERCENT",
    50,
    "published: zram-generator/Fedora 33 default 0.5 x RAM (REFERENCE.md §3)",
)
ZRAM_MIN_PERCENT = _k("ZRAM_MIN_PERCENT", 1, "published: zram-tools PERCENT is a whole percent of MemTotal")
ZRAM_MAX_PERCENT = _k(
    "ZRAM_MAX_PERCENT",
    200,
    "published: kernel Documentation/admin-guide/blockdev/zram.rst: a device over 2 x RAM is "
    "pointless (about 2:1 expected)",
)
ZRAM_PRIORITY = _k(
    "ZRAM_PRIORITY",
    100,
    "published: zram-tools PRIORITY and zram-generator swap-priority default 100 (REFERENCE.md §3), "
    "above any disk swap",
)
ZRAM_RATIO = _k(
    "ZRAM_RATIO",
    {"lz4": 3.3, "lzo-rle": 3.6, "lzo": 3.6, "lz4hc": 3.3, "zstd": 4.0, "deflate": 3.5, "842": 2.0},
    "measured: REFERENCE.md §1 on compiler memory lz4 3.3:1, lzo-rle 3.6:1 (lzo is the same LZO1X "
    "without the run-length pass; lz4hc at least lz4). published: zstd 3.96 vs lz4 2.58 on a general "
    "sample (REFERENCE.md §3) -> zstd counted as 4.0 (conservative, below the scaled 5.0). "
    "estimate: deflate 3.5, 842 2.0",
)
ZRAM_RATIO_UNKNOWN = _k(
    "ZRAM_RATIO_UNKNOWN",
    2.0,
    "published: zram.rst expects about 2:1; used for a compressor kprov has no figure for",
)
ZRAM_RESCUE_FRACTION = _k(
    "ZRAM_RESCUE_FRACTION",
    0.30,
    "measured: REFERENCE.md §1 zram rescued a memory cap 30-40% short of the build's peak, not "
    "50% short (768 MiB cap, -j20, lz4 livelocked): planned jobs count on zram for at most 30% "
    "of the RAM budget",
)
ZRAM_KCONFIG_DEFAULT = _k(
    "ZRAM_KCONFIG_DEFAULT",
    "lzo-rle",
    "published: kernel drivers/block/zram/Kconfig ZRAM_DEF_COMP default lzo-rle since 5.1 "
    "(REFERENCE.md §3): assumed when the facts do not list the kernel's compressors",
)
#: Compressor preference, best first. Capacity: most stored per byte of RAM (measured lzo-rle
#: 3.6 beats lz4 3.3 and was as fast: 145 s vs 148 s). Speed: lz4 has the highest throughput.
ZRAM_PREFERENCE = _k(
    "ZRAM_PREFERENCE",
    {
        "capacity": ("zstd", "lzo-rle", "lz4", "lzo", "lz4hc", "deflate", "842"),
        "speed": ("lz4", "lzo-rle", "lzo", "zstd", "lz4hc", "deflate", "842"),
    },
    "measured: REFERENCE.md §1 lz4 148 s / lzo-rle 145 s, ratios 3.3 / 3.6. published: REFERENCE.md "
    "§3 throughput lz4 7943, lzo-rle 6264, zstd 2612 MiB/s; zstd ratio 3.96",
)
ZRAM_SYSCTLS = _k(
    "ZRAM_SYSCTLS",
    {
        "vm.swappiness": "180",
        "vm.watermark_boost_factor": "0",
        "vm.watermark_scale_factor": "125",
        "vm.page-cluster": "0",
    },
    "published: ArchWiki 'Zram', NixOS, Pop!_OS settings for swap on zram (REFERENCE.md §3)",
)
SWAPPINESS_OVER_100_KERNEL = _k(
    "SWAPPINESS_OVER_100_KERNEL",
    (5, 8),
    "published: vm.swappiness accepts values above 100 (up to 200) from Linux 5.8",
)
SWAPPINESS_LEGACY = _k(
    "SWAPPINESS_LEGACY",
    "100",
    "published: the maximum vm.swappiness before Linux 5.8",
)

# --------------------------------------------------------------------------- ccache

CCACHE_FOOTPRINT_MIB = _k(
    "CCACHE_FOOTPRINT_MIB",
    {"tiny": 20, "default": 100, "local": 150, "distro": 1024, "all": 1229},
    "measured: REFERENCE.md §4 ~0.95 GB of cache per GB of objects, a whole defconfig ~100 MB "
    "(tinyconfig has 480 of its 2,798 units -> ~20). published: allyesconfig filled 1.2 GB "
    "(REFERENCE.md §4). estimate: localmodconfig 150, distro configs near allmodconfig (1 GiB)",
)
CCACHE_DEBUG_FACTOR = _k(
    "CCACHE_DEBUG_FACTOR",
    5.0,
    "published: REFERENCE.md §7 localmodconfig output ~5 GB with debug info vs < 1 GB without; the "
    "cache stores those objects",
)
CCACHE_HEADROOM = _k(
    "CCACHE_HEADROOM",
    1.25,
    "estimate: ccache evicts least-recently-used files once full; 25% over the builds it must "
    "keep leaves room for the next one's new objects",
)
CCACHE_MIN_BYTES = _k(
    "CCACHE_MIN_BYTES",
    512 * MIB,
    "published: an OpenWrt kernel filled 659 MB and a 400 MB cache was too small (REFERENCE.md §4); "
    "below 512 MiB a cache thrashes",
)
CCACHE_DISK_SHARE = _k(
    "CCACHE_DISK_SHARE",
    0.15,
    "estimate: the cache may take 15% of the free space on its filesystem; the build output "
    "(REFERENCE.md §7: up to 20-30 GB) needs the rest",
)
CCACHE_BROKEN_VERSIONS = _k(
    "CCACHE_BROKEN_VERSIONS",
    ((4, 7, 0), (4, 7, 2)),
    "published: ccache 4.7.0-4.7.2 cannot cache kernel builds (-Wp,-MMD handling, fixed in 4.7.3), "
    "REFERENCE.md §4",
)
CCACHE_ARM64_UNCACHED_VERSIONS = _k(
    "CCACHE_ARM64_UNCACHED_VERSIONS",
    ((4, 6, 2), (4, 7, 2)),
    "published: ccache 4.6.2-4.7 fell back to the compiler whenever -Wa,-march appeared "
    "(uncached arm64 builds), REFERENCE.md §4",
)
CCACHE_COLD_SLOWDOWN = _k(
    "CCACHE_COLD_SLOWDOWN",
    1.33,
    "measured: REFERENCE.md §1 cold ccache 162 s vs plain 122 s (1.33x); warm 13.2 s (9.2x faster)",
)
CCACHE_WARM_SPEEDUP = _k(
    "CCACHE_WARM_SPEEDUP",
    9.2,
    "measured: REFERENCE.md §1 warm ccache 13.2 s vs plain 122 s on the defconfig subset",
)
#: ``time_macros``: ccache may ignore __DATE__/__TIME__/__TIMESTAMP__. Safe for the kernel, whose
#: Makefile builds with -Werror=date-time (no unit may use them), and it keeps hits when
#: SOURCE_DATE_EPOCH differs between builds (ccache >= 4.0 hashes it otherwise).
CCACHE_SLOPPINESS = _k(
    "CCACHE_SLOPPINESS",
    ("time_macros",),
    "published: REFERENCE.md §4 'use sloppiness=time_macros when SOURCE_DATE_EPOCH varies'; the "
    "kernel Makefile's -Werror=date-time forbids the macros this sloppiness ignores",
)

# --------------------------------------------------------------------------- disk and time

BUILD_OUTPUT_GIB = _k(
    "BUILD_OUTPUT_GIB",
    {
        ("tiny", "none"): 0.2,
        ("default", "none"): 1.0,
        ("local", "none"): 1.0,
        ("distro", "none"): 6.0,
        ("all", "none"): 8.0,
        ("tiny", "dwarf"): 0.5,
        ("default", "dwarf"): 5.0,
        ("local", "dwarf"): 5.0,
        ("distro", "dwarf"): 20.0,
        ("all", "dwarf"): 30.0,
    },
    "published: REFERENCE.md §7 localmodconfig ~5 GB with debug info, < 1 GB without; allmodconfig "
    "20-30 GB (all*config select COMPILE_TEST, whose debug-info default is DWARF). estimate: tiny, "
    "distro and all without debug info scaled from those",
)
BUILD_CPU_SECONDS = _k(
    "BUILD_CPU_SECONDS",
    {"tiny": 150, "default": 1320, "local": 2600, "distro": 10000, "all": 17000},
    "measured: REFERENCE.md §1 whole defconfig 1,317 s user CPU with gcc 12. published: REFERENCE.md "
    "§7 tinyconfig 0m31s vs defconfig 4m43s (-> 150), allyesconfig 60m39s = 12.9x defconfig "
    "(-> 17000). estimate: localmodconfig 2x defconfig, distro config 7.5x",
)
BUILD_TIME_FACTOR = _k(
    "BUILD_TIME_FACTOR",
    {"gcc": 1.0, "clang": 1.4, "dwarf": 1.3, "btf": 1.35},
    "published: REFERENCE.md §7 same machine defconfig clang 4m43s vs gcc 3m24s (1.39). estimate: "
    "debug info +30% (more to write), btf +5% more for pahole",
)

# --------------------------------------------------------------------------- distcc

DISTCC_PORT = _k("DISTCC_PORT", 3632, "published: man distccd, default TCP port")
DISTCC_DEFAULT_LIMIT = _k(
    "DISTCC_DEFAULT_LIMIT", 4, "published: man distcc, default /LIMIT per remote host (REFERENCE.md §2)"
)
DISTCC_LOCALHOST_LIMIT = _k(
    "DISTCC_LOCALHOST_LIMIT", 2, "published: man distcc, default limit for localhost (REFERENCE.md §2)"
)
DISTCCD_EXTRA_JOBS = _k(
    "DISTCCD_EXTRA_JOBS",
    2,
    "published: distccd default max kids = ncpus + 2 (src/dparent.c, REFERENCE.md §2): two extra "
    "so a job is queued while another's result travels back",
)
DISTCC_MAX_LIMIT = _k(
    "DISTCC_MAX_LIMIT",
    1024,
    "estimate: an upper bound for a /LIMIT that is surely a typo (the largest hosts run ~500 CPUs)",
)
PREPROCESS_CPU_SHARE = _k(
    "PREPROCESS_CPU_SHARE",
    0.2,
    "estimate: the client preprocesses every distributed unit; kernel units include large header "
    "trees, counted as a fifth of a compile (seed 001 in REFERENCE.md §5 saw a whole client CPU "
    "eaten)",
)
DISTCC_CLIENT_JOB_MIB = _k(
    "DISTCC_CLIENT_JOB_MIB",
    48,
    "estimate: a distcc client process plus the preprocessed unit it holds while sending",
)

# --------------------------------------------------------------------------- config strategy

KBUILD_ENV = _k(
    "KBUILD_ENV",
    {
        "KBUILD_BUILD_TIMESTAMP": "1970-01-01 00:00:00 UTC",
        "KBUILD_BUILD_USER": "kbuild",
        "KBUILD_BUILD_HOST": "kprov",
        "KBUILD_BUILD_VERSION": "1",
    },
    "published: kernel Documentation/kbuild/reproducible-builds.rst and llvm.rst (a fixed "
    "KBUILD_BUILD_TIMESTAMP, else ccache misses 100%); REFERENCE.md §7. The timestamp is the Unix "
    "epoch, a value date(1) parses and that is the same on every host and every build",
)
TRUSTED_KEY_OPTIONS = _k(
    "TRUSTED_KEY_OPTIONS",
    ("SYSTEM_TRUSTED_KEYS", "SYSTEM_REVOCATION_KEYS"),
    "published: REFERENCE.md §6 Debian's own kernel configs need scripts/config --set-str "
    "SYSTEM_TRUSTED_KEYS '' (the certificate files are not in the source tree); the revocation "
    "list option points at the same kind of file",
)
DEBUG_INFO_OFF_OPTIONS = _k(
    "DEBUG_INFO_OFF_OPTIONS",
    ("DEBUG_INFO", "DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT", "DEBUG_INFO_DWARF4", "DEBUG_INFO_DWARF5",
     "DEBUG_INFO_BTF"),
    "published: kernel lib/Kconfig.debug 'Debug information' choice (5.18+); DEBUG_INFO_NONE is the "
    "option that turns it off",
)
PAHOLE_MIN_BTF = _k(
    "PAHOLE_MIN_BTF",
    "1.16",
    "published: REFERENCE.md §6 Documentation/process/changes.rst of 6.1: pahole 1.16",
)
COMPILER_MIN_DEFAULT = _k(
    "COMPILER_MIN_DEFAULT",
    {"gcc": "5.1", "clang": "11.0.0"},
    "published: REFERENCE.md §6 changes.rst of 6.1: GNU C 5.1, Clang 11.0.0 (used without a tree)",
)
#: uname -m -> kernel ARCH= (the kernel Makefile's SUBARCH mapping) and a GNU cross prefix.
KERNEL_ARCH = _k(
    "KERNEL_ARCH",
    {
        "x86_64": "x86", "i686": "x86", "i386": "x86", "aarch64": "arm64", "arm64": "arm64",
        "armv7l": "arm", "armv6l": "arm", "riscv64": "riscv", "ppc64le": "powerpc",
        "ppc64": "powerpc", "s390x": "s390", "mips64": "mips", "loongarch64": "loongarch",
    },
    "published: kernel top-level Makefile SUBARCH (sed on uname -m)",
)
CROSS_COMPILE_PREFIX = _k(
    "CROSS_COMPILE_PREFIX",
    {
        "x86": "x86_64-linux-gnu-", "arm64": "aarch64-linux-gnu-", "arm": "arm-linux-gnueabihf-",
        "riscv": "riscv64-linux-gnu-", "powerpc": "powerpc64le-linux-gnu-", "s390": "s390x-linux-gnu-",
        "mips": "mips64-linux-gnuabi64-", "loongarch": "loongarch64-linux-gnu-",
    },
    "published: Debian/Ubuntu gcc-<triplet> cross toolchain package names",
)


# --------------------------------------------------------------------------- derived look-ups


def per_job_mib(target_class: str, compiler: str, debug_info: str) -> float:
    """Budgeted memory of one compile job: cc1 p99 x compiler x debug factor, plus ``as``."""
    base = PER_JOB_MIB[target_class]
    return base * COMPILER_MEMORY_FACTOR[compiler] * DEBUG_MEMORY_FACTOR[debug_info] + AS_PER_JOB_MIB


def debug_kind(debug_info: str) -> str:
    """``btf`` is DWARF plus pahole: tables keyed by debug info use the dwarf row for it."""
    return "none" if debug_info == "none" else "dwarf"


def link_peak_mib(target_class: str, debug_info: str) -> float:
    return LINK_PEAK_MIB[(target_class, debug_kind(debug_info))]


def build_output_gib(target_class: str, debug_info: str) -> float:
    return BUILD_OUTPUT_GIB[(target_class, debug_kind(debug_info))]


def ccache_footprint_mib(target_class: str, debug_info: str) -> float:
    factor = 1.0 if debug_info == "none" else CCACHE_DEBUG_FACTOR
    return CCACHE_FOOTPRINT_MIB[target_class] * factor


def zram_ratio(algorithm: str) -> float:
    return ZRAM_RATIO.get(algorithm, ZRAM_RATIO_UNKNOWN)


def build_cpu_seconds(target_class: str, compiler: str, debug_info: str) -> float:
    seconds = BUILD_CPU_SECONDS[target_class] * BUILD_TIME_FACTOR[compiler]
    if debug_info != "none":
        seconds *= BUILD_TIME_FACTOR[debug_info]
    return seconds
