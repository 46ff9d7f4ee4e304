"""What the role writes for the shared compile cache (provision.role.store_files), checked against the
real Redis and nginx where they are installed."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from provision.errors import UserError
from provision.role import store_files as cs

WRITER = "w" * 20 + "-_Writer0123456789abcd"
READER = "r" * 20 + "-_Reader0123456789abcd"


def store(kind: str = "redis", **over):
    s = {
        "backend": kind, "listen": "127.0.0.1", "port": 6380 if kind == "redis" else 8380,
        "allow": ["127.0.0.0/8"], "max_size_bytes": 1 << 30, "max_object_bytes": 64 << 20,
        "dir": "/var/lib/kprov/ccache-store",
        "users": [{"name": "builder1", "write": True, "secret_file": "/s/builder1"},
                  {"name": "laptop", "write": False, "secret_file": "/s/laptop"}],
    }
    s.update(over)
    return s


def remote(**over):
    r = {"url": "redis://10.0.0.5:6380", "user": "laptop", "secret_file": "/s/laptop", "write": False,
         "only": False, "connect_timeout_ms": 100, "operation_timeout_ms": 1000}
    r.update(over)
    return r


def test_acl_lines_give_readers_get_only_and_never_the_password():
    lines = cs.redis_acl_lines(store(), {"builder1": WRITER, "laptop": READER})
    writer, reader = lines
    assert writer.endswith("-@all +get +set +del")
    assert reader.endswith("-@all +get")
    assert "~ccache:*" in reader and "resetchannels" in reader
    assert "#" + hashlib.sha256(READER.encode()).hexdigest() in reader
    assert READER not in reader and WRITER not in writer


def test_htpasswd_is_ssha_with_a_salt_from_the_user_name():
    line = cs.htpasswd_line("laptop", READER)
    assert line == cs.htpasswd_line("laptop", READER)  # a second run writes the same file
    name, _, hashed = line.partition(":")
    raw = base64.b64decode(hashed.removeprefix("{SSHA}"))
    digest, salt = raw[:20], raw[20:]
    assert name == "laptop" and salt == cs.htpasswd_salt("laptop")
    assert digest == hashlib.sha1(READER.encode() + salt).digest()
    assert cs.htpasswd_salt("builder1") != salt
    writers = cs.nginx_user_file_lines(store("http"), {"builder1": WRITER, "laptop": READER}, True)
    assert [w.split(":")[0] for w in writers] == ["builder1"]


def test_remote_storage_line_carries_user_password_and_attributes():
    assert cs.remote_storage_line(remote(), READER) == (
        f"redis://laptop:{READER}@10.0.0.5:6380|connect-timeout=100|operation-timeout=1000|read-only"
    )
    line = cs.remote_storage_line(remote(url="http://[fd00::5]:8380/cache/", write=True, user="builder1"), WRITER)
    assert line == f"http://builder1:{WRITER}@[fd00::5]:8380/cache/|connect-timeout=100|operation-timeout=1000"


@pytest.mark.parametrize("url", [
    "redis://u:p@10.0.0.5:6380", "redis://10.0.0.5:6380|read-only", "redis://10.0.0.5:6380\nx",
    "ftp://10.0.0.5/", "http://10.0.0.5:8380/cache/../etc/", "redis://10.0.0.5:99999", "redis://10.0.0.5:6380/1",
    "http://10.0.0.5 :8380/", "redis://@10.0.0.5",
])
def test_bad_urls_are_refused_on_one_line(url):
    with pytest.raises(UserError) as exc:
        cs.check_remote(remote(url=url))
    assert "\n" not in str(exc.value) and "kbuild_host_ccache_remote.url" in str(exc.value)


@pytest.mark.parametrize("secret", ["short", "a" * 30 + "|read-only", "a" * 30 + ":b@c", "a" * 30 + "\nb", "a" * 300])
def test_bad_secrets_are_refused_without_echoing_them(secret):
    with pytest.raises(UserError) as exc:
        cs.remote_storage_line(remote(), secret)
    assert secret not in str(exc.value)


@pytest.mark.parametrize("over, words", [
    ({"backend": "memcached"}, "backend"),
    ({"allow": []}, "allow"),
    ({"max_object_bytes": 0}, "max_object_bytes"),
    ({"max_object_bytes": 2 << 30}, "max_object_bytes"),
    ({"listen": "10.0.0.0/8"}, "listen"),
    ({"dir": "/etc/ccache"}, "dir"),
    ({"users": []}, "users"),
    ({"users": [{"name": "a b", "write": True, "secret_file": "/s/a"}]}, "name"),
    ({"users": [{"name": "a", "write": True, "secret_file": "/s/a"}, {"name": "a", "secret_file": "/s/b"}]}, "twice"),
])
def test_bad_stores_are_refused(over, words):
    with pytest.raises(UserError) as exc:
        cs.check_store(store("http", **over))
    assert words in str(exc.value)


def test_empty_means_off():
    assert cs.check_store({}) is None and cs.check_store(None) is None
    assert cs.check_remote({}) is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def _redis(port: int, *commands: list[str]) -> list[str]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        f = s.makefile("rb")
        out = []
        for words in commands:
            s.sendall(f"*{len(words)}\r\n".encode() + b"".join(f"${len(w)}\r\n{w}\r\n".encode() for w in words))
            line = f.readline().decode().rstrip()
            if line.startswith("$") and line != "$-1":
                f.read(int(line[1:]) + 2)
            out.append(line)
        return out


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_real_redis_obeys_the_acl_lines(tmp_path):
    port = _free_port()
    conf = tmp_path / "redis.conf"
    conf.write_text("\n".join([
        "bind 127.0.0.1", f"port {port}", f"dir {tmp_path}", 'save ""', "appendonly no",
        "user default off resetkeys resetchannels -@all",
        *cs.redis_acl_lines(store(port=port), {"builder1": WRITER, "laptop": READER}), "",
    ]))
    proc = subprocess.Popen(["redis-server", str(conf)], stdout=subprocess.DEVNULL)
    try:
        wait_for(port)
        assert _redis(port, ["GET", "ccache:x"])[0].startswith("-NOAUTH")
        reader = _redis(port, ["AUTH", "laptop", READER], ["GET", "ccache:x"], ["SET", "ccache:x", "1"],
                        ["FLUSHALL"], ["KEYS", "*"], ["CONFIG", "GET", "*"], ["DEBUG", "SLEEP", "0"])
        assert reader[:2] == ["+OK", "$-1"]
        assert all(r.startswith("-NOPERM") for r in reader[2:-1])
        # DEBUG is refused before the ACL is consulted (enable-debug-command defaults to no)
        assert reader[-1].startswith(("-NOPERM", "-ERR DEBUG command not allowed"))
        writer = _redis(port, ["AUTH", "builder1", WRITER], ["SET", "ccache:x", "1"], ["DEL", "ccache:x"],
                        ["SET", "other", "1"], ["FLUSHALL"])
        assert writer[:3] == ["+OK", "+OK", ":1"]
        assert all(r.startswith("-NOPERM") for r in writer[3:])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(), reason="nginx is not installed")
def test_real_nginx_reads_the_ssha_lines(tmp_path):
    port = _free_port()
    secrets = {"builder1": WRITER, "laptop": READER}
    (tmp_path / "users").write_text("\n".join(cs.nginx_user_file_lines(store("http"), secrets, False)) + "\n")
    (tmp_path / "writers").write_text("\n".join(cs.nginx_user_file_lines(store("http"), secrets, True)) + "\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "x").write_text("object")
    (tmp_path / "nginx.conf").write_text(f"""
{"user root;" if os.geteuid() == 0 else ""} pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log; daemon on; worker_processes 1;
events {{}}
http {{ access_log off; server {{ listen 127.0.0.1:{port};
  location /cache/ {{ auth_basic "t"; auth_basic_user_file {tmp_path}/users; alias {data}/;
    limit_except GET HEAD {{ auth_basic_user_file {tmp_path}/writers; }} }} }} }}
""")
    os.chmod(tmp_path, 0o755)
    subprocess.run([shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                   check=True)
    try:
        wait_for(port)

        def status(user: str | None, secret: str = "", method: str = "GET") -> int:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/cache/x", method=method,
                                         data=b"y" if method == "PUT" else None)
            if user:
                req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode())
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code

        assert status("laptop", READER) == 200
        assert status("builder1", WRITER) == 200
        assert status("laptop", WRITER) == 401
        assert status(None) == 401
        assert status("laptop", READER, "PUT") == 401  # a reader is not in the writers' file
    finally:
        os.kill(int((tmp_path / "nginx.pid").read_text()), signal.SIGTERM)
