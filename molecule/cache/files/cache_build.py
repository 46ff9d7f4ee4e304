#!/usr/bin/python3
"""Build a slice of the kernel through ccache and report, as JSON, what was compiled and ccache's
statistics; or derive test client configurations from the role's /etc/kprov/ccache-remote.conf.

Prints no password: configurations are read and written here, never passed on a command line.
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import time


def remote_urls(conf):
    with open(conf, encoding="ascii") as f:
        for line in f:
            if line.startswith("remote_storage = "):
                return line[len("remote_storage = "):].split()
    sys.exit(f"{conf}: no remote_storage line")


def as_http(url, host, port):
    """The role's redis:// URL (user and password) pointed at the WebDAV store on HOST:PORT."""
    first, _, attrs = url.partition("|")
    m = re.fullmatch(r"redis://([^@]+)@[0-9.]+:[0-9]+", first)
    if not m:
        sys.exit("the role's remote_storage line is not a redis:// URL with a user")
    return f"http://{m.group(1)}@{host}:{port}/cache/" + (f"|{attrs}" if attrs else "")


def write_conf(src, dest, urls):
    """The role's configuration with another remote_storage line (ccache reads this file alone)."""
    with open(src, encoding="ascii") as f:
        lines = [line for line in f if not line.startswith("remote_storage = ")]
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.writelines(lines)
        f.write("remote_storage = " + " ".join(urls) + "\n")


def stats():
    out = subprocess.run(["ccache", "--print-stats"], check=True, capture_output=True, text=True).stdout
    return {k: int(v) for k, v in (line.split("\t") for line in out.splitlines() if "\t" in line)}


def build(args):
    env = dict(os.environ, LANG=args.lang, LC_ALL=args.lang)
    make = ["make", "-C", args.src, f"O={args.out}", "CC=ccache gcc"]
    os.makedirs(args.out, exist_ok=True)
    if args.zero:
        subprocess.run(["ccache", "-z"], check=True, capture_output=True)
    if not os.path.exists(os.path.join(args.out, ".config")):
        subprocess.run(make + ["defconfig"], check=True, env=env, capture_output=True)
    start = time.monotonic()
    proc = subprocess.run(make + [f"-j{args.jobs}"] + args.targets, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        sys.exit(f"make failed with exit {proc.returncode}")
    compiled = sorted(m.group(1) for m in re.finditer(r"^\s+CC\s+(\S+\.o)$", proc.stdout, re.MULTILINE))
    s = stats()
    hits, misses = s.get("remote_storage_hit", 0), s.get("remote_storage_miss", 0)
    print(json.dumps({
        "seconds": round(seconds, 1),
        "compiled": compiled,
        "objects": len(compiled),
        "remote_hit": hits,
        "remote_miss": misses,
        "cache_miss": s.get("cache_miss", 0),
        "local_hit": s.get("local_storage_hit", 0),
        "remote_write": s.get("remote_storage_write", 0),
        "remote_error": s.get("remote_storage_error", 0) + s.get("remote_storage_timeout", 0),
        "remote_hit_rate": round(hits / (hits + misses), 4) if hits + misses else 0.0,
    }, sort_keys=True))


def dependents(args):
    """Objects under OUT whose kbuild .cmd file lists FILE among its dependencies."""
    found = []
    for cmd in glob.glob(os.path.join(args.out, "**", ".*.o.cmd"), recursive=True):
        with open(cmd, encoding="utf-8", errors="replace") as f:
            text = f.read()
        if re.search(r"(^|[\s/])" + re.escape(args.file) + r"(\s|\\|$)", text, re.MULTILINE):
            rel = os.path.relpath(cmd, args.out)
            found.append(os.path.join(os.path.dirname(rel), os.path.basename(rel)[1:-len(".cmd")]))
    print(json.dumps(sorted(found)))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("config")
    c.add_argument("--from", dest="src", default="/etc/kprov/ccache-remote.conf")
    c.add_argument("--to", required=True)
    c.add_argument("--backends", default="redis,http")
    c.add_argument("--http-host", required=True)
    c.add_argument("--http-port", default="8380")
    b = sub.add_parser("build")
    b.add_argument("--src", required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--jobs", default="2")
    b.add_argument("--lang", default="C")
    b.add_argument("--zero", action="store_true")
    b.add_argument("targets", nargs="+")
    d = sub.add_parser("dependents")
    d.add_argument("--out", required=True)
    d.add_argument("file")
    args = p.parse_args()
    if args.cmd == "config":
        redis = remote_urls(args.src)[0]
        urls = {"redis": redis, "http": as_http(redis, args.http_host, args.http_port)}
        write_conf(args.src, args.to, [urls[b] for b in args.backends.split(",")])
    elif args.cmd == "build":
        build(args)
    else:
        dependents(args)


main()
