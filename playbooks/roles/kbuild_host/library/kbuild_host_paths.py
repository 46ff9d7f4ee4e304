#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kprov developers
# Apache License 2.0 (see LICENSE, or https://www.apache.org/licenses/LICENSE-2.0)
"""Refuse to run the role where a path it writes as root could be turned against the host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kbuild_host_paths
short_description: Check that the paths the kbuild_host role writes are safe to write as root
description:
  - Fails, changing nothing, when one of O(paths) is a symlink, when one of its components is a symlink not
    owned by root, or when a parent directory is writable by everyone without the sticky bit.
  - Root's own symlinks on the way (such as C(/var/run -> /run)) are followed and their targets checked the same
    way. Components that do not exist yet are left for root to create below the last directory checked.
  - Fails too when one of O(group_dirs), a directory the role is about to make C(root:GROUP) mode C(2775), is a
    symlink or not a directory, a user's home directory (from the account database), writable by everyone, or
    already holds files that are not a ccache cache, unless it is C(root:GROUP) C(2775) already.
  - In the same round trip it reads kprov's own records (O(records)) and says which of kprov's own files
    (O(kprov_files)) are already as the role leaves them, so the role reads them once, before anything of the run
    writes them, and skips the tasks that would find nothing to do.
version_added: "0.1.0"
author:
  - kprov developers (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  paths:
    description:
      - Absolute paths the role is about to create or write. A relative path is refused.
    type: list
    elements: path
    required: true
  records:
    description:
      - kprov's own JSON records to read. A record is read only when it is a regular file (not a symlink) owned by
        root, of at most 64 KiB, holding a JSON object; its content is data, never evaluated.
    type: list
    elements: path
    default: []
  group_dirs:
    description:
      - Directories the role is about to make C(root:)O(group) mode C(2775) (the shared ccache directory), checked
        as the host has them now. A ccache cache holds nothing but ccache's own entries (its sixteen first-level
        directories, C(tmp), C(lock), C(ccache.conf), C(stats), C(CACHEDIR.TAG)).
    type: list
    elements: path
    default: []
  group:
    description:
      - The group O(group_dirs) are handed to. A directory that is already C(root:)O(group) mode C(2775) is accepted
        whatever it holds.
    type: str
    default: kbuild
  kprov_files:
    description:
      - kprov's own files and directories, each mapped to the mode it must have, as an octal string of four digits
        such as V("0644") (quote it in YAML, or it becomes a number and the module fails).
      - The module reports those that are already root's (uid and gid 0), not a symlink, and of that mode, in
        RV(kprov_files).
    type: dict
    default: {}
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
notes:
  - Never changes anything; it always returns C(changed=false).
  - Needs only the Python standard library on the managed host.
"""

EXAMPLES = r"""
- name: Check the paths the role writes
  kprov.kbuild.kbuild_host_paths:
    paths: [/etc/ccache.conf, /var/cache/ccache]

- name: Check the shared ccache directory before handing it to group kbuild
  kprov.kbuild.kbuild_host_paths:
    paths: [/var/cache/ccache]
    group_dirs: [/var/cache/ccache]
    group: kbuild

- name: Check them, read kprov's store record and see which of kprov's own files are settled
  kprov.kbuild.kbuild_host_paths:
    paths: [/etc/ccache.conf, /etc/kprov/plan.json]
    records: [/etc/kprov/ccache-store.json]
    kprov_files:
      /etc/kprov: "0755"
      /etc/ccache.conf: "0644"
  register: __kbuild_host_paths_checked
"""

RETURN = r"""
checked:
  description: The paths that were checked, O(paths) as given.
  type: list
  elements: str
  returned: success, and when a path is refused
  sample: ["/etc/ccache.conf", "/var/cache/ccache"]
existing:
  description: Those of the paths that exist (a symlink counts, even a dangling one).
  type: list
  elements: str
  returned: success
  sample: ["/etc/ccache.conf"]
records:
  description:
    - Each of O(records) mapped to its JSON object, or V(null) when it is missing or not a readable record.
  type: dict
  returned: success
  sample: {"/etc/kprov/ccache-store.json": {"backend": "redis", "dir": "/var/lib/kprov/ccache-redis"}}
kprov_files:
  description:
    - Each of O(kprov_files) that is root's (uid and gid 0), not a symlink, and of its mode, mapped to V(dir) for a
      directory, the sha256 of a regular file of at most 64 KiB, or V(other) for anything else.
    - A path that is missing, not so, or a regular file larger than 64 KiB is left out.
  type: dict
  returned: success
  sample: {"/etc/kprov": "dir", "/etc/ccache.conf": "ca3d163bab055381827226140568f3bef7eaac187cebd76878e0b63e9e442356"}
"""

import errno
import os
import re
import stat

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.kbuild_host_sysprobe import (
    ccache_entry_ok,
    group_name,
    home_of,
    read_record,
    settled,
    unsafe_paths,
)


def _only_ccache_entries(path):
    """Whether the directory ``path`` holds nothing but ccache's entries, each of ccache's kind
    (stops at the first other one)."""
    scandir = getattr(os, "scandir", None)
    if scandir is None:  # pragma: no cover - Python 2 on the managed host
        return all(ccache_entry_ok(name, os.lstat(os.path.join(path, name)).st_mode) for name in os.listdir(path))
    with scandir(path) as entries:
        return all(ccache_entry_ok(entry.name, entry.stat(follow_symlinks=False).st_mode) for entry in entries)


def group_dir_problem(path, group):
    """Why making the directory ``path`` root:GROUP 2775 could hand the group what is not a cache
    (kprov's rules.names.check_found_dir judges kprov's own host from its facts the same way), or
    None. A symbolic link is unsafe_paths' to refuse."""
    path = os.path.normpath(path)
    try:
        st = os.lstat(path)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            return "%s: cannot be checked (%s)" % (path, exc.strerror)
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        return None  # unsafe_paths refuses it (every path the role writes as root)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        return "%s: exists and is not a directory" % path
    user = home_of(path)
    if user:
        return "%s: the home directory of %s; give a directory of its own (e.g. /var/cache/ccache)" % (path, user)
    if st is None:
        return None
    if st.st_mode & 0o002:
        return ("%s: writable by everyone; kprov would make it root:%s 2775 (and drop a sticky bit): give a directory "
                "of its own (e.g. /var/cache/ccache)" % (path, group))
    if st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o2775 and group_name(st.st_gid) == group:
        return None  # as the role leaves it: handing it over again changes nothing
    try:
        cache = _only_ccache_entries(path)
    except OSError as exc:
        return "%s: cannot be listed (%s)" % (path, exc.strerror)
    if not cache:
        return ("%s: already holds files that are not a ccache cache; the group would be able to rewrite them: give an "
                "empty or new directory (e.g. /var/cache/ccache)" % path)
    return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", required=True),
            records=dict(type="list", elements="path", default=[]),
            kprov_files=dict(type="dict", default={}),
            group_dirs=dict(type="list", elements="path", default=[]),
            group=dict(type="str", default="kbuild"),
        ),
        supports_check_mode=True,
    )
    paths = module.params["paths"]
    reason = unsafe_paths(paths)
    if reason:
        module.fail_json(msg="kbuild_host: refusing to write as root: %s" % reason, checked=paths)
    for directory in module.params["group_dirs"]:
        if not os.path.isabs(directory):
            module.fail_json(msg="kbuild_host: %s: not an absolute path" % directory, checked=paths)
        reason = unsafe_paths([directory]) or group_dir_problem(directory, module.params["group"])
        if reason:
            module.fail_json(msg="kbuild_host: refusing to hand a directory to group %s: %s"
                             % (module.params["group"], reason), checked=paths)
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
