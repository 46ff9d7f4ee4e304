"""The only code that reads a host: facts for the planner, never decisions.

``local`` measures this host (CPUs, memory and cgroup limits, disks, distro, zram, toolchain);
``tree`` reads a kernel tree's Makefile, ``.config`` and minimum tool versions, and the running
kernel's config; ``ansible`` turns Ansible's setup facts (and the role's probe) into the same
HostFacts; ``files`` reads files with a size bound and JSON strictly; ``catalog`` reads the
role's package lists; ``cache_probe`` asks a compile cache store whether it answers; ``measured``
reads what ``kprov calibrate`` and ``kprov build`` measured (one profile format, one loader).

May import: model, rules and the base modules.
"""
