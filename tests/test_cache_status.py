"""``kprov cache status`` and the secret files (provision/role/secrets.py, provision/cli/cache_status.py), against a real
redis-server and a real nginx on 127.0.0.1 that each test starts, and real files."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from provision.role.secrets import ensure_secret_file, read_secret_file
from provision.cli.app import Kprov
from provision.cli.cache_status import render_status, status
from provision.errors import UserError
from provision.facts.cache_probe import parse_remote_conf, probe_http, probe_redis

SECRET = "s3cr3t-Token_value-0123456789abcdefABCDEF"
WRONG = "wrong-Token_value-0123456789abcdefABCDEF00"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the server never listened")


def _need(tool: str) -> str:
    path = shutil.which(tool) or next((p for p in (f"/usr/sbin/{tool}", f"/usr/bin/{tool}") if os.path.exists(p)), None)
    if path is None:
        if os.environ.get("KPROV_TEST_STRICT"):
            pytest.fail(f"{tool} is not installed (tests/system-packages.txt)")
        pytest.skip(f"{tool} is not installed")
    return path


@pytest.fixture
def redis(tmp_path):
    exe = _need("redis-server")
    port = _free_port()
    conf = tmp_path / "redis.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {tmp_path}\n"
        "user default off\n"
        f"user writer on #{hashlib.sha256(SECRET.encode()).hexdigest()} ~ccache:* resetchannels -@all +get +set +del\n"
        f"user reader on #{hashlib.sha256(WRONG.encode()).hexdigest()} ~ccache:* resetchannels -@all +set\n"
    )
    proc = subprocess.Popen([exe, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        yield port, proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.terminate()
            proc.wait(timeout=10)


def _ssha(password: str, salt: bytes = b"saltsalt") -> str:
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


@pytest.fixture
def nginx(tmp_path):
    exe = _need("nginx")
    port, port_denied = _free_port(), _free_port()
    root = tmp_path / "store"
    (root / "cache").mkdir(parents=True)
    users = tmp_path / "users"
    users.write_text(f"writer:{_ssha(SECRET)}\n")
    users.chmod(0o644)
    for d in (tmp_path, root, root / "cache"):
        d.chmod(0o755)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"""
{"user root;" if os.geteuid() == 0 else ""}
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
daemon off;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {tmp_path}/body;
  proxy_temp_path {tmp_path}/proxy;
  fastcgi_temp_path {tmp_path}/fastcgi;
  uwsgi_temp_path {tmp_path}/uwsgi;
  scgi_temp_path {tmp_path}/scgi;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    location /cache/ {{
      allow 127.0.0.0/8; deny all;
      auth_basic "ccache"; auth_basic_user_file {users};
      dav_methods PUT DELETE; create_full_put_path on;
    }}
  }}
  server {{
    listen 127.0.0.1:{port_denied};
    root {root};
    location /cache/ {{ allow 10.0.0.0/8; deny all; auth_basic "ccache"; auth_basic_user_file {users}; }}
  }}
}}
"""
    )
    proc = subprocess.Popen([exe, "-p", str(tmp_path), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        _wait_port(port_denied, proc)
        yield port, port_denied
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --------------------------------------------------------------------------- Redis


def test_redis_answers_with_the_right_credential(redis):
    port, _ = redis
    p = probe_redis(f"redis://127.0.0.1:{port}", "writer", SECRET)
    assert p.state == "answers", p
    assert p.milliseconds is not None


def test_redis_wrong_password_and_unknown_user_are_auth_failures(redis):
    port, _ = redis
    assert probe_redis(f"redis://127.0.0.1:{port}", "writer", WRONG).state == "auth-failed"
    assert probe_redis(f"redis://127.0.0.1:{port}", "nobody", SECRET).state == "auth-failed"


def test_redis_user_without_get_is_forbidden(redis):
    port, _ = redis
    assert probe_redis(f"redis://127.0.0.1:{port}", "reader", WRONG).state == "forbidden"


def test_refused_and_hung_stores_are_told_apart(redis):
    port, proc = redis
    closed = _free_port()
    assert probe_redis(f"redis://127.0.0.1:{closed}", "writer", SECRET).state == "refused"
    os.kill(proc.pid, signal.SIGSTOP)  # the kernel still accepts the connection; nothing answers
    try:
        hung = probe_redis(f"redis://127.0.0.1:{port}", "writer", SECRET, timeout=0.3)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    assert hung.state == "timeout", hung


# --------------------------------------------------------------------------- nginx


def test_http_answers_refuses_a_wrong_password_and_a_denied_address(nginx):
    port, denied = nginx
    ok = probe_http(f"http://127.0.0.1:{port}/cache/", "writer", SECRET)
    assert ok.state == "answers", ok
    assert probe_http(f"http://127.0.0.1:{port}/cache/", "writer", WRONG).state == "auth-failed"
    assert probe_http(f"http://127.0.0.1:{denied}/cache/", "writer", SECRET).state == "forbidden"
    assert probe_http(f"http://127.0.0.1:{_free_port()}/cache/", "writer", SECRET).state == "refused"


# --------------------------------------------------------------------------- status from the client's config


def _client_conf(tmp_path: Path, line: str, mode: int = 0o640) -> Path:
    conf = tmp_path / "ccache-remote.conf"
    conf.write_text(f"remote_storage = {line}\n")
    conf.chmod(mode)
    return conf


def test_status_reads_the_config_probes_the_store_and_never_shows_the_secret(redis, tmp_path, capsys):
    port, _ = redis
    conf = _client_conf(tmp_path, f"redis://writer:{SECRET}@127.0.0.1:{port}|connect-timeout=100|operation-timeout=1000")
    data = status(str(conf), plan_path=str(tmp_path / "no-plan.json"))
    assert data["store"]["configured"] is True
    assert data["store"]["url"] == f"redis://127.0.0.1:{port}"
    assert data["store"]["access"] == "read and write"
    assert data["store"]["probe"]["state"] == "answers"
    assert SECRET not in json.dumps(data)
    text = render_status(data)
    assert "answers" in text and SECRET not in text

    Kprov.run(["kprov", "cache", "status", "--json", "--config", str(conf)], exit=False)
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err
    assert json.loads(out.out)["store"]["probe"]["state"] == "answers"


def test_status_of_a_reader_says_read_and_of_a_refused_store_says_refused(tmp_path):
    conf = _client_conf(tmp_path, f"http://reader:{SECRET}@127.0.0.1:{_free_port()}/cache/|read-only")
    data = status(str(conf), plan_path=str(tmp_path / "none.json"))
    assert data["store"]["access"] == "read"
    assert data["store"]["probe"]["state"] == "refused"
    assert "REFUSED" in render_status(data)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_status_without_permission_says_it_cannot_read_the_secret(tmp_path):
    conf = _client_conf(tmp_path, f"redis://writer:{SECRET}@127.0.0.1:6380", mode=0o600)
    tmp_path.chmod(0o755)
    code = (
        "import json, sys; from provision.cli import cache_status; "
        f"d = cache_status.status({str(conf)!r}, plan_path='/nonexistent'); print(json.dumps(d['store']))"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
        capture_output=True, text=True, env={"PYTHONPATH": str(root), "PATH": os.environ["PATH"], "HOME": "/tmp"},
        check=False,
    )
    if done.returncode == 126 or "No module named" in done.stderr or "Permission denied" in done.stderr:
        pytest.skip("this Python or kprov's checkout is not readable by an unprivileged user here")
    assert done.returncode == 0, done.stderr
    store = json.loads(done.stdout)
    assert store["configured"] is False
    assert "cannot read" in store["note"] and "password" in store["note"]
    assert SECRET not in done.stdout + done.stderr


# --------------------------------------------------------------------------- secret files


def test_ensure_secret_file_makes_0600_in_0700_and_never_overwrites(tmp_path):
    path = tmp_path / "secrets" / "ccache" / "builder1"
    assert ensure_secret_file(str(path)) is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    first = path.read_text()
    assert read_secret_file(str(path), "secret") == first.strip()
    assert ensure_secret_file(str(path)) is False
    assert path.read_text() == first


@pytest.mark.parametrize("kind", ["missing", "fifo", "symlink", "world", "group", "two-lines", "bad-chars", "empty", "dir"])
def test_bad_secret_files_are_one_line_errors_that_never_show_the_content(tmp_path, kind):
    path = tmp_path / "secret"
    if kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "symlink":
        target = tmp_path / "real"
        target.write_text(SECRET + "\n")
        target.chmod(0o600)
        path.symlink_to(target)
    elif kind == "dir":
        path.mkdir(mode=0o700)
    elif kind != "missing":
        content = {"two-lines": f"{SECRET}\n{SECRET}\n", "bad-chars": "pass word|x@y\n", "empty": ""}.get(kind, SECRET + "\n")
        path.write_text(content)
        path.chmod({"world": 0o644, "group": 0o640}.get(kind, 0o600))
    with pytest.raises(UserError) as err:
        read_secret_file(str(path), "--ccache-remote-secret")
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert SECRET not in message and "pass word" not in message


def test_the_remote_line_parser_keeps_the_password_out_of_its_repr():
    line = parse_remote_conf(f"remote_storage = redis://w:{SECRET}@127.0.0.1:6380|read-only\n", "conf")
    assert line.user == "w" and line.read_only and line.url == "redis://127.0.0.1:6380"
    assert SECRET not in repr(line)


def test_apply_makes_the_store_secrets_and_names_only_their_paths(tmp_path, capsys):
    import json as _json

    from provision.cli.commands import store_secrets
    from provision.facts.catalog import load_catalog
    from provision.model.facts import HostFacts
    from provision.model.goals import CacheUser, Goals
    from provision.planner import plan

    fixture = Path(__file__).resolve().parent / "fixtures" / "workstation-64c-256g.json"
    facts = HostFacts.from_dict(_json.loads(fixture.read_text()))
    own = facts.hostname.split(".")[0]
    users = (CacheUser(own, True, str(tmp_path / "s" / own)), CacheUser("laptop", False, str(tmp_path / "s" / "laptop")))
    p = plan(facts, Goals(ccache_server=True, listen="127.0.0.1", ccache_users=users), load_catalog())
    store_secrets(p, check=True)
    assert not (tmp_path / "s").exists()  # --check creates nothing
    store_secrets(p, check=False)
    err = capsys.readouterr().err
    laptop = (tmp_path / "s" / "laptop").read_text().strip()
    assert stat.S_IMODE((tmp_path / "s" / "laptop").stat().st_mode) == 0o600
    assert str(tmp_path / "s" / "laptop") in err and "--ccache-remote-user laptop" in err
    assert laptop not in err and (tmp_path / "s" / own).read_text().strip() not in err
    store_secrets(p, check=False)
    assert (tmp_path / "s" / "laptop").read_text().strip() == laptop


# --------------------------------------------------------------------------- hangs and foreign text

KPROV = Path(sys.executable).parent / "kprov"

#: A bound for a whole `kprov cache status` run against a store that never finishes a line: the
#: probe's deadline (PROBE_DEADLINE_S) plus ccache and start-up, with room for a loaded machine.
RETURNS_WITHIN_S = 5.0


def _timed_status(*args: str, env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """`kprov cache status ARGS` as a process (a hang must fail the test, not stop the suite)."""
    started = time.monotonic()
    proc = subprocess.run([str(KPROV), "cache", "status", *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})}, check=False)
    return proc, time.monotonic() - started


@pytest.mark.parametrize("kind", ["fifo", "fifo-env", "directory", "char-device"])
def test_a_config_that_is_not_a_regular_file_is_never_read_or_waited_on(tmp_path, kind):
    path = tmp_path / "ccache-remote.conf"
    if kind.startswith("fifo"):
        os.mkfifo(path, 0o600)  # nobody ever writes: open() for reading would block for good
    elif kind == "directory":
        path.mkdir()
    else:
        path = Path("/dev/zero")
    args, env = ("--json",), None
    if kind == "fifo-env":
        env = {"CCACHE_CONFIGPATH": str(path)}
    else:
        args = ("--json", "--config", str(path))
    proc, took = _timed_status(*args, env=env)
    assert took < RETURNS_WITHIN_S, took
    assert proc.returncode == 0, proc.stderr
    store = json.loads(proc.stdout)["store"]
    assert store["configured"] is False
    kinds = {"fifo": "a FIFO", "fifo-env": "a FIFO", "directory": "a directory", "char-device": "a character device"}
    assert store["note"] == f"cannot read {path}: not a regular file ({kinds[kind]})"


class DripServer:
    """A TCP server on 127.0.0.1 that accepts, then sends one byte every half second and never a
    line end: each byte would reset a per-read timeout."""

    def __init__(self, byte: bytes = b"+"):
        import threading

        self.byte = byte
        self.stop = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.sent = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        conns = []
        try:
            while not self.stop.is_set():
                try:
                    conn, _ = self.listener.accept()
                    conns.append(conn)
                except OSError:
                    pass
                for conn in list(conns):
                    try:
                        conn.sendall(self.byte)
                        self.sent += 1
                    except OSError:
                        conns.remove(conn)
                self.stop.wait(0.5)
        finally:
            for conn in conns:
                conn.close()

    def __enter__(self) -> "DripServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.listener.close()


@pytest.mark.parametrize("scheme", ["redis", "http"])
def test_a_store_that_drips_bytes_gets_one_deadline_in_all(tmp_path, scheme):
    path = "/cache/" if scheme == "http" else ""
    with DripServer() as server:
        conf = _client_conf(tmp_path, f"{scheme}://writer:{SECRET}@127.0.0.1:{server.port}{path}")
        proc, took = _timed_status("--json", "--config", str(conf))
        assert server.sent >= 1  # the store did drip while the probe waited
    assert took < RETURNS_WITHIN_S, took
    assert proc.returncode == 0, proc.stderr
    probe = json.loads(proc.stdout)["store"]["probe"]
    assert probe["state"] == "timeout", probe
    assert probe["milliseconds"] < RETURNS_WITHIN_S * 1000


def test_the_probe_deadline_covers_every_read_in_process():
    from provision.facts.cache_probe import PROBE_DEADLINE_S

    assert 0.5 <= PROBE_DEADLINE_S <= 2.0
    with DripServer() as server:
        started = time.monotonic()
        p = probe_redis(f"redis://127.0.0.1:{server.port}", "writer", SECRET, timeout=1.0)
        took = time.monotonic() - started
    assert p.state == "timeout", p
    assert took < 2.5, took  # 1 s in all, not 1 s for every byte


ESCAPE = "\x1b[2J\x1b]0;owned\x07"


def test_foreign_text_of_the_config_is_escaped_in_text_and_json(tmp_path):
    where = tmp_path / f"conf{ESCAPE}dir"
    where.mkdir()
    conf = _client_conf(
        where, f"http://writer:{SECRET}@127.0.0.1:{_free_port()}/cache/|connect-timeout=100{ESCAPE}"
        f"|operation-timeout=9\n"
    )
    text, _ = _timed_status("--config", str(conf))
    as_json, _ = _timed_status("--json", "--config", str(conf))
    assert text.returncode == 0 and as_json.returncode == 0, text.stderr + as_json.stderr
    for out in (text.stdout, as_json.stdout):
        assert "\x1b" not in out and "\x07" not in out
        assert SECRET not in out
    assert "timeouts: connect 100\\x1b[2J\\x1b]0;owned\\x07 ms, operation 9 ms" in text.stdout
    store = json.loads(as_json.stdout)["store"]
    # the JSON's values are escaped too: `jq -r .store.connect_timeout_ms` prints no escape sequence
    assert store["connect_timeout_ms"] == "100\\x1b[2J\\x1b]0;owned\\x07"
    assert store["config"] == str(conf).replace("\x1b", "\\x1b").replace("\x07", "\\x07")


def test_a_missing_config_named_with_control_characters_is_shown_escaped(tmp_path):
    conf = tmp_path / f"gone{ESCAPE}\n.conf"
    text, _ = _timed_status("--config", str(conf))
    assert text.returncode == 0, text.stderr
    assert "\x1b" not in text.stdout and "\x07" not in text.stdout
    assert "gone\\x1b[2J\\x1b]0;owned\\x07\\n.conf does not exist" in text.stdout


def test_render_status_escapes_what_it_is_handed():
    data = {
        "local": {"dir": f"/c{ESCAPE}", "max_size": f"5G{ESCAPE}", "size_bytes": 0, "files": 0, "hits": 0,
                  "misses": 0, "available": True, "fullness": None},
        "store": {"config": "/x", "configured": True, "url": f"redis://h{ESCAPE}", "user": f"u{ESCAPE}",
                  "access": "read", "remote_only": False, "connect_timeout_ms": f"1{ESCAPE}",
                  "operation_timeout_ms": None,
                  "probe": {"state": "error", "detail": f"d{ESCAPE}", "milliseconds": 1.0},
                  "stats": {"hit": 0, "miss": 0, "error": 0, "timeout": 0, "write": 0}},
        "sharing": [f"s{ESCAPE}"],
    }
    text = render_status(data)
    assert "\x1b" not in text and "\x07" not in text
    assert text.count("\\x1b[2J") == 7
