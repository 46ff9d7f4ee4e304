"""The test harness's connection to its podman containers: containers.podman.podman with pipelining.

containers.podman.podman runs ``podman exec`` without ``-i``, so it cannot pipeline: every module
costs four round trips (make a temp dir, copy the module in, chmod it, run it). Over SSH, which is
how kprov reaches real hosts, Ansible pipelines (kprov turns it on): one round trip per module.
This plugin gives the containers the same shape of run, so what the tests and benchmarks time is
the role's work rather than the collection plugin's extra execs:

- ``podman exec -i`` when Ansible sends the module on stdin (pipelining);
- the container's filesystem is mounted on the first file transfer, not on every task;
- podman's own failure (exit 125: no such container, not running) is an unreachable host, as
  SSH's exit 255 is: without pipelining the collection plugin's temp dir step reports it so.

Everything else (user, extra args, the executable, put/fetch) is the collection plugin's own.
Select it with ``ansible_connection=podman_pipelined`` and ANSIBLE_CONNECTION_PLUGINS naming this
directory (tests/conftest.py and the Molecule scenarios do both).
"""

from __future__ import annotations

DOCUMENTATION = """
    name: podman_pipelined
    short_description: containers.podman.podman with pipelining (kprov's test harness)
    description:
      - Run commands or put/fetch files in an existing podman container; modules are piped to
        C(podman exec -i) when pipelining is on.
    extends_documentation_fragment:
      - connection_pipelining
    options:
      remote_addr:
        description: The ID of the container to use.
        default: inventory_hostname
        vars:
          - name: ansible_host
          - name: inventory_hostname
          - name: ansible_podman_host
      remote_user:
        description: User (name or UID) that runs commands inside the container.
        ini:
          - section: defaults
            key: remote_user
        env:
          - name: ANSIBLE_REMOTE_USER
        vars:
          - name: ansible_user
      podman_extra_args:
        description: Extra arguments to pass to the podman command line.
        default: ''
        ini:
          - section: defaults
            key: podman_extra_args
        vars:
          - name: ansible_podman_extra_args
        env:
          - name: ANSIBLE_PODMAN_EXTRA_ARGS
      podman_executable:
        description: Executable for podman command.
        default: podman
        vars:
          - name: ansible_podman_executable
        env:
          - name: ANSIBLE_PODMAN_EXECUTABLE
"""

import shlex

from ansible.errors import AnsibleConnectionFailure
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.connection import ConnectionBase, ensure_connect
from ansible_collections.containers.podman.plugins.connection.podman import Connection as PodmanConnection

#: podman exec's exit status for an error of podman itself, not of the command run in the container
PODMAN_FAILED = 125


class Connection(PodmanConnection):
    transport = "podman_pipelined"
    has_pipelining = True

    def _connect(self):
        # The collection mounts the container's filesystem here, on every task; put/fetch
        # mount it when they first need it.
        ConnectionBase._connect(self)
        self._connected = True

    def _mounted(self):
        if self._mount_point is None:
            self._mount_point = False  # one attempt per connection
            PodmanConnection._connect(self)
        return self._mount_point

    @ensure_connect
    def exec_command(self, cmd, in_data=None, sudoable=False):
        ConnectionBase.exec_command(self, cmd, in_data=in_data, sudoable=sudoable)
        args = ["exec"]
        if in_data is not None:
            args.append("-i")
        if self.user:
            args.extend(("--user", self.user))
        rc, stdout, stderr = self._podman(args, shlex.split(to_native(cmd, errors="surrogate_or_strict")), in_data)
        if rc == PODMAN_FAILED:
            raise AnsibleConnectionFailure(to_native(stderr.strip() or stdout.strip(), errors="surrogate_or_strict"))
        return rc, stdout, stderr

    def put_file(self, in_path, out_path):
        self._mounted()
        super().put_file(in_path, out_path)

    def fetch_file(self, in_path, out_path):
        self._mounted()
        super().fetch_file(in_path, out_path)
