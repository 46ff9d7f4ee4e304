"""Every number the planner uses, in one table, each with where it comes from.

The planner holds no magic numbers: it reads the names defined here. Each constant is registered in
:data:`TABLE` with its source, which starts with one of

* ``measured:`` a figure measured on the reference machine kind; the method, machine and result
  are in ``docs/calibration.md`` (the section named), and ``kprov calibrate`` measures the same
  figures on a user's own tree and host,
* ``published:`` a figure from documentation, a man page, the kernel's own Kconfig/Makefiles or a
  peer tool (named, with its title and date in ``docs/calibration.md``),
* ``estimate:`` not measured yet; the value is chosen to be conservative and the source says why.

When a measurement disagrees with an estimate here, replace the value and its source together, and
the row of ``docs/calibration.md`` with them. This module is pure data: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provision.units import GIB, MIB

#: The file every source cites (tests check that each cited section exists).
DOC = "docs/calibration.md"


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
        "allmodconfig": "allmod",
        "allyesconfig": "allyes",
    },
    f"published: kernel Makefile config targets ({DOC} §9): localmodconfig keeps only loaded modules, "
    "all*config build everything; allyesconfig links all of it into vmlinux, allmodconfig into modules",
)


CLASSES = ("tiny", "default", "local", "distro", "allmod", "allyes")


DISTRO_CONFIG_MIN_MODULES = _k(
    "DISTRO_CONFIG_MIN_MODULES",
    1000,
    f"estimate: distro configs enable several thousand =m options, defconfigs and localmodconfig a few "
    f"hundred at most (x86 defconfig 13, arm64 defconfig 879: {DOC} §9); 1000 separates the two",
)


PER_JOB_MIB = _k(
    "PER_JOB_MIB",
    {"tiny": 102, "default": 160, "local": 160, "distro": 192, "allmod": 320, "allyes": 320},
    f"measured: {DOC} §2 cc1 peak RSS p99, tinyconfig 102 MiB, defconfig 155 MiB (-> 160); allmodconfig's "
    "largest units 224-303 MiB (-> 320). estimate: local = default (same per-file work, fewer files); "
    "distro 192 (more options enlarge every unit)",
)


COMPILER_MEMORY_FACTOR = _k(
    "COMPILER_MEMORY_FACTOR",
    {"gcc": 1.0, "clang": 1.25},
    f"estimate: clang unmeasured on kernel code ({DOC} §2); +25% over gcc to stay on the safe side",
)


DEBUG_MEMORY_FACTOR = _k(
    "DEBUG_MEMORY_FACTOR",
    {"none": 1.0, "dwarf": 1.25, "reduced": 1.25},
    f"measured: {DOC} §2 full DWARF on allmodconfig's largest units, gcc 12: kernel/sched/core.o 224 -> "
    "287 MiB (1.28x), fs/ext4/super.o 272 -> 324 MiB (1.19x): 1.25. BTF is made from DWARF by pahole "
    "after the compile: same factor. estimate: DEBUG_INFO_REDUCED counted like full DWARF until measured",
)


SANITIZER_MEMORY_FACTOR = _k(
    "SANITIZER_MEMORY_FACTOR",
    1.4,
    f"estimate: KASAN/UBSAN/KCOV instrumentation in a config that is not all*config ({DOC} §2): "
    "allmodconfig's kernel/sched/core.o needs 224 MiB where defconfig's largest units need 133-212 MiB",
)


AS_PER_JOB_MIB = _k(
    "AS_PER_JOB_MIB",
    16,
    f"measured: {DOC} §2 'as' per job ~4-15 MiB",
)


BUILD_BASE_MIB = _k(
    "BUILD_BASE_MIB",
    32,
    f"measured: {DOC} §3 the anonymous memory of every process of the build that is not a compile "
    "job (make, shells, fixdep, kbuild scripts), sampled every 0.1 s: peak 18 MiB at -j1, 26 MiB at -j2 "
    "(tests/bench_jobs.py), rounded up",
)

#: What a recorded build (kprov build) says of its -j (provision/planner/recorded.py).
FEEDBACK_HEAVY_STALL_SHARE = _k(
    "FEEDBACK_HEAVY_STALL_SHARE",
    0.10,
    f"estimate: ({DOC} §16) memory stalls ('some' in /proc/pressure/memory) over a tenth of a build's wall time are "
    "heavy; no threshold for builds is published (systemd-oomd's default acts at 60% 'full' over 30 s, "
    "far past a build's slowing down)",
)
FEEDBACK_ROOM_SHARE = _k(
    "FEEDBACK_ROOM_SHARE",
    0.5,
    f"estimate: ({DOC} §16) a build that peaked at most half its budget had room for at least one more job of its "
    "own measured size (a job is far below half a budget that held several)",
)
FEEDBACK_GROWN_BUDGET = _k(
    "FEEDBACK_GROWN_BUDGET",
    1.25,
    f"estimate: ({DOC} §16) MemAvailable moves between two plans on one host by a few per cent; a budget 25% above "
    "the one an OOM-killed build had is more memory (RAM, a larger cap), and the kill is not held against it",
)


PER_JOB_AVERAGE_MIB = _k(
    "PER_JOB_AVERAGE_MIB",
    {"tiny": 62, "default": 70, "local": 70, "distro": 84, "allmod": 140, "allyes": 140},
    f"measured: {DOC} §3 whole-build anonymous memory grows ~70 MiB per extra job on defconfig (-j2 235, "
    "-j8 640, -j20 1.4 GiB); tinyconfig's cc1 median 62 MiB ({DOC} §2). estimate: distro and all*config "
    "scaled from defconfig by their p99 (x1.2, x2). The compile phase is base + one job at the p99 + "
    "the others at this average: N jobs are never all at their peak together",
)


CGROUP_HEADROOM_FRACTION = _k(
    "CGROUP_HEADROOM_FRACTION",
    0.15,
    f"measured: {DOC} §3 -j20 (peak 1,502 MiB) livelocked under a 1.5 GiB cap and finished under 1.75 GiB: "
    "a cap needs ~15-20% over the build's anonymous memory for the page cache of the sources it reads, "
    "when nothing can be swapped out; with swap on zram the kernel makes that room itself (192 and 224 MiB "
    "caps with zram: -j2 fastest while its need fits the cap + what zram frees)",
)


MODFINAL_JOB_MIB = _k(
    "MODFINAL_JOB_MIB",
    70,
    f"measured: {DOC} §4 and §17, the arm64 defconfig build: the 1,016 .mod.o compiles of modfinal peaked "
    "at 69 MiB each (p50 = p99; max 145), the .ko links at 5 MiB (mean; max 47), and make ran them beside "
    "the first kallsyms link (build.log); up to -j minus 1 of them beside vmlinux's link",
)


#: (class, debug kind) -> the vmlinux link's peak (ld; kallsyms relinks the same size).
LINK_PEAK_MIB = _k(
    "LINK_PEAK_MIB",
    {
        ("tiny", "none"): 128,
        ("default", "none"): 320,
        ("local", "none"): 512,
        ("distro", "none"): 1024,
        ("allmod", "none"): 1024,
        ("allyes", "none"): 8192,
        ("tiny", "dwarf"): 512,
        ("default", "dwarf"): 2048,
        ("local", "dwarf"): 3072,
        ("distro", "dwarf"): 6144,
        ("allmod", "dwarf"): 4096,
        ("allyes", "dwarf"): 16384,
    },
    f"measured: {DOC} §4 final ld of a defconfig vmlinux ~302 MiB (-> 320). estimate: the others scale "
    "with what vmlinux holds (allmodconfig links most code into modules, allyesconfig all of it into "
    "vmlinux); debug info makes the linker copy and relocate every unit's DWARF",
)


LINK_DEBUG_VARIANT_FACTOR = _k(
    "LINK_DEBUG_VARIANT_FACTOR",
    {"reduced": 0.6, "split": 0.35, "compressed": 1.0},
    f"published: lib/Kconfig.debug help texts ({DOC} §4): REDUCED 'object sizes shrink dramatically', "
    "SPLIT keeps DWARF in .dwo files out of the link, COMPRESSED shrinks the files but the linker still "
    "reads all of it. estimate: the factors on the full-DWARF link peak",
)


#: (class, debug kind, first kernel (major, minor) of the row) -> objtool's peak over vmlinux.o.
OBJTOOL_PEAK_MIB = _k(
    "OBJTOOL_PEAK_MIB",
    {
        ("allyes", "dwarf", (0, 0)): 54272,
        ("allyes", "dwarf", (6, 5)): 25600,
        ("allyes", "none", (0, 0)): 32768,
        ("allyes", "none", (6, 3)): 16384,
        ("distro", "dwarf", (0, 0)): 4300,
        ("distro", "dwarf", (6, 3)): 2870,
        ("distro", "none", (0, 0)): 2048,
        ("allmod", "dwarf", (0, 0)): 6144,
        ("allmod", "dwarf", (6, 5)): 3072,
        ("allmod", "none", (0, 0)): 3072,
        ("allmod", "none", (6, 3)): 2048,
        ("local", "dwarf", (0, 0)): 2048,
        ("local", "none", (0, 0)): 1024,
        ("default", "dwarf", (0, 0)): 1024,
        ("default", "none", (0, 0)): 512,
        ("tiny", "dwarf", (0, 0)): 256,
        ("tiny", "none", (0, 0)): 128,
    },
    f"published: Phoronix 'Linux 6.3 objtool' and 'Linux 6.5 reduces objtool bloat' ({DOC} §4): "
    "allyesconfig + debug info ~53 GB before 6.5, ~25 GB after; before 6.3 allyesconfig without debug "
    "info could OOM a 32 GB machine; a distro IBT kernel 4.2 -> 2.8 GB. estimate: the other rows, scaled "
    "from those by what vmlinux.o holds",
)


BTF_PEAK_FACTOR = _k(
    "BTF_PEAK_FACTOR",
    1.0,
    f"estimate: pahole -J reads the DWARF of the whole vmlinux ({DOC} §4); counted like the DWARF link",
)


LTO_FULL_LINK_MIB = _k(
    "LTO_FULL_LINK_MIB",
    {"tiny": 2048, "default": 4096, "local": 6144, "distro": 10240, "allmod": 13312, "allyes": 13312},
    f"published: full-LTO ld.lld link peak about 4 GB up to 13 GB ({DOC} §4)",
)


THINLTO_BASE_MIB = _k(
    "THINLTO_BASE_MIB",
    1024,
    f"estimate: ThinLTO's serial thin-link step holds the summaries of every unit; below the 4 GB of a "
    f"full-LTO link ({DOC} §4: ThinLTO is lighter and --thinlto-jobs limits it)",
)


THINLTO_PER_BACKEND_MIB = _k(
    "THINLTO_PER_BACKEND_MIB",
    512,
    f"estimate: each ThinLTO backend optimises and codegens one module at a time, ~2-3x a cc1 job ({DOC} §4)",
)


OS_RESERVE_MIN_MIB = _k(
    "OS_RESERVE_MIN_MIB",
    256,
    f"estimate: kernel, init, sshd and page cache for the source tree on a small host ({DOC} §3); not "
    "taken inside a cgroup limit, which covers only what runs in the cgroup",
)


OS_RESERVE_FRACTION = _k(
    "OS_RESERVE_FRACTION",
    0.05,
    f"estimate: 5% of RAM for the rest of the system on larger hosts (desktops, editors) ({DOC} §3)",
)


OS_RESERVE_MAX_MIB = _k(
    "OS_RESERVE_MAX_MIB",
    2048,
    f"estimate: a large host does not need more than 2 GiB set aside beside MemAvailable ({DOC} §3)",
)


ZRAM_SMALL_HOST_BYTES = _k(
    "ZRAM_SMALL_HOST_BYTES",
    8 * GIB,
    f"estimate: below 8 GiB a debug-info link or a desktop beside the build can exhaust RAM and livelock "
    f"({DOC} §3: memory pressure livelocks rather than OOM-kills); Fedora enables zram on every host ({DOC} §5)",
)


ZRAM_DEFAULT_PERCENT = _k(
    "ZRAM_DEFAULT_PERCENT",
    50,
    f"published: zram-generator/Fedora 33 default 0.5 x RAM ({DOC} §5)",
)


ZRAM_MIN_PERCENT = _k(
    "ZRAM_MIN_PERCENT", 1, f"published: zram-tools PERCENT is a whole percent of MemTotal ({DOC} §5)"
)


ZRAM_MAX_PERCENT = _k(
    "ZRAM_MAX_PERCENT",
    200,
    f"published: kernel Documentation/admin-guide/blockdev/zram.rst: a device over 2 x RAM is pointless "
    f"(about 2:1 expected) ({DOC} §5)",
)


ZRAM_PRIORITY = _k(
    "ZRAM_PRIORITY",
    100,
    f"published: zram-tools PRIORITY and zram-generator swap-priority default 100 ({DOC} §5), above any "
    "disk swap",
)


ZRAM_RATIO = _k(
    "ZRAM_RATIO",
    {"lz4": 3.3, "lzo-rle": 3.6, "lzo": 3.6, "lz4hc": 3.3, "zstd": 4.0, "deflate": 3.5, "842": 2.0},
    f"measured: {DOC} §3 on compiler memory lz4 3.3:1, lzo-rle 3.6:1 (lzo is the same LZO1X without the "
    f"run-length pass; lz4hc at least lz4). published: zstd 3.96 vs lz4 2.58 on a general sample ({DOC} §5) "
    "-> zstd counted as 4.0 (below the scaled 5.0). estimate: deflate 3.5, 842 2.0",
)


ZRAM_RATIO_UNKNOWN = _k(
    "ZRAM_RATIO_UNKNOWN",
    2.0,
    f"published: zram.rst expects about 2:1 ({DOC} §5); used for a compressor kprov has no figure for",
)


ZRAM_RESCUE_FRACTION = _k(
    "ZRAM_RESCUE_FRACTION",
    0.45,
    f"measured: {DOC} §3 with zram holding the rest, builds finished 32-47% short of their need in RAM "
    "(1 GiB cap, -j20; 256 MiB cap, -j2 and -j3 of the subset, 2x faster than -j1); the 768 MiB cap at "
    "-j20 livelocked when its 460 MiB device was full (cap + device below the need): a phase may be at "
    "most 45% short of its need in RAM, and only as far as zram's capacity goes",
)


ZRAM_HELD_SLOWDOWN = _k(
    "ZRAM_HELD_SLOWDOWN",
    1.23,
    f"measured: {DOC} §3 -j20 under a 1 GiB cap with zram holding ~46% of its need finished in 148 s (lz4) "
    "where a 2 GiB cap without swap took 120 s: a phase that leans on zram runs ~1.23x as long; weighed "
    "against the compile time a lower -j costs",
)


ZRAM_KCONFIG_DEFAULT = _k(
    "ZRAM_KCONFIG_DEFAULT",
    "lzo-rle",
    f"published: kernel drivers/block/zram/Kconfig ZRAM_DEF_COMP default lzo-rle since 5.1 ({DOC} §5): "
    "assumed when the facts do not list the kernel's compressors",
)


#: Compressor preference, best first. Capacity: most stored per byte of RAM (measured lzo-rle
#: 3.6 beats lz4 3.3 and was as fast: 145 s vs 148 s). Speed: lz4 has the highest throughput.
ZRAM_PREFERENCE = _k(
    "ZRAM_PREFERENCE",
    {
        "capacity": ("zstd", "lzo-rle", "lz4", "lzo", "lz4hc", "deflate", "842"),
        "speed": ("lz4", "lzo-rle", "lzo", "zstd", "lz4hc", "deflate", "842"),
    },
    f"measured: {DOC} §3 lz4 148 s / lzo-rle 145 s, ratios 3.3 / 3.6. published: {DOC} §5 throughput lz4 "
    "7943, lzo-rle 6264, zstd 2612 MiB/s; zstd ratio 3.96",
)


ZRAM_SYSCTLS = _k(
    "ZRAM_SYSCTLS",
    {
        "vm.swappiness": "180",
        "vm.watermark_boost_factor": "0",
        "vm.watermark_scale_factor": "125",
        "vm.page-cluster": "0",
    },
    f"published: ArchWiki 'Zram', NixOS, Pop!_OS settings for swap on zram ({DOC} §5)",
)


SWAPPINESS_OVER_100_KERNEL = _k(
    "SWAPPINESS_OVER_100_KERNEL",
    (5, 8),
    f"published: vm.swappiness accepts values above 100 (up to 200) from Linux 5.8 ({DOC} §5)",
)


SWAPPINESS_LEGACY = _k(
    "SWAPPINESS_LEGACY",
    "100",
    f"published: the maximum vm.swappiness before Linux 5.8 ({DOC} §5)",
)


CCACHE_FOOTPRINT_MIB = _k(
    "CCACHE_FOOTPRINT_MIB",
    {"tiny": 20, "default": 100, "local": 150, "distro": 1024, "allmod": 1229, "allyes": 1229},
    f"measured: {DOC} §6 ~0.95 GB of cache per GB of objects, a whole defconfig ~100 MB (tinyconfig has "
    f"480 of its 2,798 units -> ~20). published: allyesconfig filled 1.2 GB ({DOC} §6). estimate: "
    "localmodconfig 150, distro configs near allmodconfig (1 GiB)",
)


CCACHE_BYTES_PER_OBJECT_BYTE = _k(
    "CCACHE_BYTES_PER_OBJECT_BYTE",
    0.95,
    f"measured: {DOC} §6 ~0.95 GB of cache (manifests 0.55, results 0.33) per GB of object files; "
    "turns a calibration profile's object bytes into a cache footprint",
)


CCACHE_DEBUG_FACTOR = _k(
    "CCACHE_DEBUG_FACTOR",
    5.0,
    f"published: {DOC} §8 localmodconfig output ~5 GB with debug info vs < 1 GB without; the cache "
    "stores those objects",
)


CCACHE_HEADROOM = _k(
    "CCACHE_HEADROOM",
    1.25,
    f"estimate: ccache evicts least-recently-used files once full; 25% over the builds it must keep "
    f"leaves room for the next one's new objects ({DOC} §6)",
)


CCACHE_MIN_BYTES = _k(
    "CCACHE_MIN_BYTES",
    512 * MIB,
    f"published: an OpenWrt kernel filled 659 MB and a 400 MB cache was too small ({DOC} §6); below "
    "512 MiB a cache thrashes",
)


CCACHE_DISK_SHARE = _k(
    "CCACHE_DISK_SHARE",
    0.15,
    f"estimate: the cache may take 15% of the free space on its filesystem; the build output ({DOC} §8: "
    "up to 20-30 GB) needs the rest",
)


CCACHE_BROKEN_VERSIONS = _k(
    "CCACHE_BROKEN_VERSIONS",
    ((4, 7, 0), (4, 7, 2)),
    f"published: ccache 4.7.0-4.7.2 cannot cache kernel builds (-Wp,-MMD handling, fixed in 4.7.3), {DOC} §6",
)


CCACHE_ARM64_UNCACHED_VERSIONS = _k(
    "CCACHE_ARM64_UNCACHED_VERSIONS",
    ((4, 6, 2), (4, 7, 2)),
    f"published: ccache 4.6.2-4.7 fell back to the compiler whenever -Wa,-march appeared (uncached arm64 "
    f"builds), {DOC} §6",
)


CCACHE_COLD_SLOWDOWN = _k(
    "CCACHE_COLD_SLOWDOWN",
    1.33,
    f"measured: {DOC} §6 cold ccache 162 s vs plain 122 s (1.33x); warm 13.2 s (9.2x faster)",
)


EPHEMERAL_FSTYPES = _k(
    "EPHEMERAL_FSTYPES",
    ("overlay", "tmpfs", "ramfs", "aufs", "fuse-overlayfs"),
    f"published: {DOC} §6 a container's root (overlay, fuse-overlayfs, aufs) and tmpfs/ramfs go with the "
    "container: a cache there does not outlive a throw-away CI runner; a volume or bind mount does",
)


CCACHE_WARM_SPEEDUP = _k(
    "CCACHE_WARM_SPEEDUP",
    9.2,
    f"measured: {DOC} §6 warm ccache 13.2 s vs plain 122 s on the defconfig subset",
)


#: ``time_macros``: ccache may ignore __DATE__/__TIME__/__TIMESTAMP__. Safe for the kernel, whose
#: Makefile builds with -Werror=date-time (no unit may use them), and it keeps hits when
#: SOURCE_DATE_EPOCH differs between builds (ccache >= 4.0 hashes it otherwise).
CCACHE_SLOPPINESS = _k(
    "CCACHE_SLOPPINESS",
    ("time_macros",),
    f"published: {DOC} §6 'use sloppiness=time_macros when SOURCE_DATE_EPOCH varies'; the kernel "
    "Makefile's -Werror=date-time forbids the macros this sloppiness ignores",
)


BUILD_OUTPUT_GIB = _k(
    "BUILD_OUTPUT_GIB",
    {
        ("tiny", "none"): 0.2,
        ("default", "none"): 1.0,
        ("local", "none"): 1.0,
        ("distro", "none"): 6.0,
        ("allmod", "none"): 25.0,
        ("allyes", "none"): 25.0,
        ("tiny", "dwarf"): 0.5,
        ("default", "dwarf"): 5.0,
        ("local", "dwarf"): 5.0,
        ("distro", "dwarf"): 20.0,
        ("allmod", "dwarf"): 60.0,
        ("allyes", "dwarf"): 60.0,
    },
    f"published: {DOC} §8 localmodconfig ~5 GB with debug info, < 1 GB without; allmodconfig 20-30 GB "
    "(all*config get no debug info unless asked: §9). estimate: tiny, distro and all*config with debug "
    "info scaled from those (debug info ~5x the objects)",
)


TMPFS_FSTYPES = _k(
    "TMPFS_FSTYPES",
    ("tmpfs", "ramfs"),
    f"published: Documentation/filesystems/tmpfs.rst ({DOC} §8): tmpfs keeps its files in the page "
    "cache and swap, so a build directory there takes RAM",
)


BUILD_CPU_SECONDS = _k(
    "BUILD_CPU_SECONDS",
    {"tiny": 150, "default": 1450, "local": 2900, "distro": 11000, "allmod": 20000, "allyes": 20000},
    f"measured: {DOC} §7 whole defconfig 1,317 s user CPU with gcc 12, plus system time (~10%, measured "
    "by kprov calibrate) -> 1450. published: tinyconfig 0m31s vs defconfig 4m43s (-> 150); TuxMake "
    "allmodconfig 5m49s at -j72 (at most 25,000 CPU-s); allyesconfig 13.9x defconfig on one machine "
    "(-> 20000). estimate: localmodconfig 2x defconfig, distro config 7.5x",
)


PREPARE_SECONDS = _k(
    "PREPARE_SECONDS",
    {"tiny": 15, "default": 45, "local": 50, "distro": 60, "allmod": 90, "allyes": 90},
    f"measured: {DOC} §7 defconfig make prepare 45 s wall at -j2 (24 CPU-s: host tools, objtool, "
    "generated headers). estimate: the others, by how many host tools and headers their config needs",
)


LINK_SECONDS = _k(
    "LINK_SECONDS",
    {"tiny": 5, "default": 30, "local": 40, "distro": 140, "allmod": 210, "allyes": 510},
    f"measured: {DOC} §7 defconfig vmlinux tail (three links of ~4 s for kallsyms, modpost, bzImage) "
    "~30 s. estimate: the others grow with the link, objtool over vmlinux.o and modpost of thousands of "
    "modules; debug info doubles it (LINK_DEBUG_TIME_FACTOR)",
)


LINK_DEBUG_TIME_FACTOR = _k(
    "LINK_DEBUG_TIME_FACTOR",
    2.0,
    f"estimate: the linker copies and relocates every unit's DWARF ({DOC} §7); BTF adds pahole's pass",
)


LTO_LINK_CPU_SHARE = _k(
    "LTO_LINK_CPU_SHARE",
    0.35,
    f"estimate: LTO moves code generation into the link ({DOC} §7); a full-LTO link runs it on one "
    "thread, ThinLTO over its backends",
)


PARALLEL_EFFICIENCY = _k(
    "PARALLEL_EFFICIENCY",
    0.9,
    f"measured: {DOC} §7 the -j sweep of the defconfig subset: -j1 262-269 s, -j2 115-117 s; make's "
    "jobserver keeps every slot busy except at directory barriers: 0.9 keeps the estimate on the slow side",
)


BUILD_TIME_FACTOR = _k(
    "BUILD_TIME_FACTOR",
    {"gcc": 1.0, "clang": 1.4, "dwarf": 1.3, "btf": 1.35, "sanitizers": 1.5},
    f"published: {DOC} §7 same machine defconfig clang 4m43s vs gcc 3m24s (1.39). estimate: debug info "
    "+30% (more to write), btf +5% more for pahole, sanitizer instrumentation +50%",
)


REFERENCE_CPU = _k(
    "REFERENCE_CPU",
    "AMD EPYC",
    f"measured: {DOC} §1 the reference machine's CPU model (a 2-core VM); time estimates are for cores "
    "like these unless kprov calibrate measured the host",
)


DISTCC_PORT = _k("DISTCC_PORT", 3632, f"published: man distccd, default TCP port ({DOC} §10)")


DISTCC_DEFAULT_LIMIT = _k(
    "DISTCC_DEFAULT_LIMIT", 4, f"published: man distcc, default /LIMIT per remote host ({DOC} §10)"
)


DISTCC_LOCALHOST_LIMIT = _k(
    "DISTCC_LOCALHOST_LIMIT", 2, f"published: man distcc, default limit for localhost ({DOC} §10)"
)


DISTCCD_EXTRA_JOBS = _k(
    "DISTCCD_EXTRA_JOBS",
    2,
    f"published: distccd default max kids = ncpus + 2 (src/dparent.c, {DOC} §10): two extra so a job is "
    "queued while another's result travels back",
)


DISTCC_MAX_LIMIT = _k(
    "DISTCC_MAX_LIMIT",
    1024,
    f"estimate: an upper bound for a /LIMIT that is surely a typo (the largest hosts run ~500 CPUs; {DOC} §10)",
)


PREPROCESS_CPU_SHARE = _k(
    "PREPROCESS_CPU_SHARE",
    0.2,
    f"estimate: the client preprocesses every distributed unit; kernel units include large header trees, "
    f"counted as a fifth of a compile ({DOC} §10: a seed saw a whole client CPU eaten)",
)


DISTCC_CLIENT_JOB_MIB = _k(
    "DISTCC_CLIENT_JOB_MIB",
    48,
    f"estimate: a distcc client process plus the preprocessed unit it holds while sending ({DOC} §10)",
)


KBUILD_ENV = _k(
    "KBUILD_ENV",
    {
        "KBUILD_BUILD_TIMESTAMP": "1970-01-01 00:00:00 UTC",
        "KBUILD_BUILD_USER": "kbuild",
        "KBUILD_BUILD_HOST": "kprov",
        "KBUILD_BUILD_VERSION": "1",
    },
    f"published: kernel Documentation/kbuild/reproducible-builds.rst and llvm.rst ({DOC} §11: a fixed "
    "KBUILD_BUILD_TIMESTAMP, else ccache misses 100%). The timestamp is the Unix epoch, a value date(1) "
    "parses and that is the same on every host and every build",
)


TRUSTED_KEY_OPTIONS = _k(
    "TRUSTED_KEY_OPTIONS",
    ("SYSTEM_TRUSTED_KEYS", "SYSTEM_REVOCATION_KEYS"),
    f"published: {DOC} §11 Debian's own kernel configs need scripts/config --set-str SYSTEM_TRUSTED_KEYS '' "
    "(the certificate files are not in the source tree); the revocation list option points at the same "
    "kind of file",
)


DEBUG_INFO_OFF_OPTIONS = _k(
    "DEBUG_INFO_OFF_OPTIONS",
    ("DEBUG_INFO", "DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT", "DEBUG_INFO_DWARF4", "DEBUG_INFO_DWARF5",
     "DEBUG_INFO_BTF"),
    f"published: kernel lib/Kconfig.debug 'Debug information' choice (5.18+; {DOC} §9); DEBUG_INFO_NONE "
    "is the option that turns it off",
)


#: target -> what it produces, per architecture and first kernel version of the row. Keys of a row:
#: debug (none/dwarf), flags (REDUCED, ...), sanitizers, objtool (objtool over vmlinux.o), lto_blocked
#: (the options that keep Kconfig from offering LTO), modules (=m options: at most that many modfinal
#: jobs run beside the vmlinux link; unknown when absent), source.
CONFIG_TRAITS = _k(
    "CONFIG_TRAITS",
    {
        ("tinyconfig", "*", (0, 0)): {"debug": "none", "modules": 0},
        ("allnoconfig", "*", (0, 0)): {"debug": "none", "modules": 0},
        ("defconfig", "x86", (0, 0)): {"debug": "none", "modules": 13},
        ("defconfig", "arm64", (5, 18)): {"debug": "dwarf", "flags": ("REDUCED",), "modules": 879},
        ("defconfig", "*", (0, 0)): {"debug": "none"},
        ("allmodconfig", "x86", (0, 0)): {
            "debug": "none",
            "modules": 8880,
            "sanitizers": ("KASAN", "UBSAN_SANITIZE_ALL", "KCOV_INSTRUMENT_ALL", "GCOV_KERNEL"),
            "objtool": True,
            "lto_blocked": ("GCOV_KERNEL", "KASAN"),
        },
        ("allmodconfig", "*", (0, 0)): {
            "debug": "none",
            "sanitizers": ("KASAN", "UBSAN_SANITIZE_ALL", "KCOV_INSTRUMENT_ALL", "GCOV_KERNEL"),
            "lto_blocked": ("GCOV_KERNEL", "KASAN"),
        },
        ("allyesconfig", "x86", (0, 0)): {
            "debug": "none",
            "modules": 63,
            "sanitizers": ("KASAN", "UBSAN_SANITIZE_ALL", "KCOV_INSTRUMENT_ALL", "GCOV_KERNEL"),
            "objtool": True,
            "lto_blocked": ("GCOV_KERNEL", "KASAN"),
        },
        ("allyesconfig", "*", (0, 0)): {
            "debug": "none",
            "sanitizers": ("KASAN", "UBSAN_SANITIZE_ALL", "KCOV_INSTRUMENT_ALL", "GCOV_KERNEL"),
            "lto_blocked": ("GCOV_KERNEL", "KASAN"),
        },
    },
    f"measured: {DOC} §9 make <target> in a scratch O= on Debian's linux-source 6.1 (gcc 12): x86 "
    "defconfig and all*config DEBUG_INFO_NONE; arm64 defconfig DWARF_TOOLCHAIN_DEFAULT + REDUCED; "
    "allmodconfig KASAN, UBSAN_SANITIZE_ALL, KCOV_INSTRUMENT_ALL, GCOV_KERNEL, IBT + NOINSTR_VALIDATION; "
    "modules (=m): x86 defconfig 13, arm64 defconfig 879, x86 allmodconfig 8,880, x86 allyesconfig 63 (test and "
    "sample modules that can only be m), tinyconfig and allnoconfig none (MODULES unset). "
    "published: lib/Kconfig.debug (DEBUG_INFO_NONE first in the choice since 5.18, DEBUG_INFO depended "
    "on !COMPILE_TEST before) and arch/Kconfig (HAS_LTO_CLANG needs !GCOV_KERNEL and !KASAN). estimate: "
    "the '*' rows of other architectures",
)


#: The debug-info options a plan may advise (to shrink the link or BTF) or keep, and what each
#: depends on in Linux 6.1's lib/Kconfig.debug (all inside ``if DEBUG_INFO``): without --tree,
#: every advised change is checked against these; with --tree, against the tree's own Kconfig.
KCONFIG_DEPENDS = _k(
    "KCONFIG_DEPENDS",
    {
        "DEBUG_INFO_REDUCED": "DEBUG_INFO",
        "DEBUG_INFO_SPLIT": "DEBUG_INFO && $(cc-option,-gsplit-dwarf)",
        "DEBUG_INFO_COMPRESSED": "DEBUG_INFO && $(cc-option,-gz=zlib) && $(ld-option,--compress-debug-sections=zlib)",
        "DEBUG_INFO_BTF": (
            "DEBUG_INFO && !DEBUG_INFO_SPLIT && !DEBUG_INFO_REDUCED && (!GCC_PLUGIN_RANDSTRUCT || COMPILE_TEST) && "
            "BPF_SYSCALL && (!DEBUG_INFO_DWARF5 || PAHOLE_VERSION >= 121)"
        ),
        "DEBUG_INFO_BTF_MODULES": "DEBUG_INFO && DEBUG_INFO_BTF && MODULES && PAHOLE_HAS_SPLIT_BTF",
    },
    f"published: {DOC} §15 lib/Kconfig.debug of Linux 6.1 (the depends on lines and the if DEBUG_INFO "
    "block around them), read with provision.rules.kconfig.kconfig_depends",
)


#: Where a tree defines the options of KCONFIG_DEPENDS (read with --tree).
KCONFIG_DEPENDS_FILE = _k(
    "KCONFIG_DEPENDS_FILE",
    "lib/Kconfig.debug",
    f"published: {DOC} §15 the debug-info options live in lib/Kconfig.debug since 2.6",
)


PAHOLE_MIN_BTF = _k(
    "PAHOLE_MIN_BTF",
    "1.16",
    f"published: {DOC} §11 Documentation/process/changes.rst of 6.1: pahole 1.16",
)


COMPILER_MIN_DEFAULT = _k(
    "COMPILER_MIN_DEFAULT",
    {"gcc": "5.1", "clang": "11.0.0"},
    f"published: {DOC} §11 changes.rst of 6.1: GNU C 5.1, Clang 11.0.0 (used without a tree)",
)


#: uname -m -> kernel ARCH= (the kernel Makefile's SUBARCH mapping) and a GNU cross prefix.
KERNEL_ARCH = _k(
    "KERNEL_ARCH",
    {
        "x86_64": "x86", "i686": "x86", "i386": "x86", "aarch64": "arm64", "arm64": "arm64",
        "armv7l": "arm", "armv6l": "arm", "riscv64": "riscv", "ppc64le": "powerpc",
        "ppc64": "powerpc", "s390x": "s390", "mips64": "mips", "loongarch64": "loongarch",
    },
    f"published: kernel top-level Makefile SUBARCH (sed on uname -m; {DOC} §11)",
)


CROSS_COMPILE_PREFIX = _k(
    "CROSS_COMPILE_PREFIX",
    {
        "x86": "x86_64-linux-gnu-", "arm64": "aarch64-linux-gnu-", "arm": "arm-linux-gnueabihf-",
        "riscv": "riscv64-linux-gnu-", "powerpc": "powerpc64le-linux-gnu-", "s390": "s390x-linux-gnu-",
        "mips": "mips64-linux-gnuabi64-", "loongarch": "loongarch64-linux-gnu-",
    },
    f"published: Debian/Ubuntu gcc-<triplet> cross toolchain package names ({DOC} §11); the prefix "
    f"for a family without a CROSS_TOOLCHAINS row ({DOC} §17)",
)


#: The kernel ARCH= names --arch accepts: the arch/ directories of Linux 6.1.
KERNEL_ARCHES = _k(
    "KERNEL_ARCHES",
    (
        "alpha", "arc", "arm", "arm64", "csky", "hexagon", "ia64", "loongarch", "m68k", "microblaze", "mips",
        "nios2", "openrisc", "parisc", "powerpc", "riscv", "s390", "sh", "sparc", "um", "x86", "xtensa",
    ),
    f"published: the arch/ directories of Debian's linux-source 6.1 ({DOC} §17)",
)


#: Other names users give an architecture (uname -m, Debian and GNU triplet names) -> kernel ARCH=.
ARCH_ALIASES = _k(
    "ARCH_ALIASES",
    {
        "aarch64": "arm64", "x86_64": "x86", "amd64": "x86", "i386": "x86", "i686": "x86",
        "armhf": "arm", "armel": "arm", "armv7l": "arm", "armv6l": "arm", "riscv64": "riscv",
        "ppc64le": "powerpc", "ppc64el": "powerpc", "ppc64": "powerpc", "ppc": "powerpc", "s390x": "s390",
        "mips64": "mips", "mips64el": "mips", "mipsel": "mips", "loongarch64": "loongarch",
        "sparc64": "sparc", "hppa": "parisc", "parisc64": "parisc",
    },
    f"published: the kernel Makefile's SUBARCH mapping of uname -m and Debian's architecture names "
    f"({DOC} §17)",
)


#: family -> kernel ARCH -> (CROSS_COMPILE prefix, the packages of the GNU cross toolchain). An
#: arch a family has no row for: the family packages no cross gcc for it that kprov knows (the
#: plan says so); suse and alpine have none (§17 says why).
CROSS_TOOLCHAINS = _k(
    "CROSS_TOOLCHAINS",
    {
        "debian": {
            "arm64": ("aarch64-linux-gnu-", ("gcc-aarch64-linux-gnu", "binutils-aarch64-linux-gnu")),
            "arm": ("arm-linux-gnueabihf-", ("gcc-arm-linux-gnueabihf", "binutils-arm-linux-gnueabihf")),
            "riscv": ("riscv64-linux-gnu-", ("gcc-riscv64-linux-gnu", "binutils-riscv64-linux-gnu")),
            "powerpc": ("powerpc64le-linux-gnu-", ("gcc-powerpc64le-linux-gnu", "binutils-powerpc64le-linux-gnu")),
            "s390": ("s390x-linux-gnu-", ("gcc-s390x-linux-gnu", "binutils-s390x-linux-gnu")),
            "mips": ("mips64-linux-gnuabi64-", ("gcc-mips64-linux-gnuabi64", "binutils-mips64-linux-gnuabi64")),
        },
        "redhat": {
            "arm64": ("aarch64-linux-gnu-", ("gcc-aarch64-linux-gnu", "binutils-aarch64-linux-gnu")),
            "x86": ("x86_64-linux-gnu-", ("gcc-x86_64-linux-gnu",)),
        },
        "arch": {
            "arm64": ("aarch64-linux-gnu-", ("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-binutils")),
            "riscv": ("riscv64-linux-gnu-", ("riscv64-linux-gnu-gcc", "riscv64-linux-gnu-binutils")),
        },
    },
    f"published: each family's own package index ({DOC} §17): Debian 12 apt-cache show (gcc-defaults "
    "and binutils cross packages), Fedora packages.fedoraproject.org cross-gcc ('only building kernels is "
    "supported'), Arch Linux archlinux.org/packages extra",
)


def cross_toolchain(family: str, arch: str) -> tuple[str, tuple[str, ...]] | None:
    """(CROSS_COMPILE prefix, packages) of ``family``'s GNU cross toolchain for kernel ``arch``, or None."""
    return CROSS_TOOLCHAINS.get(family, {}).get(arch)


def cross_prefix(family: str, arch: str) -> str:
    """The CROSS_COMPILE prefix for ``arch`` on ``family`` ("" when kprov knows none)."""
    row = cross_toolchain(family, arch)
    return row[0] if row else CROSS_COMPILE_PREFIX.get(arch, "")


#: (config target, kernel ARCH) -> its own cost class, measured by cross-compiling it here
#: (§17): arm64 defconfig builds 879 modules to x86's 13, with DWARF (REDUCED). One entry per
#: class: the figures measured, the rest None (the base class's figure is used, an estimate).
ARCH_COST = _k(
    "ARCH_COST",
    {
        ("defconfig", "arm64"): {
            "class": "arm64-default",
            "base": "default",
            "debug": "dwarf",  # what the figures were measured with: DWARF_TOOLCHAIN_DEFAULT + REDUCED
            "variant": "reduced",
            "units": 7990,  # compile jobs measured: every one of the build (complete)
            "complete": True,
            "per_job_mib": {"p50": 98, "p90": 133, "p99": 173, "max": 283},
            "cpu_seconds": 4272,  # user + sys of the whole build (3,619 + 653)
            "cpu_seconds_measured": 3812,  # the compile jobs' own user + sys
            "link_peak_mib": 498,  # the largest ld of the vmlinux chain (ld -r of vmlinux.o; the final ld 459)
            "modules": 879,
        },
    },
    f"measured: {DOC} §17 make ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- defconfig, then nice -n 19 make "
    "-j2 of Debian's linux-source 6.1 with gcc 12.2 aarch64-linux-gnu, a wrapper recording each compiler "
    "call's peak RSS and CPU: all 7,990 compile jobs, p50/p90/p99/max 98/133/173/283 MiB; the whole build "
    "4,272 CPU-s (user + sys); vmlinux.o's ld 498 MiB; 879 =m options (1,016 .ko files). estimate: what a row "
    "leaves None (the x86 defconfig figure, said so in the plan)",
)


def arch_class(target: str, arch: str | None) -> str | None:
    """The cost class of ``target`` built for kernel ``arch`` when it has one of its own (ARCH_COST)."""
    row = ARCH_COST.get((target, arch or ""))
    return row["class"] if row else None


def arch_cost_row(target_class: str) -> dict[str, Any] | None:
    return next((row for row in ARCH_COST.values() if row["class"] == target_class), None)


def arch_cost_story(target_class: str) -> str | None:
    """What a plan says about an ARCH_COST class: what was measured, and what is still an estimate."""
    for (target, arch), row in ARCH_COST.items():
        if row["class"] != target_class:
            continue
        p = row["per_job_mib"]
        measured = [f"per job p50/p90/p99/max {p['p50']}/{p['p90']}/{p['p99']}/{p['max']} MiB over "
                    f"{'all' if row['complete'] else 'a sample of'} {row['units']:,} compile jobs"]
        estimated = []
        if row["cpu_seconds"] is not None:
            measured.append(f"the whole build {row['cpu_seconds'] / 60:.0f} CPU-minutes")
        else:
            estimated.append(f"compile CPU at least the {row['cpu_seconds_measured'] / 60:.0f} CPU-minutes of the "
                             "jobs measured (x86 defconfig's figure where that is more)")
        if row["link_peak_mib"] is not None:
            measured.append(f"vmlinux link {row['link_peak_mib']:.0f} MiB")
        else:
            estimated.append("the vmlinux link x86 defconfig's figure")
        measured.append(f"{row['modules']} modules")
        estimated.append("make prepare and the vmlinux step's time x86 defconfig's")
        text = f"{target} for {arch} is costed as {target_class} (docs/calibration.md §17): measured " + ", ".join(measured)
        return text + f"; estimates until measured: {', '.join(estimated)}"
    return None


def _add_arch_classes() -> None:
    """Each ARCH_COST class in every class-keyed table: its measured figures, stored so that the
    look-ups below give them back for the debug info they were measured with (a figure measured
    with DWARF is divided by the factor the look-up multiplies it by), and the base class's figure
    where the row has none."""
    global CLASSES
    for row in ARCH_COST.values():
        klass, base = row["class"], row["base"]
        dwarf = row["debug"] != "none"
        mem = DEBUG_MEMORY_FACTOR["dwarf"] if dwarf else 1.0
        per_job = row["per_job_mib"]
        PER_JOB_MIB[klass] = per_job["p99"] / mem if per_job else PER_JOB_MIB[base]
        # the whole build grows by about the median job per extra job (x86 defconfig: 70 MiB, cc1 median 75)
        PER_JOB_AVERAGE_MIB[klass] = per_job["p50"] / mem if per_job else PER_JOB_AVERAGE_MIB[base]
        time = BUILD_TIME_FACTOR["dwarf"] if dwarf else 1.0
        if row["cpu_seconds"] is not None:
            BUILD_CPU_SECONDS[klass] = row["cpu_seconds"] / time
        else:  # never below what the measured jobs alone took
            BUILD_CPU_SECONDS[klass] = max(BUILD_CPU_SECONDS[base], row["cpu_seconds_measured"] / time)
        for kind in ("none", "dwarf"):
            LINK_PEAK_MIB[(klass, kind)] = LINK_PEAK_MIB[(base, kind)]
            BUILD_OUTPUT_GIB[(klass, kind)] = BUILD_OUTPUT_GIB[(base, kind)]
        if row["link_peak_mib"] is not None:
            factor = LINK_DEBUG_VARIANT_FACTOR.get(row["variant"], 1.0) if dwarf else 1.0
            LINK_PEAK_MIB[(klass, "dwarf" if dwarf else "none")] = row["link_peak_mib"] / factor
        for (k, kind, since), mib in list(OBJTOOL_PEAK_MIB.items()):
            if k == base:
                OBJTOOL_PEAK_MIB[(klass, kind, since)] = mib
        for table in (PREPARE_SECONDS, LINK_SECONDS, LTO_FULL_LINK_MIB, CCACHE_FOOTPRINT_MIB):
            table[klass] = table[base]
        if klass not in CLASSES:
            CLASSES = (*CLASSES, klass)


_add_arch_classes()


def debug_kind(debug_info: str) -> str:
    """``btf`` is DWARF plus pahole: tables keyed by debug info use the dwarf row for it."""
    return "none" if debug_info == "none" else "dwarf"


def _job_factor(target_class: str, compiler: str, debug_info: str, sanitizers: bool) -> float:
    factor = COMPILER_MEMORY_FACTOR[compiler] * DEBUG_MEMORY_FACTOR[debug_kind(debug_info)]
    if sanitizers and target_class not in ("allmod", "allyes"):
        factor *= SANITIZER_MEMORY_FACTOR
    return factor


def per_job_mib(target_class: str, compiler: str, debug_info: str, sanitizers: bool = False) -> float:
    """One compile job at its p99: cc1 p99 x compiler x debug factor, plus ``as``."""
    return PER_JOB_MIB[target_class] * _job_factor(target_class, compiler, debug_info, sanitizers) + AS_PER_JOB_MIB


def average_job_mib(target_class: str, compiler: str, debug_info: str, sanitizers: bool = False) -> float:
    """What each further compile job adds on average (the whole build's growth per job)."""
    return PER_JOB_AVERAGE_MIB[target_class] * _job_factor(target_class, compiler, debug_info, sanitizers)


def link_peak_mib(target_class: str, debug_info: str, variant: str = "") -> float:
    """The vmlinux link's peak; ``variant`` is reduced, split or compressed debug info."""
    peak = LINK_PEAK_MIB[(target_class, debug_kind(debug_info))]
    if debug_info != "none" and variant in LINK_DEBUG_VARIANT_FACTOR:
        peak = max(LINK_PEAK_MIB[(target_class, "none")], peak * LINK_DEBUG_VARIANT_FACTOR[variant])
    return peak


def objtool_peak_mib(target_class: str, debug_info: str, version: tuple[int, ...] | None) -> float:
    """objtool's peak over the whole vmlinux.o, from the row for the newest kernel not after ``version``
    (an unknown version takes the oldest row: the larger figure)."""
    kind = debug_kind(debug_info)
    rows = sorted((since, mib) for (klass, k, since), mib in OBJTOOL_PEAK_MIB.items() if klass == target_class and k == kind)
    chosen = rows[0][1]
    for since, mib in rows:
        if version is not None and tuple(version[:2]) >= since:
            chosen = mib
    return chosen


def build_output_gib(target_class: str, debug_info: str) -> float:
    return BUILD_OUTPUT_GIB[(target_class, debug_kind(debug_info))]


def ccache_footprint_mib(target_class: str, debug_info: str) -> float:
    factor = 1.0 if debug_info == "none" else CCACHE_DEBUG_FACTOR
    return CCACHE_FOOTPRINT_MIB[target_class] * factor


def zram_rescue_bytes(budget: int) -> int:
    """The most zram is counted for beside a RAM budget: a phase may be ZRAM_RESCUE_FRACTION short of
    its need, so need <= budget / (1 - fraction)."""
    return int(budget * ZRAM_RESCUE_FRACTION / (1 - ZRAM_RESCUE_FRACTION))


def zram_ratio(algorithm: str) -> float:
    return ZRAM_RATIO.get(algorithm, ZRAM_RATIO_UNKNOWN)


def build_cpu_seconds(target_class: str, compiler: str, debug_info: str, sanitizers: bool = False) -> float:
    seconds = BUILD_CPU_SECONDS[target_class] * BUILD_TIME_FACTOR[compiler]
    if debug_info != "none":
        seconds *= BUILD_TIME_FACTOR[debug_info]
    if sanitizers and target_class not in ("allmod", "allyes"):
        seconds *= BUILD_TIME_FACTOR["sanitizers"]
    return seconds


def config_traits_row(target: str, arch: str | None, version: tuple[int, ...] | None) -> tuple[dict, str]:
    """The CONFIG_TRAITS row for ``target`` on ``arch`` (kernel ARCH name) and kernel ``version``,
    and which row it was (for the reason text). An unknown version takes the newest row."""
    best: tuple[tuple[int, int], dict, str] | None = None
    for (name, row_arch, since), row in CONFIG_TRAITS.items():
        if name != target or row_arch not in (arch, "*"):
            continue
        if version is not None and tuple(version[:2]) < since:
            continue
        rank = (1 if row_arch != "*" else 0, since)
        key = f"{name}/{row_arch}/{'.'.join(map(str, since)) if since != (0, 0) else 'any'}"
        if best is None or rank > best[0]:
            best = (rank, row, key)
    if best is None:
        return {"debug": "none"}, f"{target}/*/any"
    return best[1], best[2]
