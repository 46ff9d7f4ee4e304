#!/usr/bin/env python3
"""Benchmark the shared compile cache on this machine (a script, not a test).

A defconfig subset of Debian's linux-source 6.1 (kernel/ mm/ fs/ext4/ net/ipv4/ by default) is
built, every build into a fresh O= directory:

- cold: plain gcc, no ccache;
- fill: ccache with an empty local cache, writing to both stores;
- remote-warm (redis, http): an empty local cache reading from one store (read-only), as a
  second builder would;
- local-warm: the filled local cache, no store;
- local-only: ccache with an empty local cache and no store (what the next two compare to);
- refusing: the same with a store that refuses connections (nothing listens on its port);
- hung: the same with the Redis store stopped by SIGSTOP (connections are accepted, nothing is
  answered), with the planned timeouts (connect 100 ms, operation 1000 ms).

The stores are kprov's own configurations (provision.role.store_files's ACL and htpasswd lines), run
on loopback from a scratch directory: redis-server and nginx must be installed, nothing is
installed or left running. Kinds are interleaved round by round (this machine is shared and noisy).
Targets: remote-warm <= 0.25x cold with >= 95% remote hits; refusing <= 1.05x local-only.

    sudo .venv/bin/python tests/bench_cache.py [--runs 2] [--jobs N] [--targets kernel/ mm/]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from provision.role import store_files as cache_store

DEFAULT_TREE = Path("/var/tmp/kprov-linux/linux-source-6.1")
DEFAULT_TARGETS = ["kernel/", "mm/", "fs/ext4/", "net/ipv4/"]
TIMEOUTS = "connect-timeout=100|operation-timeout=1000"
BUILD_ENV = {"KBUILD_BUILD_TIMESTAMP": "1970-01-01 00:00:00 UTC", "KBUILD_BUILD_USER": "kprov",
             "KBUILD_BUILD_HOST": "kprov", "LANG": "C", "LC_ALL": "C"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, seconds: float = 10.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing answers on 127.0.0.1:{port}")


class Stores:
    """kprov's Redis and nginx store configurations, on loopback, in a scratch directory."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.writer, self.reader = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.redis_port, self.http_port, self.dead_port = free_port(), free_port(), free_port()
        self.dir = base / "webdav"
        users = [{"name": "writer", "write": True, "secret_file": "/unused"},
                 {"name": "reader", "write": False, "secret_file": "/unused"}]
        keys = {"writer": self.writer, "reader": self.reader}
        common = {"listen": "127.0.0.1", "allow": ["127.0.0.0/8"], "max_size_bytes": 4 << 30,
                  "max_object_bytes": 64 << 20, "dir": str(self.dir), "users": users}
        self.redis_store = dict(common, backend="redis", port=self.redis_port)
        self.http_store = dict(common, backend="http", port=self.http_port)
        self.acl = cache_store.redis_acl_lines(self.redis_store, keys)
        self.users = cache_store.nginx_user_file_lines(self.http_store, keys, False)
        self.writers = cache_store.nginx_user_file_lines(self.http_store, keys, True)
        self.redis_proc: subprocess.Popen | None = None
        self.nginx_pid: int | None = None

    def start(self) -> None:
        b = self.base
        for d in (self.dir, b / "webdav.tmp", b / "nginx", b / "redis"):
            d.mkdir(parents=True, exist_ok=True)
        (b / "redis" / "redis.conf").write_text("\n".join([
            "bind 127.0.0.1", f"port {self.redis_port}", "protected-mode yes", "daemonize no",
            f"dir {b / 'redis'}", "save \"\"", "appendonly no", "maxmemory 4294967296",
            "maxmemory-policy allkeys-lru", "user default off resetkeys resetchannels -@all", *self.acl, ""]))
        (b / "nginx" / "users.htpasswd").write_text("\n".join(self.users) + "\n")
        (b / "nginx" / "writers.htpasswd").write_text("\n".join(self.writers) + "\n")
        n = b / "nginx"
        (n / "nginx.conf").write_text(f"""
{"user root;" if os.geteuid() == 0 else ""} worker_processes 2; pid {n}/nginx.pid; error_log {n}/error.log; daemon on;
events {{}}
http {{
  access_log off;
  server {{
    listen 127.0.0.1:{self.http_port};
    client_max_body_size {self.http_store['max_object_bytes']};
    client_body_temp_path {b}/webdav.tmp;
    location /cache/ {{
      allow 127.0.0.0/8; deny all;
      auth_basic "kprov ccache"; auth_basic_user_file {n}/users.htpasswd;
      alias {self.dir}/;
      dav_methods PUT DELETE; create_full_put_path on; dav_access user:rw;
      limit_except GET HEAD {{ auth_basic_user_file {n}/writers.htpasswd; }}
    }}
  }}
}}
""")
        self.redis_proc = subprocess.Popen(["redis-server", str(b / "redis" / "redis.conf")],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["nginx", "-p", str(n), "-c", str(n / "nginx.conf")], check=True)
        self.nginx_pid = int((n / "nginx.pid").read_text())
        wait_port(self.redis_port)
        wait_port(self.http_port)

    def stop(self) -> None:
        if self.redis_proc is not None:
            self.redis_proc.send_signal(signal.SIGCONT)
            self.redis_proc.terminate()
            self.redis_proc.wait(timeout=30)
        if self.nginx_pid is not None:
            os.kill(self.nginx_pid, signal.SIGTERM)

    def url(self, backend: str, user: str, read_only: bool) -> str:
        secret = self.writer if user == "writer" else self.reader
        where = {"redis": f"redis://{user}:{secret}@127.0.0.1:{self.redis_port}",
                 "http": f"http://{user}:{secret}@127.0.0.1:{self.http_port}/cache/",
                 "dead": f"redis://{user}:{secret}@127.0.0.1:{self.dead_port}"}[backend]
        return f"{where}|{TIMEOUTS}" + ("|read-only" if read_only else "")


def ccache_stats(env: dict[str, str]) -> dict[str, int]:
    out = subprocess.run(["ccache", "--print-stats"], env=env, check=True, capture_output=True, text=True).stdout
    return {k: int(v) for k, v in (line.split("\t") for line in out.splitlines() if "\t" in line)}


def build(args, work: Path, name: str, remote: list[str] | None, cache: Path | None) -> dict:
    """One timed build of the targets into a fresh O=; ``cache`` None means no ccache at all."""
    out = work / "out" / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = dict(os.environ, **BUILD_ENV)
    env.pop("CCACHE_CONFIGPATH", None)
    cc = "gcc"
    if cache is not None:
        cc = "ccache gcc"
        conf = work / f"{name}.conf"
        lines = [f"cache_dir = {cache}", "max_size = 8Gi", "hash_dir = false", f"base_dir = {work}",
                 "sloppiness = locale,time_macros", "compiler_check = mtime"]
        if remote:
            lines.append("remote_storage = " + " ".join(remote))
        conf.write_text("\n".join(lines) + "\n")
        os.chmod(conf, 0o600)
        env["CCACHE_CONFIGPATH"] = str(conf)
        subprocess.run(["ccache", "-z"], env=env, check=True, capture_output=True)
    make = ["make", "-C", str(args.tree), f"O={out}", f"CC={cc}"]
    subprocess.run(make + ["defconfig"], env=env, check=True, capture_output=True)
    # prepare (host tools, generated headers) is the same for every kind: untimed
    subprocess.run(make + [f"-j{args.jobs}", "prepare"], env=env, check=True, capture_output=True)
    start = time.monotonic()
    proc = subprocess.run(make + [f"-j{args.jobs}", *args.targets], env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"{name}: make failed ({proc.returncode})")
    result = {"kind": name, "seconds": round(seconds, 1)}
    if cache is not None:
        s = ccache_stats(env)
        hits, misses = s.get("remote_storage_hit", 0), s.get("remote_storage_miss", 0)
        result.update(local_hit=s.get("local_storage_hit", 0), remote_hit=hits, remote_miss=misses,
                      cache_miss=s.get("cache_miss", 0), remote_errors=s.get("remote_storage_error", 0),
                      remote_timeouts=s.get("remote_storage_timeout", 0),
                      remote_hit_rate=round(hits / (hits + misses), 4) if hits + misses else None)
    shutil.rmtree(out, ignore_errors=True)
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tree", type=Path, default=DEFAULT_TREE)
    p.add_argument("--targets", nargs="+", default=DEFAULT_TARGETS)
    p.add_argument("--runs", type=int, default=2)
    p.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--work", type=Path, help="scratch directory (default: a new one under /var/tmp)")
    p.add_argument("--skip-hung", action="store_true", help="leave out the SIGSTOP runs (the slowest)")
    args = p.parse_args()
    for tool in ("redis-server", "nginx", "ccache", "make", "gcc"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench_cache: {tool} is not installed")
    if not (args.tree / "Makefile").exists():
        raise SystemExit(f"bench_cache: no kernel tree at {args.tree}")
    work = args.work or Path(tempfile.mkdtemp(prefix="kprov-bench-cache-", dir="/var/tmp"))
    stores = Stores(work / "stores")
    stores.start()
    results: list[dict] = []

    def run(name: str, remote: list[str] | None, cache: Path | None, fresh_cache: bool = True) -> dict:
        if cache is not None and fresh_cache:
            shutil.rmtree(cache, ignore_errors=True)
        r = build(args, work, name, remote, cache)
        results.append(r)
        print(json.dumps(r, sort_keys=True), flush=True)
        return r

    try:
        filled = work / "cache-filled"
        run("fill", [stores.url("redis", "writer", False), stores.url("http", "writer", False)], filled)
        for _ in range(args.runs):
            run("cold", None, None)
            run("redis-warm", [stores.url("redis", "reader", True)], work / "cache-empty")
            run("http-warm", [stores.url("http", "reader", True)], work / "cache-empty")
            run("local-warm", None, filled, fresh_cache=False)
            run("local-only", None, work / "cache-empty")
            run("refusing", [stores.url("dead", "writer", False)], work / "cache-empty")
            if not args.skip_hung:
                assert stores.redis_proc is not None
                stores.redis_proc.send_signal(signal.SIGSTOP)
                try:
                    run("hung", [stores.url("redis", "writer", False)], work / "cache-empty")
                finally:
                    stores.redis_proc.send_signal(signal.SIGCONT)
    finally:
        stores.stop()

    def median(kind: str) -> float | None:
        times = [r["seconds"] for r in results if r["kind"] == kind]
        return statistics.median(times) if times else None

    cold, local_only = median("cold"), median("local-only")
    print(f"\nlinux-source 6.1 defconfig, targets {' '.join(args.targets)}, -j{args.jobs}, {args.runs} run(s) each")
    print(f"{'kind':<12} {'median s':>9} {'x cold':>7} {'x local-only':>13} {'remote hits':>12}")
    for kind in ("cold", "fill", "redis-warm", "http-warm", "local-warm", "local-only", "refusing", "hung"):
        m = median(kind)
        if m is None:
            continue
        rates = [r["remote_hit_rate"] for r in results if r["kind"] == kind and r.get("remote_hit_rate") is not None]
        rate = f"{min(rates):.1%}" if rates and kind.endswith("-warm") else "-"
        print(f"{kind:<12} {m:>9.1f} {m / cold:>7.2f} {m / local_only:>13.2f} {rate:>12}")
    for kind in ("refusing", "hung"):
        m = median(kind)
        if m is not None:
            print(f"{kind}: {m - local_only:+.1f} s against the local-only build")
    checks = []
    for kind in ("redis-warm", "http-warm"):
        worst = max(r["seconds"] for r in results if r["kind"] == kind)
        rate = min(r["remote_hit_rate"] or 0 for r in results if r["kind"] == kind)
        checks.append((f"{kind} <= 0.25x cold with >= 95% hits", worst <= 0.25 * cold and rate >= 0.95))
    checks.append(("refusing <= 1.05x local-only", median("refusing") <= 1.05 * local_only))
    for what, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {what}")
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
