#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kprov developers
# Apache License 2.0 (see LICENSE, or https://www.apache.org/licenses/LICENSE-2.0)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kbuild_host_probe
short_description: Report what a kernel build may use on a host beyond Ansible's setup facts
description:
  - Reads C(/proc), C(/sys) and C(/etc) on the managed host and reports the facts the kprov planner needs
    that M(ansible.builtin.setup) does not gather.
  - CPU affinity, the cgroup v1 or v2 CPU quota and memory limit of the probing process, physical cores,
    the compressors the kernel offers to zram (from C(/sys/block/zram*/comp_algorithm), else C(/proc/crypto)),
    zram devices already used as swap, swap totals, and whether the host is a container or a VM.
  - With O(toolchain=true), the versions of the build tools and the compiler facts a distcc farm compares.
version_added: "0.1.0"
author:
  - kprov developers (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  root:
    description:
      - Directory under which C(/proc), C(/sys), C(/dev), C(/etc) and the compiler driver directories are read.
        Only useful for testing against a copied tree; the tools of O(toolchain) always run on the host itself.
    type: path
    default: /
  toolchain:
    description:
      - Also run C(gcc), C(clang), C(ld), C(ld.lld), C(make), C(ccache), C(distcc), C(pahole), C(flex), C(bison),
        C(bc), C(openssl), C(python3) and C(rustc) with their version option and report the versions
        (RV(probe.toolchain)) and the compiler facts (RV(probe.toolchain_facts)).
    type: bool
    default: true
  ccache_group:
    description:
      - Group whose members are reported as RV(probe.ccache_group_members) (the shared ccache's writers).
    type: str
    default: kbuild
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: linux
notes:
  - Never changes anything; it always returns C(changed=false) and runs the same in check mode.
  - Needs only the Python standard library on the managed host.
  - Inside a container the cgroup limits are those of the container, which is what a build there gets.
"""

EXAMPLES = r"""
- name: Probe build-relevant host facts
  kprov.kbuild.kbuild_host_probe: {}
  register: __kbuild_host_probe

- name: Show the CPUs a build can use
  ansible.builtin.debug:
    msg: "{{ __kbuild_host_probe.probe.cpu.usable }} usable CPUs, zram offers {{ __kbuild_host_probe.probe.zram.compressors }}"

- name: Probe without running the build tools, with the members of another ccache group
  kprov.kbuild.kbuild_host_probe:
    toolchain: false
    ccache_group: ccache
"""

RETURN = r"""
probe:
  description: What the host offers a kernel build.
  returned: success
  type: dict
  contains:
    cpu:
      description: The CPUs a build can use.
      type: dict
      returned: success
      sample: {"logical": 32, "affinity": 32, "physical_cores": 16, "cgroup_quota": 4.0, "usable": 4, "model": "AMD EPYC 7543"}
      contains:
        logical:
          description: Logical CPUs of the host (C(os.cpu_count)).
          type: int
        affinity:
          description: CPUs this process may run on (C(sched_getaffinity)), V(null) when that cannot be read.
          type: int
        physical_cores:
          description: Physical cores (from C(/proc/cpuinfo), else the sysfs CPU topology), V(null) when unknown.
          type: int
        cgroup_quota:
          description: The cgroup CPU quota in CPUs, V(null) when unlimited.
          type: float
        usable:
          description: The CPUs a build can keep busy, the affinity capped by the quota rounded up.
          type: int
        model:
          description: The CPU model name, empty when C(/proc/cpuinfo) names none.
          type: str
    memory:
      description: Memory, from C(/proc/meminfo) and the cgroup.
      type: dict
      returned: success
      sample: {"total_bytes": 68719476736, "available_bytes": 60000000000, "cgroup_limit_bytes": 4294967296, "cgroup_usage_bytes": 52338688}
      contains:
        total_bytes:
          description: C(MemTotal).
          type: int
        available_bytes:
          description: C(MemAvailable).
          type: int
        cgroup_limit_bytes:
          description: The cgroup memory limit, V(null) when unlimited.
          type: int
        cgroup_usage_bytes:
          description: The memory the cgroup uses, V(null) when unknown.
          type: int
        cgroup_swap_limit_bytes:
          description:
            - The swap the cgroup may use (v1 memsw less the memory limit, v2 C(memory.swap.max)).
            - V(0) when it may not swap, V(null) when unknown or unlimited.
          type: int
        cgroup_high_bytes:
          description: The cgroup v2 C(memory.high), V(null) when not set or on v1.
          type: int
    cgroup:
      description: The cgroup limits of the probing process.
      type: dict
      returned: success
      sample: {"version": "v2", "cpu_quota": 4.0, "memory_limit_bytes": 4294967296, "memory_usage_bytes": 52338688,
               "cpu_source": "/sys/fs/cgroup/cpu.max", "memory_source": "/sys/fs/cgroup/memory.max"}
      contains:
        version:
          description: The cgroup hierarchy.
          type: str
          choices: [v1, v2, hybrid, none]
        cpu_quota:
          description: The CPU quota in CPUs, V(null) when unlimited.
          type: float
        memory_limit_bytes:
          description: The memory limit, V(null) when unlimited.
          type: int
        memory_usage_bytes:
          description: The memory in use, V(null) when unknown.
          type: int
        cpu_source:
          description: The file the CPU quota came from, V(null) when none.
          type: str
        memory_source:
          description: The file the memory limit came from, V(null) when none.
          type: str
        swap_limit_bytes:
          description: The swap the cgroup may use, V(0) when none, V(null) when unknown or unlimited.
          type: int
        memory_high_bytes:
          description: The tightest cgroup v2 C(memory.high) along the path, V(null) when not set or on v1.
          type: int
    swap:
      description: Swap, from C(/proc/swaps).
      type: dict
      returned: success
      sample: {"total_bytes": 0, "free_bytes": 0, "devices": []}
      contains:
        total_bytes:
          description: The size of all swap devices.
          type: int
        free_bytes:
          description: The swap not in use.
          type: int
        devices:
          description: The swap devices and files.
          type: list
          elements: str
    zram:
      description: What the kernel offers to zram, and the zram swap already there.
      type: dict
      returned: success
      sample: {"compressors": ["lzo-rle", "lzo", "lz4"], "active": "lzo-rle", "source": "sysfs", "device_present": true,
               "sysfs_devices": ["zram0"], "devices_in_use": [], "kprov_devices": [], "foreign_configs": [],
               "config_sha256": {"/etc/default/zramswap": null, "/etc/systemd/zram-generator.conf": null},
               "swap_bytes": 0, "proc_sys_writable": true, "sysfs_writable": true}
      contains:
        compressors:
          description: The compressors the kernel offers, in its order.
          type: list
          elements: str
        active:
          description: The compressor zram uses now (the bracketed one in sysfs), V(null) when not read from sysfs.
          type: str
        source:
          description: Where the compressors were read.
          type: str
          choices: [sysfs, proc-crypto, none]
        device_present:
          description: Whether C(/dev/zram0) exists.
          type: bool
        sysfs_devices:
          description: The zram devices in C(/sys/block), such as C(zram0).
          type: list
          elements: str
        devices_in_use:
          description: The zram devices active as swap, such as C(/dev/zram0).
          type: list
          elements: str
        kprov_devices:
          description: Those of RV(probe.zram.devices_in_use) that kprov's zram record says are kprov's.
          type: list
          elements: str
        foreign_configs:
          description: The zram tool configurations (C(/etc/default/zramswap), C(/etc/systemd/zram-generator.conf))
            with settings of their own that kprov did not write and that are not the package's default.
          type: list
          elements: str
        config_sha256:
          description: Each of those zram tool configuration paths mapped to the sha256 of the file, V(null) when it
            is missing.
          type: dict
        swap_bytes:
          description: The size of the zram devices active as swap.
          type: int
        proc_sys_writable:
          description: Whether this host may change C(/proc/sys/vm) (not in a container that mounts it read-only).
          type: bool
        sysfs_writable:
          description: Whether this host may size C(/sys/block/zram0).
          type: bool
    virtualization:
      description: V(none), V(vm), or V(container:<technology>) such as V(container:podman).
      type: str
      returned: success
      sample: container:podman
    virtualization_evidence:
      description: The signs that decided RV(probe.virtualization).
      type: list
      elements: str
      returned: success
    service_manager:
      description: V(systemd) when systemd runs the host (C(/run/systemd/system) is a directory), else the name of
        PID 1, empty when it cannot be read.
      type: str
      returned: success
      sample: systemd
    toolchain:
      description: Each tool of O(toolchain) mapped to its dotted version, V(null) when the tool is absent. Empty
        when O(toolchain=false).
      type: dict
      returned: success
      sample: {"gcc": "12.2.0", "clang": null, "ld": "2.40", "make": "4.3", "ccache": "4.7.5"}
    toolchain_facts:
      description: What decides whether two hosts build the same objects, and what a distcc server can run.
        V(null) when O(toolchain=false).
      type: dict
      returned: success
      contains:
        compilers:
          description: C(gcc) and C(clang) when present, each with C(kind), C(version_text) (the first line of
            C(--version), as C(CONFIG_CC_VERSION_TEXT) records it), C(version), C(triplet) (C(-dumpmachine)) and
            C(driver) (the versioned driver that exists, such as C(x86_64-linux-gnu-gcc-12), else V(null)).
          type: list
          elements: dict
          sample: [{"kind": "gcc", "version_text": "gcc (Debian 12.2.0-14) 12.2.0", "version": "12.2.0",
                    "triplet": "x86_64-linux-gnu", "driver": "x86_64-linux-gnu-gcc-12"}]
        drivers:
          description: Versioned compiler drivers in C(/usr/bin) mapped to their version line (at most 8).
          type: dict
        assembler:
          description: The first line of C(as --version), V(null) when absent.
          type: str
        linker:
          description: The first line of C(ld --version), V(null) when absent.
          type: str
        lld:
          description: The first line of C(ld.lld --version), V(null) when absent.
          type: str
        pahole:
          description: The first line of C(pahole --version), V(null) when absent.
          type: str
        distcc_links:
          description: The names in C(/usr/lib/distcc), V(null) without that directory.
          type: list
          elements: str
    ccache_group_members:
      description: Members of O(ccache_group) in C(/etc/group) and C(/etc/passwd) (its listed members, then the
        accounts whose primary group it is); V(null) when the group does not exist.
      type: list
      elements: str
      returned: success
      sample: [builder]
"""

from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.kbuild_host_sysprobe import (
    TOOL_ENV,
    TOOLS,
    group_members,
    list_names,
    parse_tool_version,
    probe,
    toolchain_facts,
)


def tool_version(module, argv):
    """Version of one tool, or None when it is not on PATH or prints no version."""
    path = module.get_bin_path(argv[0])
    if not path:
        return None
    rc, out, err = module.run_command([path] + list(argv[1:]), check_rc=False, environ_update=TOOL_ENV)
    return parse_tool_version(out) or parse_tool_version(err)


def toolchain(module):
    """All of TOOLS, run concurrently: a probe must stay cheap on a fleet."""
    with ThreadPoolExecutor(max_workers=len(TOOLS)) as pool:
        futures = [(name, pool.submit(tool_version, module, argv)) for name, argv in TOOLS]
        return dict((name, fut.result()) for name, fut in futures)


def command_output(module, argv):
    """A command's standard output, None when it is not on PATH or fails."""
    path = module.get_bin_path(argv[0])
    if not path:
        return None
    rc, out, err = module.run_command([path] + list(argv[1:]), check_rc=False, environ_update=TOOL_ENV)
    return out if rc == 0 else None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", default="/"),
            toolchain=dict(type="bool", default=True),
            ccache_group=dict(type="str", default="kbuild"),
        ),
        supports_check_mode=True,
    )
    try:
        result = probe(module.params["root"])
        result["toolchain"] = toolchain(module) if module.params["toolchain"] else {}
        result["toolchain_facts"] = (
            toolchain_facts(lambda argv: command_output(module, argv), list_names, module.params["root"])
            if module.params["toolchain"] else None
        )
        result["ccache_group_members"] = group_members(module.params["ccache_group"], module.params["root"])
    except Exception as exc:  # a parser bug must be one readable failure, not a traceback
        module.fail_json(msg="kbuild_host_probe could not read the host: %s" % exc)
    module.exit_json(changed=False, probe=result)


if __name__ == "__main__":
    main()
