"""Whether an inventory may be handed to Ansible: only when nobody but root and the running user
can change what Ansible reads with it.

An inventory is code to Ansible: an executable inventory file is run, an inventory plugin's file
names code to load, and connection variables (``ansible_host``, ``ansible_python_interpreter``,
``ansible_*_args``) are Jinja templates that are rendered - lookups included - when kprov gathers
facts or applies. kprov cannot make that inert, so it reads an inventory only when it is as
trusted as the playbook itself: every path Ansible reads with it belongs to root or the running
user (under sudo, also the user who ran sudo) and nobody else can write it:

* the inventory file or directory; a directory's files and subdirectories, every level (names
  starting with ``.`` are skipped, as Ansible skips them);
* ``group_vars/`` and ``host_vars/`` beside an inventory file or inside an inventory directory,
  and every file and directory in them;
* every directory on the way to each of them, and every symbolic link followed, wherever it points.

A directory on the way may be writable by others when it has the sticky bit (``/tmp``): nobody
else can then rename or replace what is in it. A directory whose entries Ansible reads (the
inventory directory, the one that holds an inventory file, ``group_vars/``, ``host_vars/``) may
not be writable by others at all: the sticky bit does not stop them from adding a file there.
Group write includes what a POSIX ACL grants (the mode's group bits are the ACL's mask).

An ansible.cfg kprov hands Ansible (``./ansible.cfg``, ``ANSIBLE_CONFIG``) is code too and
passes the rule of an inventory file (:func:`check_config_trusted`).

A path the running user cannot even look at is skipped: Ansible, running as the same user,
cannot read it either. Pure ``os`` calls: nothing here starts a program.
"""

from __future__ import annotations

import os
import pwd
import stat

from provision.errors import UserError, escaped

#: Directories of variables Ansible reads beside an inventory file or inside an inventory directory.
VARS_DIRS = ("group_vars", "host_vars")


#: More entries than this in an inventory is not an inventory: kprov will not vouch for it.
MAX_ENTRIES = 50_000


#: Symbolic links followed for one path before kprov gives up (the kernel's own limit is 40).
MAX_LINKS = 40


def trusted_uids() -> frozenset[int]:
    """Root and the running user; under sudo (root, ``SUDO_UID`` set by sudo) the user who ran it."""
    uids = {0, os.geteuid()}
    sudo_uid = os.environ.get("SUDO_UID", "")
    if os.geteuid() == 0 and sudo_uid.isascii() and sudo_uid.isdigit() and len(sudo_uid) <= 10:
        uids.add(int(sudo_uid))
    return frozenset(uids)


def check_inventory_trusted(inventory: str, uids: frozenset[int] | None = None) -> None:
    """UserError (one line) when anyone but ``uids`` (:func:`trusted_uids`) could change what
    Ansible reads with ``inventory``. A name that does not exist is left to the caller."""
    if not os.path.lexists(inventory):
        return
    _Inventory(inventory, trusted_uids() if uids is None else uids).check()


def check_config_trusted(config: str, uids: frozenset[int] | None = None) -> None:
    """UserError (one line) when anyone but ``uids`` (:func:`trusted_uids`) could change the
    ansible.cfg ``config`` kprov hands Ansible: the same rule as an inventory file's (it names
    code Ansible runs: vault password scripts, plugin and module paths). The file, the directory
    that holds it and every directory and link on the way; a name that does not exist, or one the
    running user cannot look at, is left alone (Ansible cannot read it either)."""
    checker = _Inventory(config, trusted_uids() if uids is None else uids)
    start = config if config.startswith("/") else os.path.join(os.getcwd(), config)
    try:
        real, st = checker._resolve(start)
        checker._file(real, st)
        parent = os.path.dirname(real)
        checker._read_dir(parent, checker._stat(parent))
    except _Gone:
        return
    except _Refused as exc:
        raise UserError(
            f"ansible.cfg {escaped(config)}: {exc}; an ansible.cfg is code too (vault password scripts, "
            f"plugin and module paths) and kprov runs Ansible with its own rights, so only "
            f"{checker._trusted()} may be able to change it"
        ) from None


class _Refused(Exception):
    """The path and what is wrong with it."""


class _Gone(Exception):
    """Vanished, or the running user cannot look at it: Ansible cannot read it either."""


class _Inventory:
    def __init__(self, inventory: str, uids: frozenset[int]):
        self.inventory = inventory
        self.uids = uids
        self.dirs_passed: set[str] = set()  # real directories checked as a way through
        self.visited: set[str] = set()  # real paths whose content was checked
        self.entries = 0

    def check(self) -> None:
        try:
            self._check()
        except _Refused as exc:
            raise UserError(
                f"-i {escaped(self.inventory)}: {exc}; an inventory is code to Ansible (scripts, "
                "templated variables, group_vars/ and host_vars/) and kprov runs it with its own rights, "
                f"so only {self._trusted()} may be able to change it"
            ) from None

    def _check(self) -> None:
        try:
            self._check_inventory()
        except _Gone:
            return

    def _check_inventory(self) -> None:
        start = self.inventory
        if not start.startswith("/"):
            try:
                start = os.path.join(os.getcwd(), start)
            except OSError:  # no working directory: Ansible cannot find a relative inventory either
                return
        real, st = self._resolve(start)
        if stat.S_ISDIR(st.st_mode):
            self._directory(real, st, skip_hidden=True)
            return
        self._file(real, st)
        parent = os.path.dirname(real)
        self._read_dir(parent, self._stat(parent))
        for name in VARS_DIRS:
            self._vars_dir(os.path.join(parent, name))

    # ---------------------------------------------------------------- what each kind of path must be

    def _owner(self, path: str, st: os.stat_result) -> None:
        if st.st_uid not in self.uids:
            raise _Refused(f"{escaped(path)} belongs to {_user(st.st_uid)}")

    def _not_writable(self, path: str, st: os.stat_result, sticky_helps: bool) -> None:
        mode = st.st_mode
        if not mode & 0o022 or (sticky_helps and mode & stat.S_ISVTX):
            return
        who = "everyone" if mode & 0o002 else "its group"
        why = "; the sticky bit does not stop others from adding files" if mode & stat.S_ISVTX else ""
        raise _Refused(f"{escaped(path)} is writable by {who} (mode {stat.S_IMODE(mode):04o}{why})")

    def _passed_dir(self, path: str, st: os.stat_result) -> None:
        """A directory on the way: nobody else may rename or replace what is in it."""
        if path in self.dirs_passed:
            return
        self._owner(path, st)
        self._not_writable(path, st, sticky_helps=True)
        self.dirs_passed.add(path)

    def _read_dir(self, path: str, st: os.stat_result) -> None:
        """A directory whose entries Ansible reads: nobody else may add one."""
        self._owner(path, st)
        self._not_writable(path, st, sticky_helps=False)

    def _file(self, path: str, st: os.stat_result) -> None:
        self._owner(path, st)
        self._not_writable(path, st, sticky_helps=False)

    # ---------------------------------------------------------------- walking

    def _stat(self, path: str) -> os.stat_result:
        try:
            return os.lstat(path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            raise _Gone(path) from None
        except OSError as exc:
            raise _Refused(f"{escaped(path)} cannot be examined ({exc.strerror})") from None

    def _resolve(self, path: str) -> tuple[str, os.stat_result]:
        """``path`` resolved component by component as the kernel does, every directory passed and
        every link followed checked on the way; its real path and (not a link) status."""
        todo = [p for p in path.split("/") if p]
        current = "/"
        self._passed_dir(current, self._stat(current))
        links = 0
        st = self._stat(current)
        while todo:
            name = todo.pop(0)
            if name == ".":
                continue
            if name == "..":
                current = os.path.dirname(current)
                st = self._stat(current)
                continue
            candidate = os.path.join(current, name)
            st = self._stat(candidate)
            self._owner(candidate, st)  # a link too: its owner may replace it in a sticky directory
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_LINKS:
                    raise _Refused(f"{escaped(path)} goes through more than {MAX_LINKS} symbolic links")
                try:
                    target = os.readlink(candidate)
                except OSError:
                    raise _Gone(candidate) from None
                todo[:0] = [p for p in target.split("/") if p]
                if target.startswith("/"):
                    current = "/"
                    st = self._stat(current)
                continue
            current = candidate
            if todo:
                if not stat.S_ISDIR(st.st_mode):
                    raise _Gone(candidate)
                self._passed_dir(current, st)
        return current, st

    def _vars_dir(self, path: str) -> None:
        try:
            real, st = self._resolve(path)
        except _Gone:
            return
        if stat.S_ISDIR(st.st_mode):
            self._directory(real, st, skip_hidden=False)
        else:
            self._file(real, st)

    def _directory(self, path: str, st: os.stat_result, skip_hidden: bool) -> None:
        """An inventory directory (``skip_hidden``) or a variables directory, every level of it."""
        if path in self.visited:
            return
        self.visited.add(path)
        self._read_dir(path, st)
        try:
            names = sorted(os.listdir(path))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            return
        except OSError as exc:
            raise _Refused(f"{escaped(path)} cannot be listed ({exc.strerror})") from None
        for name in names:
            self.entries += 1
            if self.entries > MAX_ENTRIES:
                raise _Refused(f"more than {MAX_ENTRIES} files and directories in it")
            if skip_hidden and name.startswith("."):
                continue
            if skip_hidden and name in VARS_DIRS:
                self._vars_dir(os.path.join(path, name))
                continue
            try:
                real, entry = self._resolve(os.path.join(path, name))
            except _Gone:
                continue
            if stat.S_ISDIR(entry.st_mode):
                self._directory(real, entry, skip_hidden)
            else:
                self._file(real, entry)

    def _trusted(self) -> str:
        names = ["root"] + [_user(u) for u in sorted(self.uids) if u != 0]
        return " or ".join(names)


def _user(uid: int) -> str:
    try:
        return f"{escaped(pwd.getpwuid(uid).pw_name)} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
