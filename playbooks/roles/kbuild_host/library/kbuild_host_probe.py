#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kprov developers
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kbuild_host_probe
short_description: Report what a kernel build may use on a host beyond Ansible's setup facts
description:
  - Reads C(/proc) and C(/sys) on the managed host and reports the facts the kprov planner needs
    that C(ansible.builtin.setup) does not gather
  - CPU affinity, the cgroup v1 or v2 CPU quota and memory limit of the probing process, physical cores,
    the compressors the kernel offers to zram (from C(/sys/block/zram*/comp_algorithm), else C(/proc/crypto)),
    zram devices already used as swap, swap totals, and whether the host is a container or a VM.
  - Never changes anything; it always returns C(changed=false) and runs the same in check mode.
version_added: "0.1.0"
author:
  - kprov developers
options:
  root:
    description:
      - Directory under which C(/proc) and C(/sys) are read. Only useful for testing against a copied tree.
    type: path
    default: /
  toolchain:
    description:
      - Also run C(gcc), C(clang), C(ld), C(ld.lld), C(make), C(ccache), C(distcc), C(pahole), C(flex), C(bison),
        C(bc), C(openssl), C(python3) and C(rustc) with their version option and report the versions.
    type: bool
    default: true
  ccache_group:
    description:
      - Group whose members are reported as C(ccache_group_members) (the shared ccache's writers).
    type: str
    default: kbuild
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
notes:
  - Needs only the Python standard library on the managed host.
  - Inside a container the cgroup limits are those of the container, which is what a build there gets.
"""

EXAMPLES = r"""
- name: Probe build-relevant host facts
  kbuild_host_probe:
  register: __kbuild_host_probe

- name: Show the CPUs a build can use
  ansible.builtin.debug:
    msg: "{{ __kbuild_host_probe.probe.cpu.usable }} usable CPUs, zram offers {{ __kbuild_host_probe.probe.zram.compressors }}"
"""

RETURN = r"""
probe:
  description: What the host offers a kernel build.
  returned: always
  type: dict
  contains:
    cpu:
      description: C(logical) (os.cpu_count), C(affinity) (len of sched_getaffinity), C(physical_cores),
        C(cgroup_quota) (CPUs worth of quota, null = unlimited), C(usable) (affinity capped by ceil(quota)), C(model).
      type: dict
      sample: {"logical": 32, "affinity": 32, "physical_cores": 16, "cgroup_quota": 4.0, "usable": 4, "model": "AMD EPYC"}
    memory:
      description: C(total_bytes) and C(available_bytes) from /proc/meminfo, C(cgroup_limit_bytes) (null = unlimited),
        C(cgroup_usage_bytes).
      type: dict
      sample: {"total_bytes": 68719476736, "available_bytes": 60000000000, "cgroup_limit_bytes": 4294967296, "cgroup_usage_bytes": 52338688}
    cgroup:
      description: C(version) (v1, v2, hybrid or none), C(cpu_quota), C(memory_limit_bytes), C(memory_usage_bytes),
        and the files they came from (C(cpu_source), C(memory_source)).
      type: dict
    swap:
      description: C(total_bytes), C(free_bytes) and C(devices) from /proc/swaps.
      type: dict
      sample: {"total_bytes": 0, "free_bytes": 0, "devices": []}
    zram:
      description: C(compressors) the kernel offers (its order), C(active) (the bracketed one), C(source)
        (sysfs, proc-crypto or none), C(device_present) (/dev/zram0 exists), C(sysfs_devices), C(devices_in_use)
        (zram devices active as swap) and C(swap_bytes) (their size).
      type: dict
      sample: {"compressors": ["lzo-rle", "lzo", "lz4"], "active": "lzo-rle", "source": "sysfs", "device_present": true,
               "sysfs_devices": ["zram0"], "devices_in_use": [], "swap_bytes": 0}
    virtualization:
      description: C(none), C(vm), or C(container:<technology>) such as C(container:podman).
      type: str
      sample: container:podman
    virtualization_evidence:
      description: The signs that decided C(virtualization).
      type: list
      elements: str
    service_manager:
      description: C(systemd) when systemd runs the host (C(/run/systemd/system) is a directory), else the name of
        PID 1, empty when it cannot be read.
      type: str
      sample: systemd
    toolchain:
      description: Tool name -> dotted version, null when the tool is absent. Empty when I(toolchain=false).
      type: dict
      sample: {"gcc": "12.2.0", "clang": null, "ld": "2.40", "make": "4.3", "ccache": "4.7.5"}
    toolchain_facts:
      description: C(compilers) (each C(kind), C(version_text) (the first line of C(--version), as
        C(CONFIG_CC_VERSION_TEXT) records it), C(version), C(triplet) (C(-dumpmachine)), C(driver) (the versioned
        driver that exists, such as C(x86_64-linux-gnu-gcc-12))), C(drivers) (versioned driver -> its version line),
        C(assembler), C(linker), C(lld) and C(pahole) version lines (null when absent), C(distcc_links) (the names in
        C(/usr/lib/distcc), null without that directory). Null when I(toolchain=false).
      type: dict
    ccache_group_members:
      description: Members of I(ccache_group) in C(/etc/group) and C(/etc/passwd); null when the group does not exist.
      type: list
      elements: str
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
