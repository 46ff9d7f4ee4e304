"""What the farm knows about one member (:class:`FarmMember`) and its toolchain: the compiler
kinds and versions a host publishes, whether a distcc server can compile for a client, and how
a fleet's toolchains partition its shared cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provision.errors import UserError
from provision.model.facts import HostFacts, ToolchainFacts


@dataclass(frozen=True)
class MemberToolchain:
    """A member's toolchain facts with what decides whether its distro packages another's compiler."""

    facts: ToolchainFacts
    arch: str = ""
    family: str = ""  # kprov's distro family (debian, redhat, ...)
    release: str = ""  # distro id and version, e.g. "debian 12"


#: The published variable a member's toolchain is read from (hostvars), see :func:`farm_toolchain`.
TOOLCHAIN_VAR = "kbuild_host_farm_toolchain"


def farm_toolchain(facts: HostFacts) -> dict[str, Any] | None:
    """What a member publishes for the others (``kbuild_host_farm_toolchain``), None without facts."""
    if facts.toolchain_facts is None:
        return None
    return {
        "arch": facts.arch,
        "family": facts.distro.family,
        "release": f"{facts.distro.id} {facts.distro.version}".strip(),
        "toolchain": facts.toolchain_facts.to_dict(),
    }


def member_toolchain(published: Any, name: str) -> MemberToolchain | None:
    """:func:`farm_toolchain`'s dict back (from hostvars); None when the member published none."""
    if not published:
        return None
    if not isinstance(published, Mapping):
        raise UserError(f"farm member {name}: {TOOLCHAIN_VAR}: expected an object, got {type(published).__name__}")
    where = f"farm member {name}: {TOOLCHAIN_VAR}"
    text = {k: published.get(k) or "" for k in ("arch", "family", "release")}
    for key, value in text.items():
        if not isinstance(value, str):
            raise UserError(f"{where}.{key}: expected a string")
    facts = ToolchainFacts.from_dict(published.get("toolchain") or {}, f"{where}.toolchain")
    return MemberToolchain(facts=facts, **text)


def version_key(line: str | None) -> str | None:
    """A version line without the program's own name: ``gcc (Debian 12.2.0-14) 12.2.0`` and
    ``x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14) 12.2.0`` name one compiler. clang's line does not
    start with its name (``Debian clang version 14.0.6``) and is kept whole."""
    if not line:
        return None
    head, _, rest = line.partition(" ")
    return rest if rest.startswith("(") and ("gcc" in head or "cc" == head) else line


def planned_kind(toolchain: ToolchainFacts, asked: str | None) -> str | None:
    """The compiler kind a member builds with: the one asked for, else gcc when it has one (the
    planner's choice for ``auto``), else clang."""
    if asked in ("gcc", "clang"):
        return asked
    for kind in ("gcc", "clang"):
        if toolchain.compiler(kind):
            return kind
    return None


@dataclass(frozen=True)
class Verdict:
    """Whether a server compiles what a client compiles, and what it takes."""

    ok: bool
    reason: str = ""  # why not (ok False), or the install that makes it (ok True with packages)
    packages: tuple[str, ...] = ()  # what the server installs for it
    link: str | None = None  # the distcc masquerade link the server needs (the client's driver name)


def _package_for(kind: str, version: str) -> str | None:
    major = version.split(".")[0] if version else ""
    if not major.isdigit():
        return None
    return f"gcc-{major}" if kind == "gcc" else f"clang-{major}"


def compiles_for(client: MemberToolchain, server: MemberToolchain, kind: str) -> Verdict:
    """The rule: a server compiles a client's unit only with a compiler of the same version line
    (what the client's autoconf.h records) and target, run by the client's versioned driver name;
    a server of the same distro release that lacks the driver installs the distro's package."""
    mine = client.facts.compiler(kind)
    if mine is None:
        return Verdict(True)  # the client has no such compiler: its own plan says so
    name = mine.driver
    if name is None:
        return Verdict(False, f"this host has no versioned {kind} driver to name on the servers ({mine.version_text})")
    wanted = version_key(client.facts.drivers.get(name) or mine.version_text)
    theirs = server.facts.drivers.get(name)
    if theirs is not None:
        if version_key(theirs) != wanted:
            return Verdict(False, f"its {name} is '{theirs}', this host's is '{client.facts.drivers.get(name) or mine.version_text}'")
        return Verdict(True, link=name)
    package = _package_for(kind, mine.version)
    # clang takes the kernel's --target; gcc compiles for its own triplet only
    server_gcc = server.facts.compiler("gcc")
    same_target = kind == "clang" or (
        server_gcc.triplet == mine.triplet if server_gcc and server_gcc.triplet else server.arch == client.arch
    )
    if (
        package
        and client.family == server.family == "debian"
        and client.release
        and client.release == server.release
        and same_target
    ):
        return Verdict(
            True,
            f"installs {package} there ({client.release} packages the compiler this host has: {mine.version_text})",
            packages=(package,),
            link=name,
        )
    if kind == "gcc" and server.arch != client.arch:
        what = server.facts.compiler("gcc")
        target = what.triplet if what else server.arch
        return Verdict(False, f"its gcc compiles for {target} and it has no {name} (distcc would get {target} objects back)")
    why = f"it has no {name}"
    if client.release != server.release:
        why += f" and runs {server.release or 'another distro'}, not {client.release or 'this distro'}, so no package of it matches"
    return Verdict(False, why)


@dataclass(frozen=True)
class Partition:
    """Hosts whose kernel builds record the same toolchain (autoconf.h, .config): they can share
    ccache hits. ``differs`` names what sets it apart from the largest partition."""

    hosts: tuple[str, ...]
    compiler: str | None
    assembler: str | None
    linker: str | None
    pahole: str | None
    arch: str
    differs: tuple[str, ...] = ()

    def describe(self) -> str:
        what = f" ({'; '.join(self.differs)})" if self.differs else ""
        return f"{', '.join(self.hosts)}{what}"


def _toolchain_of(value: Any) -> tuple[ToolchainFacts | None, str]:
    if isinstance(value, HostFacts):
        return value.toolchain_facts, value.arch
    if isinstance(value, MemberToolchain):
        return value.facts, value.arch
    if isinstance(value, FarmMember):
        return (value.toolchain.facts, value.toolchain.arch) if value.toolchain else (None, "")
    if isinstance(value, ToolchainFacts):
        return value, ""
    return None, ""


def _pahole(line: str | None) -> str:
    return line if line else "absent"


def toolchain_partitions(
    members: Mapping[str, Any], kinds: Mapping[str, str] | None = None
) -> tuple[Partition, ...]:
    """Hosts grouped by the toolchain their kernel builds record: one partition = hosts that can
    share ccache hits; several = the cache is partitioned, each after the first saying by what.

    ``members`` maps host names to :class:`HostFacts`, :class:`MemberToolchain`,
    :class:`FarmMember` or :class:`ToolchainFacts`; ``kinds`` the compiler each host builds with
    (default: gcc where it has one). Hosts whose toolchain is unknown are left out. The largest
    partition comes first (ties: the first host's order in ``members``). Compiler lines are compared
    without the driver's own name: hosts that share a cache must also name the compiler alike in
    ``CC``, which the planner does (the versioned driver, for a shared cache and for distcc).
    """
    groups: dict[tuple, list[str]] = {}
    for name, value in members.items():
        facts, arch = _toolchain_of(value)
        if facts is None:
            continue
        kind = planned_kind(facts, (kinds or {}).get(name))
        compiler = facts.compiler(kind) if kind else None
        line = version_key((compiler and compiler.driver and facts.drivers.get(compiler.driver)) or (compiler and compiler.version_text))
        target = compiler.triplet if compiler and compiler.triplet else arch
        linker = facts.lld if kind == "clang" and facts.lld else facts.linker
        key = (f"{kind} {line}" if line else None, facts.assembler, linker, facts.pahole, target)
        groups.setdefault(key, []).append(str(name))
    ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))
    parts = []
    first = ordered[0][0] if ordered else None
    labels = ("compiler", "assembler", "linker", "pahole", "target")
    for key, hosts in ordered:
        differs = []
        if key != first:
            for label, mine, theirs in zip(labels, key, first):
                if mine != theirs:
                    if label == "pahole" and (mine is None or theirs is None):
                        differs.append(f"pahole {'present' if mine else 'absent'} here, {'present' if theirs else 'absent'} there")
                    else:
                        differs.append(f"{label} '{mine or 'none'}' vs '{theirs or 'none'}'")
        parts.append(Partition(tuple(hosts), key[0], key[1], key[2], key[3], key[4] or "", tuple(differs)))
    return tuple(parts)


def partitions_text(parts: tuple[Partition, ...]) -> str:
    """One sentence for a plan: the cache is shared by all, or partitioned by toolchain and how."""
    if not parts:
        return "no toolchain facts: whether hosts share hits is unknown"
    if len(parts) == 1:
        return f"one toolchain on every host ({parts[0].compiler or 'no compiler'}): hits can cross hosts"
    largest = parts[0]
    others = "; ".join(p.describe() for p in parts[1:])
    return (
        f"partitioned by toolchain into {len(parts)}: {', '.join(largest.hosts)} ({largest.compiler or 'no compiler'}); "
        f"{others} - a build records its toolchain in autoconf.h, so hits cross only within a partition"
    )


@dataclass(frozen=True)
class FarmMember:
    """What the farm needs to know about one host, whichever way it was learned."""

    name: str  # inventory name: what every other member calls it
    address: str | None  # the address the other members reach it on
    network: str | None = None  # the subnet of ``address`` as the host reports it (CIDR), when known
    hostname: str | None = None  # its own short hostname from its facts, when it differs from ``name``
    inventory_addresses: tuple[str, ...] = ()  # addresses the inventory gives it (farm address, ansible_host)
    toolchain: MemberToolchain | None = None  # its compilers, when its facts say
    compiler: str | None = None  # the compiler its goals ask for (gcc, clang; else the farm's guess)
