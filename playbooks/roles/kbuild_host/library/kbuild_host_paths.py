#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Refuse to run the role where a path it writes as root could be turned against the host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kbuild_host_paths
short_description: Check that the paths the kbuild_host role writes are safe to write as root
description:
  - Fails, changing nothing, when a path is a symlink, when one of its components is a symlink not
    owned by root, or when a parent directory is writable by everyone without the sticky bit.
  - Root's own symlinks on the way are followed and their targets checked the same way.
options:
  paths:
    description: Absolute paths the role is about to create or write.
    type: list
    elements: path
    required: true
  records:
    description:
      - kprov's own JSON records to read (root's regular files of at most 64 KiB), so the
        role reads each once, here, before anything of this run writes them.
    type: list
    elements: path
    default: []
  kprov_files:
    description:
      - kprov's own files and directories -> the mode they must have (root's, not symlinks): the
        module says which of them already are so, and a regular file's sha256 (at most 64 KiB),
        so the role skips the round trip of a task that would find nothing to do.
    type: dict
    default: {}
author: kprov developers
"""

EXAMPLES = r"""
- name: Check the paths the role writes
  kbuild_host_paths:
    paths: [/etc/ccache.conf, /var/cache/ccache]
"""

RETURN = r"""
checked:
  description: The paths that were checked.
  type: list
  elements: str
  returned: always
existing:
  description: Those of the paths that exist (a symlink counts).
  type: list
  elements: str
  returned: always
records:
  description: Each of I(records) -> its JSON object, or null when it is missing or not a readable record.
  type: dict
  returned: always
kprov_files:
  description:
    - Each of I(kprov_files) that is root's (uid and gid 0), not a symlink, and has its mode ->
      C(dir) for a directory, the sha256 of a regular file of at most 64 KiB, else C(other).
      A path missing, or not so, is left out.
  type: dict
  returned: always
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.kbuild_host_sysprobe import read_record, settled, unsafe_paths


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", required=True),
            records=dict(type="list", elements="path", default=[]),
            kprov_files=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    paths = module.params["paths"]
    reason = unsafe_paths(paths)
    if reason:
        module.fail_json(msg="kbuild_host: refusing to write as root: %s" % reason, checked=paths)
    bad = [p for p, m in module.params["kprov_files"].items() if not re.match(r"^0[0-7]{3}$", str(m))]
    if bad:
        module.fail_json(msg="kbuild_host: kprov_files needs an octal mode string such as 0644 for %s" % bad[0])
    module.exit_json(
        changed=False,
        checked=paths,
        existing=[p for p in paths if os.path.lexists(p)],
        records=dict((p, read_record(p)) for p in module.params["records"]),
        kprov_files=dict((p, found) for p, found in ((p, settled(p, m)) for p, m in module.params["kprov_files"].items())
                         if found is not None),
    )


if __name__ == "__main__":
    main()
