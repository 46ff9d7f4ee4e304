#!/usr/bin/python3
"""Probe the compile cache's stores as one client would, and say what each refused.

The credential comes from a ccache configuration (the role's /etc/kprov/ccache-remote.conf) or a
secret file, never from the command line; output never contains it. Exit 1 names the first
expectation that failed.
"""

import argparse
import base64
import http.client as httplib
import json
import os
import re
import socket
import sys

ADMIN = [["FLUSHALL"], ["CONFIG", "GET", "maxmemory"], ["KEYS", "*"], ["DEBUG", "SLEEP", "0"],
         ["ACL", "LIST"], ["SET", "other:key", "x"], ["GET", "other:key"], ["SHUTDOWN"]]


def credential(args):
    if args.conf:
        with open(args.conf, encoding="ascii") as f:
            line = next(l for l in f if l.startswith("remote_storage = "))
        m = re.search(r"://([^:@/]+):([^@/]+)@", line)
        return m.group(1), m.group(2)
    if args.secret_file:
        with open(args.secret_file, encoding="ascii") as f:
            return args.user, f.read().strip()
    return None, None


def resp(sock_file, sock, *words):
    sock.sendall(b"".join([f"*{len(words)}\r\n".encode()]
                          + [f"${len(w.encode())}\r\n{w}\r\n".encode() for w in words]))
    line = sock_file.readline().decode(errors="replace").rstrip("\r\n")
    if line.startswith("$") and line != "$-1":
        sock_file.read(int(line[1:]) + 2)
    elif line.startswith("*"):
        for _ in range(int(line[1:]) if line[1:].lstrip("-").isdigit() and int(line[1:]) > 0 else 0):
            sub = sock_file.readline().decode().rstrip("\r\n")
            if sub.startswith("$") and sub != "$-1":
                sock_file.read(int(sub[1:]) + 2)
    return line


def redis(args, user, password):
    s = socket.create_connection((args.host, args.redis_port), timeout=5)
    f = s.makefile("rb")
    out = {}
    if user:
        auth = resp(f, s, "AUTH", user, password)
        out["AUTH"] = auth
    out["GET ccache:kprov-probe"] = resp(f, s, "GET", "ccache:kprov-probe")
    out["SET ccache:kprov-probe"] = resp(f, s, "SET", "ccache:kprov-probe", "x")
    out["DEL ccache:kprov-probe"] = resp(f, s, "DEL", "ccache:kprov-probe")
    for cmd in ADMIN:
        out[" ".join(cmd)] = resp(f, s, *cmd)
    s.close()
    return out


def http_probe(args, user, password, path="/cache/kprov-probe"):
    out = {}
    for method in ("GET", "PUT", "DELETE"):
        c = httplib.HTTPConnection(args.http_host, args.http_port, timeout=5)
        headers = {}
        if user:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        c.request(method, path, body=b"x" if method == "PUT" else None, headers=headers)
        out[method] = c.getresponse().status
        c.close()
    return out


def refused(reply):
    return reply.startswith(("-NOPERM", "-NOAUTH", "-ERR"))


def where(secret, roots):
    hits = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    if os.path.islink(path) or not os.path.isfile(path) or os.path.getsize(path) > 64 << 20:
                        continue
                    with open(path, "rb") as fh:
                        if secret.encode() in fh.read():
                            hits.append(path)
                except OSError:
                    continue
    return sorted(hits)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--role", choices=["writer", "reader", "outsider"], required=True)
    p.add_argument("--conf")
    p.add_argument("--secret-file")
    p.add_argument("--user")
    p.add_argument("--host", required=True)
    p.add_argument("--redis-port", type=int, default=6380)
    p.add_argument("--http-host", required=True)
    p.add_argument("--http-port", type=int, default=8380)
    p.add_argument("--where", nargs="*", default=[])
    args = p.parse_args()
    user, password = credential(args)
    r, h = redis(args, user if args.role != "outsider" else None, password), http_probe(args, user, password)
    problems = []
    for cmd in ADMIN:
        if not refused(r[" ".join(cmd)]):
            problems.append(f"redis allowed {cmd[0]}: {r[' '.join(cmd)]}")
    if args.role == "writer":
        if r.get("AUTH") != "+OK" or r["SET ccache:kprov-probe"] != "+OK" or r["DEL ccache:kprov-probe"] != ":1":
            problems.append(f"redis refused the writer: {r}")
        if h["GET"] != 404 or h["PUT"] not in (201, 204) or h["DELETE"] != 204:
            problems.append(f"nginx refused the writer: {h}")
    elif args.role == "reader":
        if r.get("AUTH") != "+OK" or r["GET ccache:kprov-probe"] != "$-1":
            problems.append(f"redis refused the reader's GET: {r}")
        if not refused(r["SET ccache:kprov-probe"]) or not refused(r["DEL ccache:kprov-probe"]):
            problems.append(f"redis let the reader write: {r}")
        if h["GET"] != 404 or h["PUT"] not in (401, 403) or h["DELETE"] not in (401, 403):
            problems.append(f"nginx: reader GET/PUT/DELETE {h}")
    else:
        if not all(refused(v) for v in r.values()):
            problems.append(f"redis answered the anonymous outsider: {r}")
        # with a valid credential, from an address outside the allow list
        if any(v != 403 for v in h.values()):
            problems.append(f"nginx did not refuse the outsider's address: {h}")
        anonymous = http_probe(args, None, None)
        if any(v not in (401, 403) for v in anonymous.values()):
            problems.append(f"nginx answered the anonymous outsider: {anonymous}")
    found = where(password, args.where) if args.where and password else []
    print(json.dumps({"role": args.role, "redis": {k: v[:40] for k, v in r.items()}, "http": h,
                      "secret_found_in": found, "problems": problems}, sort_keys=True))
    return 1 if problems else 0


sys.exit(main())
