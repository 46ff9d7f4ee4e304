"""``kprov build`` and ``kprov history``: run the plan's make line watched and recorded, and
list (or draw) the builds recorded so far."""

from __future__ import annotations

import os
import pwd
import re
import shlex
import tempfile
from pathlib import Path

from plumbum import cli

from provision.cli.app import Kprov, KprovApp, Text, Whole, emit, say_line
from provision.cli.switches import PlanningSwitches
from provision.errors import UserError, escaped, shown


@Kprov.subcommand("build")
class BuildCommand(KprovApp, PlanningSwitches):
    """Run the plan's make line (or yours after --) watched: phases, memory, a record of the build"""

    as_root = cli.Flag(
        "--as-root", help="Build as root outside a container (a kernel build runs the tree's own code)"
    )

    def main(self, *make_args):
        from provision.build import record as records
        from provision.build.report import next_plan, summary
        from provision.build.run import BuildRequest, run_build

        if self.facts_file or self.ansible_facts_file:
            raise UserError("kprov build builds on this host: --facts/--ansible-facts are for kprov plan")
        if any("\n" in a or "\0" in a for a in make_args):
            raise UserError("kprov build: a make argument holds a newline or a NUL byte")
        jobs_asked = _jobs_of(make_args)  # checked before anything of the tree runs
        tree = os.path.abspath(self.tree) if self.tree else os.getcwd()
        if os.geteuid() == 0:
            from provision.facts.local import gather
            from provision.tree.ownership import tree_runner

            # before anything of the tree runs (planning evaluates its Kconfig): a container is
            # where builds run as root on purpose (CI), anywhere else root needs to ask
            if not self.as_root and not gather().in_container:
                raise UserError(
                    "kprov build runs the tree's own code (its Makefile and scripts): build as your own user, "
                    "or pass --as-root to build as root"
                )
            runner, _real = tree_runner(tree)
            if runner.drops:
                raise UserError(
                    f"kprov build: {escaped(tree)} is {escaped(runner.name)}'s: build it as {escaped(runner.name)} "
                    "(root never runs another user's tree)"
                )
        if not self.tree and os.path.isfile(os.path.join(tree, "Makefile")):
            self.tree = tree  # the tree it builds is the tree it plans (its Kconfig, its recorded builds)
        facts, plan = self.plan_with_facts()
        if not os.path.isfile(os.path.join(tree, "Makefile")):
            raise UserError(f"kprov build: {escaped(tree)} has no Makefile (give the kernel tree with --tree)")
        if make_args:
            # the user's targets and -j replace the plan's; the plan's variables (O=, CC=) stay
            argv = ["make", *(f"{k}={v}" for k, v in plan.config.make_vars.items()), *make_args]
            jobs = jobs_asked
        else:
            argv = shlex.split(plan.config.make_command)
            jobs = plan.jobs.value
        env = dict(os.environ)
        env.update({k: v for k, v in plan.env.items() if k not in ("MAKEFLAGS", "KPROV_MAKE_ARGS", "KBUILD_OUTPUT")})
        from provision.planner.shared_cache import env_for_tree

        env.update(env_for_tree(plan.ccache, os.path.realpath(tree)))  # this tree's base_dir and debug map
        out_dir = os.path.join(tree, plan.config.make_vars.get("O") or ".")
        key_hash = _config_hash(out_dir)  # the .config this build starts from, if it has one
        # its CPU and time are the whole build's only when it builds everything from nothing
        timed = _whole_build(make_args) and not os.path.exists(os.path.join(out_dir, "init", "main.o"))
        version = facts.tree.kernel_version if facts.tree is not None else None
        previous = [r for r in records.load() if (r.host, r.tree_version, r.config_hash, r.compiler, r.arch)
                    == (facts.hostname, version, key_hash, plan.config.compiler, facts.arch) and r.exit_code == 0 and r.units]
        if previous:
            last = previous[-1]
            expected_units, expected_seconds = last.units or None, last.wall_seconds
            source = f"the last build of this tree and config, {last.started}"
        else:
            expected_units, expected_seconds = None, plan.estimate.seconds if plan.estimate else None
            source = "the plan's estimate"
        request = BuildRequest(
            argv=argv, cwd=tree, env=env, host=facts.hostname, user=pwd.getpwuid(os.geteuid()).pw_name,
            compiler=plan.config.compiler, arch=facts.arch, jobs=jobs, tree=tree, tree_version=version,
            config_hash=key_hash, budget_bytes=plan.jobs.budget_bytes,
            planned_peaks={p.name: p.peak_bytes for p in plan.phases},
            expected_units=expected_units, expected_seconds=expected_seconds, expected_source=source,
            uses_ccache="ccache" in " ".join(argv),
        )
        records.check_writable()  # a history that is not a regular file fails now, not after the build
        say_line(f"kprov: building in {escaped(tree)}: {escaped(shlex.join(argv))}")
        result = run_build(request)
        kconfig = _config_facts(out_dir, plan.config.target)  # the .config the build ended with
        result.config_hash = kconfig.config_hash if kconfig is not None else _config_hash(out_dir)
        profile = None
        if kconfig is not None:
            hits = result.ccache.get("local_storage_hit", 0) + result.ccache.get("remote_storage_hit", 0)
            profile = records.profile_of(result, kconfig, facts.cpu.model, facts.cpu.usable,
                                         timed and hits <= CACHED_SHARE * max(1, result.units))
            result.profile = profile.to_dict() if profile is not None else None
        path = records.append(result)
        emit(summary(result))
        if profile is not None:
            emit(next_plan(profile, tree, self.build_dir))
        say_line(f"kprov: build recorded in {path}")
        return 0 if result.exit_code == 0 else 1


#: Compile units ccache may answer in a build whose CPU-minutes still count as the whole build's.
CACHED_SHARE = 0.05
#: Targets that build the whole tree (with a config target before them, or none at all).
WHOLE_TARGETS = frozenset({"all", "vmlinux", "modules", "bzImage", "Image", "Image.gz", "zImage", "vmlinuz"})


def _whole_build(make_args: tuple[str, ...]) -> bool:
    """The build's targets build the whole tree: the plan's make line, or the user's targets that
    are all whole-tree or config targets (``-j2 tinyconfig all``), or no target (make's default)."""
    targets = [a for a in make_args if not a.startswith("-") and "=" not in a and not a.isdigit()]
    builds = [t for t in targets if not t.endswith("config")]
    return all(t in WHOLE_TARGETS for t in builds)


def _dot_config(out_dir: str) -> str | None:
    """The text of ``out_dir``'s .config, None without one (or unreadable)."""
    from provision.facts.files import read_bounded

    path = os.path.join(out_dir, ".config")
    if not os.path.isfile(path):
        return None
    try:
        return read_bounded(path, ".config").decode("utf-8", "replace")
    except (UserError, OSError):
        return None


def _config_facts(out_dir: str, target: str):
    """The build's .config as KconfigFacts (version, arch, compiler, hash), None without one."""
    from provision.tree.kconfig import describe

    text = _dot_config(out_dir)
    try:
        return describe(text, target, source="tree") if text is not None else None
    except (UserError, ValueError):
        return None


def _config_hash(out_dir: str) -> str | None:
    """The config hash (as calibration profiles are keyed) of ``out_dir``'s .config, if any."""
    from provision.tree.kconfig import config_hash

    text = _dot_config(out_dir)
    return config_hash(text) if text is not None else None


_DIGITS = re.compile(r"[0-9]{1,6}", re.ASCII)


def _jobs_of(args: tuple[str, ...]) -> int | None:
    """The -j the user's own make arguments ask for (``-j8``, ``-j 8``, ``--jobs=8``), if any; a
    -j whose count is not ASCII digits is refused (make would read it otherwise than the record)."""
    for i, a in enumerate(args):
        for prefix in ("-j", "--jobs="):
            if a.startswith(prefix) and len(a) > len(prefix):
                count = a[len(prefix):]
                if not _DIGITS.fullmatch(count):
                    raise UserError(f"kprov build: make argument {shown(a)}: -j takes a whole number")
                return int(count)
        if a in ("-j", "--jobs") and i + 1 < len(args) and _DIGITS.fullmatch(args[i + 1]):
            return int(args[i + 1])
    return None


@Kprov.subcommand("history")
class HistoryCommand(KprovApp):
    """The builds kprov build recorded: a table, JSON, or one build drawn as SVG"""

    as_json = cli.Flag("--json", help="The records as JSON (without the memory samples)")
    plot_file = cli.SwitchAttr("--plot", Text("a file name"), argname="FILE.svg", help="Draw a build as SVG")
    number = cli.SwitchAttr("--build", Whole(1, 10**6), argname="N", help="Which build (the table's #; default: the last)")

    def main(self, *args):
        from provision import render
        from provision.build import record as records
        from provision.build.report import history_json, history_table, plot

        if args:
            raise UserError(f"kprov history takes no arguments (got '{args[0]}')")
        found = records.load()
        if self.plot_file:
            if not found:
                raise UserError("kprov history --plot: no build recorded yet (kprov build records one)")
            if self.number is not None and self.number > len(found):
                raise UserError(f"--build {self.number}: only {len(found)} builds are recorded")
            chosen = found[(self.number or len(found)) - 1]
            _write_new(Path(self.plot_file), plot(chosen))
            say_line(f"kprov: build {self.number or len(found)} drawn in {escaped(self.plot_file)}")
            return 0
        emit(render.render_json(history_json(found)) if self.as_json else history_table(found))
        return 0


def _write_new(path: Path, text: str) -> None:
    """Write ``path`` through a temporary file of a random name in its directory (made here, so
    only ours is ever removed), never through a symlink."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise UserError(f"--plot {shown(str(path))}: exists and is not a regular file")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UserError(f"--plot {shown(str(path))}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        os.unlink(tmp)
        raise UserError(f"--plot {shown(str(path))}: {exc.strerror}") from None
