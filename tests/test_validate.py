"""provision.rules: one table per rule, a property test against an independent model of the
address rules, and distccd itself showing that what the validator accepts is what distccd admits.

The hostile spellings come from the security reviews (IPv4-mapped and -compatible space, split
halves of the address space, newlines, scopes, user@host, non-ASCII digits, ...) and new ones of
the same kinds.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from provision import calibration as cal
from provision.errors import UserError
from provision.facts.catalog import load_catalog
from provision.model.facts import HostFacts
from provision.model.goals import Goals, HostEntry, check_host_entries, check_host_entry
from provision.planner import plan
from provision.role.checks import check_role_vars
from provision.rules.addresses import (
    address_in,
    check_listen,
    is_hostname,
    is_private,
    loopback_for,
    parse_address,
    parse_allow,
    parse_ip,
)
from provision.rules.distcc import parse_distcc_host
from provision.rules.names import check_account_name, check_owned_dir, check_packages, check_path, parse_size
from provision.rules.store import check_secret_text, check_store_client, check_store_url
from provision.rules.system import (
    BUILDENV_CHECKS,
    SYSCTL_RANGES,
    check_buildenv,
    check_sysctls,
    check_zram_algorithm,
    check_zram_percent,
)

FIXTURES = Path(__file__).parent / "fixtures"
GIB, MIB, TIB = 1 << 30, 1 << 20, 1 << 40


def refused(fn, *args, match: str = ""):
    """fn(*args) raises a one-line UserError (containing ``match``); returns the message."""
    with pytest.raises(UserError) as err:
        fn(*args)
    msg = str(err.value)
    assert "\n" not in msg and "\x1b" not in msg and "\x00" not in msg, msg
    assert match in msg, msg
    return msg


# --------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("10.0.0.1", "10.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("::FFFF:a00:1", "10.0.0.1"),
        ("0:0:0:0:0:ffff:10.0.0.1", "10.0.0.1"),
        ("0000:0000:0000:0000:0000:FFFF:0A00:0001", "10.0.0.1"),
        ("::10.0.0.1", "10.0.0.1"),  # IPv4-compatible (deprecated) is IPv4 too
        ("::a00:1", "10.0.0.1"),
        ("::8.8.8.8", "8.8.8.8"),
        ("::1", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("::", "::"),
        ("FD00::0001", "fd00::1"),
        ("fd00:0:0:0:0:0:0:1", "fd00::1"),
        ("2001:DB8::1.2.3.4", "2001:db8::102:304"),
    ],
)
def test_addresses_are_normalised(text, canonical):
    assert parse_ip(text, "--listen") == canonical


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        (" 10.0.0.1", "not an IP address"),
        ("10.0.0.1 ", "not an IP address"),
        ("10.0.0.1\n", "not an IP address"),
        ("10.0.0.1\r", "not an IP address"),
        ("10.0.0.1\x00", "not an IP address"),
        ("10.0.0.1\x1b[2J", "not an IP address"),
        ("10.0.0.\u0661", "not an IP address"),  # Arabic-Indic digit one
        ("\uff11\uff10.0.0.1", "not an IP address"),  # full-width digits
        ("fe80::1%eth0", "scope"),
        ("fe80::1%25eth0", "scope"),
        ("010.0.0.1", "leading zero"),
        ("10.0.0.01", "leading zero"),
        ("::ffff:010.0.0.1", "leading zero"),
        ("0x0a.0.0.1", "not an IP address"),
        ("10.1", "not an IP address"),
        ("2130706433", "not an IP address"),
        ("10.0.0.256", "not an IP address"),
        ("10.0.0.1/32", "not an IP address"),
        ("1:2:3:4:5:6:7:8:9", "not an IP address"),
        ("::ffff:1.2.3", "not an IP address"),
        ("00000::1", "not an IP address"),
        ("localhost", "not an IP address"),
        (None, "expected text"),
        (167772161, "expected text"),
        (b"10.0.0.1", "expected text"),
    ],
)
def test_hostile_address_spellings_are_refused(text, message):
    msg = refused(parse_ip, text, "--listen", match=message)
    assert msg.startswith("--listen")


@pytest.mark.parametrize(
    "text, private",
    [
        ("10.1.2.3", True), ("172.16.0.1", True), ("172.31.255.255", True), ("172.32.0.1", False),
        ("192.168.7.7", True), ("127.0.0.2", True), ("169.254.1.1", True), ("100.64.0.1", False),
        ("8.8.8.8", False), ("::ffff:10.0.0.1", True), ("::ffff:8.8.8.8", False), ("::8.8.8.8", False),
        ("fd12::1", True), ("fc00::1", True), ("fe80::1", True), ("febf::1", True), ("fec0::1", False),
        ("::1", True), ("::", False), ("2001::1", False), ("2001:1::1", False), ("2002:a00:1::1", False),
        ("64:ff9b::a00:1", False), ("2001:db8::1", False),
    ],
)
def test_private_is_kprovs_own_list(text, private):
    assert is_private(parse_address(text, "x")) is private
    assert is_private(ipaddress.ip_address(text)) is private


# --------------------------------------------------------------------------- distccd allow list


@pytest.mark.parametrize(
    "cidrs, allow_public, canonical",
    [
        (["10.0.0.5"], False, ("10.0.0.5/32",)),
        (["10.1.2.3/8"], False, ("10.0.0.0/8",)),
        (["::ffff:10.0.0.0/104"], False, ("10.0.0.0/8",)),
        (["::FFFF:C0A8:0100/120"], False, ("192.168.1.0/24",)),
        (["::192.168.1.0/120"], False, ("192.168.1.0/24",)),
        (["::ffff:127.0.0.1"], False, ("127.0.0.1/32",)),
        (["FD00::/8", "fd00:0::1/8"], False, ("fd00::/8",)),
        (["fe80::/10", "::1"], False, ("fe80::/10", "::1/128")),
        (["10.0.0.0/8", "10.0.0.0/8"], False, ("10.0.0.0/8",)),
        (["8.8.8.0/24"], True, ("8.8.8.0/24",)),
        (["8.8.0.0/16", "10.0.0.0/8"], True, ("8.8.0.0/16", "10.0.0.0/8")),
        ([f"8.8.{n}.0/24" for n in range(256)], True, tuple(f"8.8.{n}.0/24" for n in range(256))),
        (["2001:db8::/48"], True, ("2001:db8::/48",)),
        (["::ffff:8.8.8.8"], True, ("8.8.8.8/32",)),
    ],
)
def test_allow_lists_are_written_canonical(cidrs, allow_public, canonical):
    assert parse_allow(cidrs, allow_public) == canonical


@pytest.mark.parametrize(
    "cidrs, allow_public, message",
    [
        # the whole Internet, however it is spelled
        (["0.0.0.0/0"], True, "whole Internet"),
        (["::/0"], True, "whole Internet"),
        (["10.0.0.0/0"], True, "whole Internet"),
        (["::ffff:0.0.0.0/96"], False, "whole Internet"),
        (["::ffff:0:0/96"], True, "whole Internet"),
        (["::/96"], True, "whole Internet"),  # IPv4-compatible space
        (["0.0.0.0/1", "128.0.0.0/1"], True, "no client"),
        (["1.0.0.0/1", "128.0.0.0/1"], True, "no client"),
        (["64.0.0.0/2", "128.0.0.0/2"], True, "more addresses than a /16"),
        (["::ffff:0:0/95"], True, "no client"),  # IPv6 space around the mapped block
        (["::/64"], True, "no client"),
        (["::/127"], True, "no client"),
        # public ranges without --allow-public, in every spelling
        (["8.8.8.0/24"], False, "public range"),
        (["203.0.113.0/24"], False, "public range"),
        (["::ffff:8.8.8.8"], False, "public range"),
        (["::ffff:808:808/128"], False, "public range"),
        (["::8.8.8.8"], False, "public range"),
        (["2001::/23"], False, "public range"),
        (["2001::/32"], False, "public range"),  # Teredo
        (["2002::/16"], False, "public range"),  # 6to4
        (["2002:a00::/24"], False, "public range"),  # 6to4 of 10/8 is still a public IPv6 range
        (["64:ff9b::a00:0/104"], False, "public range"),  # NAT64 of 10/8
        (["100.64.0.0/10"], False, "public range"),
        (["172.0.0.0/8"], False, "public range"),
        (["10.0.0.0/7"], False, "public range"),
        (["fe00::/9"], False, "public range"),  # between ULA and link-local
        # too much, even with --allow-public
        (["8.0.0.0/15"], True, "more addresses than a /16"),
        ([f"8.8.{n}.0/24" for n in range(256)] + ["8.9.0.0/24"], True, "more addresses than a /16"),
        (["10.0.0.0/7"], True, "more addresses than a /16"),  # 11/8 is public
        (["2001:db8::/47"], True, "more addresses than a /48"),
        (["2000::/3"], True, "more addresses than a /48"),
        # never a client
        (["224.0.0.0/4"], True, "no client"),
        (["255.255.255.255"], True, "no client"),
        (["0.0.0.0/8"], True, "no client"),
        (["ff02::1"], True, "no client"),
        (["::"], True, "no client"),
        # one family
        (["10.0.0.0/8", "fd00::/8"], False, "mixes IPv4"),
        (["::ffff:10.0.0.1", "::1"], False, "mixes IPv4"),
        # spelling
        (["10.0.0.0/8\n"], False, "not a valid CIDR"),
        (["10.0.0.0/8 10.1.0.0/16"], False, "not a valid CIDR"),
        (["10.0.0.0/8x"], False, "not a valid CIDR"),  # distccd's atoi would read /8
        (["10.0.0.0/08"], False, "not a valid CIDR"),
        (["10.0.0.0/33"], False, "not a valid CIDR"),
        (["fd00::/129"], False, "not a valid CIDR"),
        (["10.0.0.0/255.0.0.0"], False, "not a valid CIDR"),
        (["10.0.0.0/0.255.255.255"], False, "not a valid CIDR"),
        (["10.0.0.0//8"], False, "not a valid CIDR"),
        (["010.0.0.0/8"], False, "leading zero"),
        (["fe80::%eth0/64"], False, "scope"),
        (["$(reboot)"], False, "not a valid CIDR"),
        (["10.0.0.*"], False, "not a valid CIDR"),
        ([""], False, "is empty"),
        ([None], False, "expected text"),
        ([], False, "empty"),
        ("10.0.0.0/8", False, "expected a list"),
    ],
)
def test_allow_lists_that_open_distccd_are_refused(cidrs, allow_public, message):
    refused(parse_allow, cidrs, allow_public, match=message)


def test_allow_messages_name_the_variable_given():
    msg = refused(parse_allow, ["8.8.8.0/24"], False, "kbuild_host_distcc_allow", "kbuild_host_distcc_allow_public")
    assert msg.startswith("kbuild_host_distcc_allow '8.8.8.0/24'") and "kbuild_host_distcc_allow_public" in msg


# --------------------------------------------------------------------------- distccd listen address


@pytest.mark.parametrize(
    "listen, allow, own, canonical",
    [
        ("127.0.0.1", ("127.0.0.0/8",), None, "127.0.0.1"),
        ("::ffff:127.0.0.1", ("127.0.0.0/8",), None, "127.0.0.1"),
        ("10.0.0.5", ("10.0.0.0/24",), None, "10.0.0.5"),
        ("10.0.0.5", ("10.0.0.0/24",), ["10.0.0.5", "fe80::1"], "10.0.0.5"),
        ("10.0.0.5", ("10.0.0.0/24",), ["::ffff:10.0.0.5"], "10.0.0.5"),
        ("127.0.0.2", ("10.0.0.0/24",), ["10.0.0.6"], "127.0.0.2"),  # loopback always counts
        ("169.254.3.4", ("169.254.0.0/16",), None, "169.254.3.4"),
        ("::1", ("::1/128",), [], "::1"),
        ("FD00::5", ("fd00::/64",), ["fd00::5"], "fd00::5"),
    ],
)
def test_listen_address_accepted(listen, allow, own, canonical):
    assert check_listen(listen, allow, own) == canonical


@pytest.mark.parametrize(
    "listen, allow, own, message",
    [
        ("0.0.0.0", ("10.0.0.0/8",), None, "binds every address"),
        ("::", ("fd00::/8",), None, "binds every address"),
        ("0:0:0:0:0:0:0:0", ("fd00::/8",), None, "binds every address"),
        ("::ffff:0.0.0.0", ("10.0.0.0/8",), None, "binds every address"),
        ("0.1.2.3", ("10.0.0.0/8",), None, "not a unicast"),
        ("224.0.0.1", ("10.0.0.0/8",), None, "not a unicast"),
        ("255.255.255.255", ("10.0.0.0/8",), None, "not a unicast"),
        ("ff02::1", ("fd00::/8",), None, "not a unicast"),
        ("fe80::1", ("fe80::/10",), None, "link-local"),
        ("fe80::1%eth0", ("fe80::/10",), None, "scope"),
        ("127.0.0.1\n", ("127.0.0.0/8",), None, "not an IP address"),
        ("", ("127.0.0.0/8",), None, "empty"),
        ("::1", ("127.0.0.0/8",), None, "byte-swapped"),
        ("fd00::5", ("10.0.0.0/8",), None, "byte-swapped"),
        ("127.0.0.1", ("::1/128",), None, "IPv6"),
        ("10.0.0.5", ("10.0.0.0/24",), ["10.0.0.6"], "not an address of this host"),
        ("10.0.0.5", ("10.0.0.0/24",), [], "not an address of this host"),
        ("fd00::5", ("fd00::/64",), ["fd00::6", "garbage"], "not an address of this host"),
    ],
)
def test_listen_address_refused(listen, allow, own, message):
    refused(check_listen, listen, allow, own, match=message)


def test_loopback_follows_the_allow_family():
    assert loopback_for(("10.0.0.0/8",)) == "127.0.0.1"
    assert loopback_for(("fd00::/8",)) == "::1"
    assert address_in("::ffff:10.1.1.1", ("10.0.0.0/8",)) and not address_in("10.1.1.1", ("fd00::/8",))


# --------------------------------------------------------------------------- distcc client hosts


@pytest.mark.parametrize(
    "spec, canonical",
    [
        ("build1", "build1/4"),
        ("build1/8", "build1/8"),
        ("build1:3633/8,lzo", "build1:3633/8,lzo"),
        ("b-1.example.org/1", "b-1.example.org/1"),
        ("xn--bcher-kva.example/2", "xn--bcher-kva.example/2"),
        ("10.0.0.7/4", "10.0.0.7/4"),
        ("[fd00::7]:3632/2", "[fd00::7]:3632/2"),
        ("[FD00:0::7]", "[fd00::7]/4"),
        ("[::ffff:10.0.0.7]/3", "10.0.0.7/3"),
        ("[10.0.0.7]/4", "10.0.0.7/4"),
        ("localhost/2", "localhost/2"),
        ("build1/1024", "build1/1024"),
    ],
)
def test_distcc_hosts_are_written_canonical(spec, canonical):
    assert parse_distcc_host(spec, cal.DISTCC_MAX_LIMIT).spec(4) == canonical


@pytest.mark.parametrize(
    "spec, message",
    [
        ("user@build1", "ssh"),
        ("user@build1/4", "ssh"),
        ("@build1", "ssh"),
        ("build1@", "ssh"),
        ("+zeroconf", "zeroconf"),
        ("-j4", "options"),
        ("--randomize", "options"),
        ("build1/\u00b2", "non-ASCII"),
        ("build1/\u0663", "non-ASCII"),
        ("build1:\u0663\u0666\u0663\u0662", "non-ASCII"),
        ("b\u00fcild1", "non-ASCII"),
        ("build1/0", "limit"),
        ("build1/1025", "limit"),
        ("build1/08", "limit"),
        ("build1/", "limit"),
        ("build1/-1", "limit"),
        ("build1:0", "port"),
        ("build1:65536", "port"),
        ("build1:", "port"),
        ("build1,cpp", "pump mode"),
        ("build1/4,lzo,cpp", "pump mode"),
        ("build1,lzo,lzo", "twice"),
        ("build1,gzip", "unknown option"),
        ("build1,", "unknown option"),
        ("build1 ", "spaces"),
        (" build1", "spaces"),
        ("build1\n", "control"),
        ("build1\tbuild2", "control"),
        ("bad_host", "not a valid host name"),
        ("build1;reboot", "not a valid host name"),
        ("$(reboot)", "not a valid host name"),
        ("0x7f.1/4", "not a valid host name"),
        ("0x7f000001", "not a valid host name"),
        ("127.1", "not an IP address"),
        ("010.0.0.7/4", "leading zero"),
        ("fd00::7/4", "brackets"),
        ("[fe80::1%eth0]/4", "scope"),
        ("[fd00::7", "expected HOST"),
        ("", "expected HOST"),
        (None, "expected HOST"),
    ],
)
def test_hostile_distcc_hosts_are_refused(spec, message):
    refused(parse_distcc_host, spec, cal.DISTCC_MAX_LIMIT, match=message)


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    "text, size",
    [
        ("8G", 8 * GIB), ("8Gi", 8 * GIB), ("8GiB", 8 * GIB), ("8GB", 8 * GIB), ("512M", 512 * MIB),
        ("1.5G", 3 * GIB // 2), ("0.5k", 512), ("64k", 65536), ("64T", 64 * TIB), ("65536G", 64 * TIB),
    ],
)
def test_sizes(text, size):
    assert parse_size(text, "--ccache-size") == size


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("8", "give a unit"),
        ("0G", "larger than zero"),
        ("0.0001k", "larger than zero"),
        ("1e35T", "expected a size"),
        ("9" * 400 + "G", "expected a size"),
        ("65T", "64 TiB"),
        ("65537G", "64 TiB"),
        ("8 G", "expected a size"),
        (" 8G", "expected a size"),
        ("8G\n", "expected a size"),
        ("\u0663G", "expected a size"),
        ("\uff18G", "expected a size"),
        ("-1G", "expected a size"),
        ("8g", "expected a size"),
        ("8Gb", "expected a size"),
        ("inf G", "expected a size"),
        (8, "as text"),
    ],
)
def test_bad_sizes_are_one_line(text, message):
    msg = refused(parse_size, text, "--ccache-size", match=message)
    assert msg.startswith("--ccache-size") and len(msg) < 300


# --------------------------------------------------------------------------- paths and names


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("/var/cache/ccache", "/var/cache/ccache"),
        ("//var//cache/ccache/", "/var/cache/ccache"),
        ("/home/u/.ccache", "/home/u/.ccache"),
        ("/srv/a+b@c-d_e.f", "/srv/a+b@c-d_e.f"),
        ("/", "/"),
    ],
)
def test_paths(text, canonical):
    assert check_path(text, "--ccache-dir") == canonical


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("relative/dir", "absolute"),
        ("~/ccache", "absolute"),
        ("/var/cache/x\nprefix_command = /tmp/evil", "may only contain"),
        ("/var/cache/x\r", "may only contain"),
        ("/var/cache/$(id)", "may only contain"),
        ("/var/cache/${HOME}", "may only contain"),
        ("/var/`id`", "may only contain"),
        ("/var/cache/my cache", "may only contain"),
        ("/var/cache/x;reboot", "may only contain"),
        ("/var/cache/{{ lookup('pipe', 'id') }}", "may only contain"),
        ("/var/cache/*", "may only contain"),
        ("/var/cache/a:b", "may only contain"),
        ("/var/cache/\u00e4", "may only contain"),
        ("/var/cache/x\x1b]0;pwned\x07", "may only contain"),
        ("/var/cache/../../etc", "'..'"),
        ("/var/./cache", "'.'"),
        ("/" + "a" * 256, "longer than 255"),
        ("/a" * 2100, "PATH_MAX"),
        (None, "as text"),
    ],
)
def test_hostile_paths_are_refused(text, message):
    refused(check_path, text, "--ccache-dir", match=message)


@pytest.mark.parametrize("text", ["/", "/var", "/etc", "/etc/ssh", "/usr/local/ccache", "/proc/x", "/boot/x", "/run/ccache"])
def test_the_shared_cache_is_never_a_system_directory(text):
    refused(check_owned_dir, text, "--ccache-dir")
    assert check_owned_dir("/var/cache/ccache", "--ccache-dir") == "/var/cache/ccache"


@pytest.mark.parametrize(
    "name, ok",
    [
        ("build1", True), ("build1.example.org", True), ("b-1", True), ("a" * 63, True), ("1build", True),
        ("a" * 64, False), ("-build", False), ("build-", False), ("bad_name", False), ("build1.", False),
        ("build 1", False), ("build1\n", False), ("b\u00fcild", False), ("127.0.0.1", False), ("127.1", False),
        ("0x7f.1", False), ("10", False), ("", False), (None, False), ("a." * 127 + "a", False),
    ],
)
def test_hostnames(name, ok):
    assert is_hostname(name) is ok


@pytest.mark.parametrize("name", ["kbuild;id", "Kbuild", "kbuild\n", "", "-kbuild", "a" * 33, "k\u00e4"])
def test_group_names(name):
    refused(check_account_name, name, "kbuild_host_ccache_group")
    assert check_account_name("kbuild", "x") == "kbuild" and check_account_name("_build-1", "x") == "_build-1"


# --------------------------------------------------------------------------- zram and sysctls


@pytest.mark.parametrize("percent", [0, -5, 201, 400, "abc", "9" * 400, 1.5, True, None])
def test_zram_percent_is_one_range(percent):
    msg = refused(check_zram_percent, percent, "kbuild_host_zram_percent")
    assert len(msg) < 200
    assert check_zram_percent(1, "x") == 1 and check_zram_percent("200", "x") == 200
    assert (cal.ZRAM_MIN_PERCENT, cal.ZRAM_MAX_PERCENT) == (1, 200)


@pytest.mark.parametrize("name", ["LZ4", "lz4 ", "lz4\n", "lz4;reboot", "", "-lz4", "lz4$(id)", "a" * 33, None])
def test_zram_algorithm_names(name):
    refused(check_zram_algorithm, name, "kbuild_host_zram_algorithm")
    for good in ("lz4", "lzo-rle", "zstd", "842", "lz4hc", "deflate"):
        assert check_zram_algorithm(good, "x") == good


def test_the_sysctl_list_is_what_kprov_plans():
    assert set(SYSCTL_RANGES) == set(cal.ZRAM_SYSCTLS)
    assert check_sysctls({"vm.swappiness": 180, "vm.page-cluster": "0"}, "x") == {"vm.swappiness": "180", "vm.page-cluster": "0"}


@pytest.mark.parametrize(
    "values, message",
    [
        ({"kernel.randomize_va_space": "0"}, "not one kprov sets"),
        ({"kernel.core_pattern": "|/tmp/x"}, "not one kprov sets"),
        ({"vm.swappiness ": "60"}, "not one kprov sets"),
        ({"VM.SWAPPINESS": "60"}, "not one kprov sets"),
        ({"vm/swappiness": "60"}, "not one kprov sets"),
        ({"vm.swappiness\nkernel.sysrq": "1"}, "not one kprov sets"),
        ({"vm.swappiness": "201"}, "0..200"),
        ({"vm.swappiness": -1}, "0..200"),
        ({"vm.swappiness": "60\nkernel.sysrq = 1"}, "whole number"),
        ({"vm.swappiness": "1e2"}, "whole number"),
        ({"vm.swappiness": "\u0663"}, "whole number"),
        ({"vm.swappiness": True}, "whole number"),
        ({"vm.watermark_scale_factor": 0}, "1..3000"),
        ({"vm.page-cluster": 32}, "0..31"),
        ({"vm.watermark_boost_factor": 15001}, "0..15000"),
        (["vm.swappiness"], "mapping"),
    ],
)
def test_sysctls_outside_the_list_or_range_are_refused(values, message):
    refused(check_sysctls, values, "kbuild_host_zram_sysctls", match=message)


# --------------------------------------------------------------------------- /etc/hosts entries


def test_host_entries():
    entries = (HostEntry("::ffff:10.0.0.7", ("build1", "build1.lan")), {"address": "fd00::7", "names": ["b7"]})
    assert check_host_entries(entries) == (HostEntry("10.0.0.7", ("build1", "build1.lan")), HostEntry("fd00::7", ("b7",)))
    shared = (HostEntry("10.0.0.7", ("build1",)),)
    assert check_host_entries(shared) is check_host_entries(shared)  # one check for a farm's shared tuple


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"address": "10.0.0.999", "names": ["b1"]}, "not an IP address"),
        ({"address": "10.0.0.7\n", "names": ["b1"]}, "not an IP address"),
        ({"address": "0.0.0.0", "names": ["b1"]}, "not a host address"),
        ({"address": "::", "names": ["b1"]}, "not a host address"),
        ({"address": "224.0.0.1", "names": ["b1"]}, "not a host address"),
        ({"address": "10.0.0.7", "names": ["b1\n10.0.0.8 evil"]}, "not a valid host name"),
        ({"address": "10.0.0.7", "names": ["evil #"]}, "not a valid host name"),
        ({"address": "10.0.0.7", "names": ["127.1"]}, "not a valid host name"),
        ({"address": "10.0.0.7", "names": []}, "at least one name"),
        ({"address": "10.0.0.7", "names": "build1"}, "list of host names"),
        ("10.0.0.7 build1", "expected an address"),
    ],
)
def test_hostile_host_entries_are_refused(entry, message):
    refused(check_host_entries, [entry], "kbuild_host_hosts_entries", match=message)


# --------------------------------------------------------------------------- the build environment


@pytest.mark.parametrize(
    "env, message",
    [
        ({"LD_PRELOAD": "/tmp/x.so"}, "not a variable kprov exports"),
        ({"PATH": "/tmp"}, "not a variable kprov exports"),
        ({"BASH_ENV": "/tmp/x"}, "not a variable kprov exports"),
        ({"MAKEFLAGS\n": "-j8"}, "not a variable kprov exports"),
        ({"MAKEFLAGS": "-j8 $(reboot)"}, "MAKEFLAGS"),
        ({"MAKEFLAGS": "-j8\nreboot"}, "MAKEFLAGS"),
        ({"KBUILD_BUILD_TIMESTAMP": "`reboot`"}, "KBUILD_BUILD_TIMESTAMP"),
        ({"KBUILD_BUILD_HOST": "a\nreboot"}, "KBUILD_BUILD_HOST"),
        ({"KBUILD_BUILD_USER": "a b"}, "KBUILD_BUILD_USER"),
        ({"CCACHE_DIR": "/x`id`"}, "CCACHE_DIR"),
        ({"CCACHE_BASEDIR": "relative"}, "CCACHE_BASEDIR"),
        ({"KBUILD_OUTPUT": "/tmp/$HOME"}, "KBUILD_OUTPUT"),
        ({"CCACHE_PREFIX": "distcc; reboot"}, "CCACHE_PREFIX"),
        ({"CCACHE_NOHASHDIR": "yes please"}, "CCACHE_NOHASHDIR"),
        ({"DISTCC_HOSTS": "build1/4 user@evil/4"}, "ssh"),
        ({"DISTCC_HOSTS": "build1/4  build2/4"}, "single spaces"),
        ({"KPROV_MAKE_ARGS": "CC=gcc LD_PRELOAD=/tmp/x.so"}, "LD_PRELOAD"),
        ({"KPROV_MAKE_ARGS": "CC='ccache gcc"}, "KPROV_MAKE_ARGS"),
        ({"KPROV_MAKE_ARGS": "CC=$(reboot)"}, "KPROV_MAKE_ARGS"),
        ({"KPROV_MAKE_ARGS": "O=/x\nreboot"}, "KPROV_MAKE_ARGS"),
        (["MAKEFLAGS"], "mapping"),
    ],
)
def test_the_build_environment_is_a_fixed_list(env, message):
    refused(check_buildenv, env, "kbuild_host_buildenv", match=message)


FIXTURE_NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))
GOAL_SETS = [
    Goals(),
    Goals(zram=True, ccache=True, ccache_shared=True, arch="arm64", target="defconfig"),
    Goals(
        distcc_server=True,
        allow=("10.0.0.0/8", "::ffff:192.168.0.0/112"),
        distcc_hosts=("build1/8", "[fd00::7]:3633/2,lzo", "localhost/2"),
        host_entries=(HostEntry("10.0.0.7", ("build1",)),),
        compiler="clang",
    ),
    Goals(distcc_server=True, allow=("fd00::/64",)),
]


@pytest.mark.parametrize("fixture", FIXTURE_NAMES)
@pytest.mark.parametrize("goals", GOAL_SETS, ids=["default", "zram-ccache-cross", "distcc-v4", "distcc-v6"])
def test_every_plan_passes_the_roles_validator(fixture, goals):
    """What the planner hands the role is what the role's validator accepts."""
    facts = HostFacts.from_dict(json.loads((FIXTURES / f"{fixture}.json").read_text()))
    result = plan(facts, goals, load_catalog())
    role_vars = result.to_role_vars()
    role_vars["kbuild_host_ccache_group"] = "kbuild"
    check_role_vars(role_vars)
    assert set(result.env) <= set(BUILDENV_CHECKS)
    check_buildenv(result.env)
    if goals.distcc_server:
        family = 6 if ":" in goals.allow[0] else 4
        assert ipaddress.ip_address(result.distcc.listen).version == family


# --------------------------------------------------------------------------- the property test
#
# An independent model of the address rules: integers and ranges written out here, not ipaddress's
# properties. Hypothesis spells addresses and networks in every accepted way (dotted, IPv4-mapped,
# IPv4-compatible, compressed, zero-padded, upper-case hex, dotted tail) and in refused ways
# (scopes, whitespace, leading zeros), and the validator must agree with the model.

V4_BITS, V6_BITS = 32, 128
M_PRIVATE = {
    4: [(0x0A000000, 8), (0xAC100000, 12), (0xC0A80000, 16), (0x7F000000, 8), (0xA9FE0000, 16)],
    6: [(0xFC << 120, 7), (0xFE80 << 112, 10), (1, 128)],
}
M_NOT_A_HOST = {4: [(0, 8), (0xE0000000, 4), (0xF0000000, 4)], 6: [(0, 128), (0xFFFF << 32, 96), (0xFF << 120, 8)]}
M_PUBLIC_CAP = {4: 1 << 16, 6: 1 << 80}


def _bits(version: int) -> int:
    return V4_BITS if version == 4 else V6_BITS


def _span(version: int, start: int, plen: int) -> tuple[int, int]:
    size = 1 << (_bits(version) - plen)
    first = start - start % size
    return first, first + size - 1


def _model_network(version: int, n: int, plen: int) -> tuple[int, int, int]:
    """(version, first address, prefix) after dropping host bits and unwrapping IPv4 in IPv6."""
    first, _ = _span(version, n, plen)
    if version == 6 and plen >= 96:
        high = first >> 32
        if high == 0xFFFF or (high == 0 and not (plen == 128 and first <= 1)):
            return 4, first & 0xFFFFFFFF, plen - 96
    return version, first, plen


def _inside(version, a, b, ranges) -> bool:
    return any(rs <= a and b <= re_ for rs, re_ in (_span(version, s, p) for s, p in ranges))


def _overlaps(version, a, b, ranges) -> bool:
    return any(a <= re_ and rs <= b for rs, re_ in (_span(version, s, p) for s, p in ranges))


def _model_allow(nets: list[tuple[int, int, int]], allow_public: bool) -> list[tuple[int, int, int]] | None:
    """The canonical allow list, or None when the model refuses it."""
    out: list[tuple[int, int, int]] = []
    for version, first, plen in nets:
        a, b = _span(version, first, plen)
        if plen == 0 or _overlaps(version, a, b, M_NOT_A_HOST[version]):
            return None
        if not allow_public and not _inside(version, a, b, M_PRIVATE[version]):
            return None
        out.append((version, first, plen))
    if not out or len({v for v, _, _ in out}) > 1:
        return None
    version = out[0][0]
    intervals = sorted(_span(*n) for n in out)
    merged: list[list[int]] = []
    for a, b in intervals:
        if merged and a <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    if merged[0] == [0, (1 << _bits(version)) - 1]:
        return None
    if allow_public:
        private = [_span(version, s, p) for s, p in M_PRIVATE[version]]
        public = sum((b - a + 1) - sum(max(0, min(b, pe) - max(a, ps) + 1) for ps, pe in private) for a, b in merged)
        if public > M_PUBLIC_CAP[version]:
            return None
    return list(dict.fromkeys(out))


def _dotted(n: int) -> str:
    return ".".join(str((n >> s) & 0xFF) for s in (24, 16, 8, 0))


@st.composite
def v6_spelling(draw, n: int) -> str:
    """One of the many ways to write the IPv6 address ``n``."""
    groups = [(n >> (112 - 16 * i)) & 0xFFFF for i in range(8)]
    pad, upper, dotted = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
    hexes = [format(g, "04x" if pad else "x") for g in groups]
    if upper:
        hexes = [h.upper() for h in hexes]
    parts = hexes[:6] + [_dotted(n & 0xFFFFFFFF)] if dotted else hexes
    zero = [i for i, p in enumerate(parts) if "." not in p and int(p, 16) == 0]
    runs = [(i, j) for i in zero for j in range(i + 1, len(parts) + 1) if all(k in zero for k in range(i, j))]
    if runs and draw(st.booleans()):
        i, j = draw(st.sampled_from(runs))
        return ":".join(parts[:i]) + "::" + ":".join(parts[j:])
    return ":".join(parts)


INTERESTING_V4 = [0x0A000000, 0xAC100000, 0xAC200000, 0xC0A80100, 0x7F000001, 0xA9FE0101, 0x08080808, 0x64400001,
                  0xE0000001, 0, 1, 0x80000000, 0xFFFFFFFF, 0xCB007100]
INTERESTING_V6 = [0xFD00 << 112, (0xFD00 << 112) | 5, 0xFE80 << 112, 1, 0, 0xFFFF << 32, (0xFFFF << 32) | 0x0A000001,
                  0x0A000001, 0x08080808, 0x2001 << 112, 0x2002 << 112, (0x64FF9B << 96) | 0x0A000001,
                  (0x20010DB8 << 96), 0xFF02 << 112, 0xFEC0 << 112]


@st.composite
def _inside_a_range(draw, version: int) -> tuple[int, int]:
    """(address, prefix) of a network inside a private range, or a narrow public one."""
    bits = _bits(version)
    narrow = (0x08080000, 16) if version == 4 else (0x20010DB8 << 96, 48)
    base, shortest = draw(st.sampled_from(M_PRIVATE[version] + [narrow]))
    plen = draw(st.integers(shortest, bits))
    return base | draw(st.integers(0, (1 << (bits - shortest)) - 1)), plen


@st.composite
def network_spelling(draw, address_only: bool = False) -> tuple[str, tuple[int, int, int] | None]:
    """(text, the model's (version, first, prefix)) or (text, None) for a spelling the model refuses."""
    kind = draw(st.sampled_from(["v4", "mapped", "compatible", "v6"]))
    region = draw(st.sampled_from(["range", "range", "interesting", "any"]))
    version = 6 if kind == "v6" else 4
    if region == "range":
        n, plen = draw(_inside_a_range(version))
    elif version == 6:
        n = draw(st.sampled_from(INTERESTING_V6) if region == "interesting" else st.integers(0, (1 << 128) - 1))
        plen = draw(st.sampled_from([0, 7, 8, 10, 16, 23, 32, 47, 48, 64, 95, 96, 104, 120, 127, 128]) | st.integers(0, 128))
    else:
        n = draw(st.sampled_from(INTERESTING_V4) if region == "interesting" else st.integers(0, (1 << 32) - 1))
        plen = draw(st.sampled_from([0, 1, 2, 4, 8, 10, 12, 15, 16, 24, 32]) | st.integers(0, 32))
    if kind == "v6":
        bits, text = 128, draw(v6_spelling(n))
    elif kind == "v4":
        bits, text = 32, _dotted(n)
    else:
        n = (0xFFFF << 32 | n) if kind == "mapped" else n
        plen, version, bits = plen + 96, 6, 128
        text = draw(v6_spelling(n))
    if address_only:
        plen = bits
    single = address_only or (draw(st.booleans()) and plen == bits)
    if not single:
        text += f"/{plen}"
    spoil = draw(st.sampled_from([None] * 14 + ["newline", "space", "scope", "zero", "tab", "digit"]))
    if spoil == "newline":
        return text + "\n", None
    if spoil == "space":
        return " " + text, None
    if spoil == "tab":
        return text.replace("/", "\t/", 1) if "/" in text else text + "\t", None
    if spoil == "scope":
        return (text.replace("/", "%eth0/", 1) if "/" in text else text + "%eth0"), None
    if spoil == "digit":
        return text.replace("1", "\u0661", 1) if "1" in text else text + "\u0661", None
    if spoil == "zero":
        address, slash, prefix = text.partition("/")
        if "." in address:
            head, colon, dotted = address.rpartition(":")
            octets = dotted.split(".")
            octets[0] = "0" + octets[0]
            return head + colon + ".".join(octets) + slash + prefix, None
    return text, _model_network(version, n, plen)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(network_spelling(), min_size=1, max_size=3), st.booleans())
def test_allow_lists_agree_with_an_independent_model(spelled, allow_public):
    texts = [t for t, _ in spelled]
    expected = None if any(m is None for _, m in spelled) else _model_allow([m for _, m in spelled], allow_public)
    try:
        got = parse_allow(texts, allow_public)
    except UserError as exc:
        event("refused")
        assert expected is None, f"{texts!r} refused ({exc}) but the model accepts {expected}"
        assert "\n" not in str(exc)
        return
    event(f"accepted IPv{ipaddress.ip_network(got[0]).version}" + (" public" if allow_public else ""))
    assert expected is not None, f"{texts!r} accepted as {got} but the model refuses it"
    as_ints = []
    for g in got:
        net = ipaddress.ip_network(g)
        as_ints.append((net.version, int(net.network_address), net.prefixlen))
    assert as_ints == expected
    assert all("/" in g and g == g.strip() for g in got)


@settings(max_examples=400, deadline=None)
@given(network_spelling(address_only=True), st.sampled_from(["v4", "v6"]))
def test_listen_addresses_agree_with_an_independent_model(spelled, allow_kind):
    text, model = spelled
    allow = ("10.0.0.0/8",) if allow_kind == "v4" else ("fd00::/8",)
    try:
        got = check_listen(text, allow)
    except UserError:
        event("refused")
        if model is not None:
            version, n, _ = model
            a, b = _span(version, n, _bits(version))
            link_local = version == 6 and _inside(6, a, b, [(0xFE80 << 112, 10)])
            assert (
                n == 0
                or _overlaps(version, a, b, M_NOT_A_HOST[version])
                or link_local
                or version != (4 if allow_kind == "v4" else 6)
            ), f"{text!r} refused but the model accepts it"
        return
    event("accepted")
    assert model is not None, f"{text!r} accepted as {got}"
    version, n, _ = model
    ip = ipaddress.ip_address(got)
    assert (ip.version, int(ip)) == (version, n)
    assert version == (4 if allow_kind == "v4" else 6)
    assert not _overlaps(version, n, n, M_NOT_A_HOST[version]) and n != 0


# --------------------------------------------------------------------------- distccd itself
#
# IPv6 allow lists are accepted because distccd 3.4 (Debian 12) handles them on an IPv6 listen
# address; IPv4 allow lists need an IPv4 listen address because on an IPv6 socket it compares them
# byte-swapped. These tests run the real distccd on loopback and compile through it.

DISTCCD, DISTCC, GCC = shutil.which("distccd"), shutil.which("distcc"), shutil.which("gcc")
needs_distcc = pytest.mark.skipif(
    not (DISTCCD and DISTCC and GCC and os.path.exists("/usr/lib/distcc/gcc")),
    reason="distccd, distcc, gcc and /usr/lib/distcc links are needed",
)


def _free_port(family: int, host: str) -> int:
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _compiles_through(tmp: Path, listen: str, allow: list[str], client: str) -> bool:
    """Start distccd on ``listen`` with ``allow``, compile from ``client`` (loopback), stop it."""
    family = socket.AF_INET6 if ":" in client else socket.AF_INET
    port = _free_port(family, client)
    argv = [DISTCCD, "--no-detach", "--daemon", "--listen", listen, "--port", str(port), "--jobs", "1", "--log-stderr"]
    for a in allow:
        argv += ["--allow", a]
    daemon = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):  # wait until it accepts connections
            try:
                socket.create_connection((client, port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        (tmp / "unit.c").write_text("int answer(void) { return 42; }\n")
        (tmp / "distcc-dir").mkdir(exist_ok=True)
        host = f"[{client}]" if ":" in client else client
        env = {
            "PATH": os.environ.get("PATH", ""),
            "DISTCC_HOSTS": f"{host}:{port}/1",
            "DISTCC_FALLBACK": "0",
            "DISTCC_SKIP_LOCAL_RETRY": "1",
            "DISTCC_DIR": str(tmp / "distcc-dir"),
        }
        argv = [DISTCC, "gcc", "-c", "unit.c", "-o", "unit.o"]
        proc = subprocess.run(argv, cwd=tmp, env=env, capture_output=True, timeout=120, check=False)
        return proc.returncode == 0
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)


@needs_distcc
@pytest.mark.parametrize(
    "client, allow",
    [
        ("127.0.0.1", ["127.0.0.1"]),
        ("127.0.0.1", ["127.0.0.0/8"]),
        ("127.0.0.1", ["10.0.0.0/8"]),
        ("127.0.0.1", ["1.0.0.127"]),  # 127.0.0.1 byte-swapped: refused on an IPv4 socket
        ("127.0.0.1", ["::ffff:127.0.0.1"]),
        ("::1", ["::1"]),
        ("::1", ["fd00::/8"]),
        ("::1", ["fe80::/10", "::1"]),
        ("::1", ["fc00::/7"]),
    ],
)
def test_distccd_admits_exactly_the_validated_allow_list(tmp_path, client, allow):
    canonical = parse_allow(allow, allow == ["1.0.0.127"])
    listen = check_listen(client, canonical)
    expected = any(ipaddress.ip_address(client) in ipaddress.ip_network(a) for a in canonical)
    assert _compiles_through(tmp_path, listen, list(canonical), client) is expected


@needs_distcc
def test_the_family_rule_is_needed_distccd_3_4_swaps_ipv4_entries_on_ipv6_sockets(tmp_path):
    """Why an IPv4 allow list never gets an IPv6 listen address: distccd 3.4 on `::` refuses a
    client its allow list names and admits one it does not (the byte-swapped spelling)."""
    assert not _compiles_through(tmp_path, "::", ["127.0.0.1"], "127.0.0.1")
    assert _compiles_through(tmp_path, "::", ["1.0.0.127"], "127.0.0.1")
    refused(check_listen, "::", ("127.0.0.1/32",), None, match="binds every address")
    refused(check_listen, "::1", ("127.0.0.1/32",), None, match="byte-swapped")


@pytest.mark.parametrize("address, name", [("10.0.0.1", "localhost"), ("192.168.1.5", "LOCALHOST"),
                                           ("fd00::1", "ip6-localhost"), ("10.0.0.2", "localhost.localdomain")])
def test_loopback_names_keep_loopback_addresses(address, name):
    with pytest.raises(UserError, match="names this host's loopback"):
        check_host_entry(address, [name])
    assert check_host_entry("127.0.0.1", [name]).names == (name,)


@pytest.mark.parametrize("name", ["ccache; rm -rf /", "-oAPT::Get::AllowUnauthenticated=1", "", "git\n", "dwarves=1.24 -4", 7])
def test_package_names_are_names(name):
    with pytest.raises(UserError, match="kbuild_host_packages"):
        check_packages([name], "kbuild_host_packages")


def test_real_package_lists_pass():
    assert check_packages(["libssl-dev", "perl-base", "elfutils-libelf-devel", "dwarves=1.24-4.1", "g++"],
                                   "kbuild_host_packages")


# --------------------------------------------------------------------------- the shared compile cache


@pytest.mark.parametrize(
    "url, canonical",
    [
        ("redis://127.0.0.1:6380", "redis://127.0.0.1:6380"),
        ("redis://127.0.0.1", "redis://127.0.0.1:6380"),
        ("redis://store.example:7000/", "redis://store.example:7000"),
        ("http://10.0.0.5:8380/cache/", "http://10.0.0.5:8380/cache/"),
        ("http://10.0.0.5", "http://10.0.0.5:8380/cache/"),
        ("http://[::1]:8380/a/b/", "http://[::1]:8380/a/b/"),
    ],
)
def test_store_urls_come_out_canonical(url, canonical):
    assert str(check_store_url(url, "--ccache-remote")) == canonical


@pytest.mark.parametrize(
    "url",
    [
        "redis://a:b@127.0.0.1:6380", "redis://:pw@127.0.0.1", "http://127.0.0.1@evil.example/cache/",
        "redis://127.0.0.1:6380|read-only", "redis://127.0.0.1:6380\n", "redis:// 127.0.0.1",
        "http://127.0.0.1/cache/#frag", "http://127.0.0.1/cache/?q", "https://127.0.0.1/cache/",
        "rediss://127.0.0.1", "redis+unix:///run/redis.sock", "file:///tmp/x", "127.0.0.1:6380",
        "redis://127.0.0.1:0", "redis://127.0.0.1:65536", "redis://127.0.0.1:+80", "redis://127.0.0.1:0x50",
        "redis://127.1", "redis://0x7f.1", "redis://", "http://:8380/cache/", "http://h/cache",
        "http://h/./", "http://h/../", "http://h//", "redis://h/1", "http://h/ca che/", "redis://h\u00e9",
        "redis://[127.0.0.1]", "http://[::ffff:127.0.0.1]/cache/", "http://[fe80::1%eth0]/cache/", "redis://-bad-.example", 42, None,
    ],
)
def test_bad_store_urls_are_one_line_that_never_shows_a_password(url):
    with pytest.raises(UserError) as err:
        check_store_url(url, "--ccache-remote")
    message = str(err.value)
    assert "\n" not in message and message.isprintable()
    assert "pw" not in message and "a:b" not in message


@pytest.mark.parametrize("spec, expected", [("laptop", ("laptop", False)), ("ci1.example:write", ("ci1.example", True))])
def test_store_client_specs(spec, expected):
    assert check_store_client(spec) == expected


@pytest.mark.parametrize("spec", ["", ":write", "a:read", "a:write:x", "a b", "a@b", "a|b", "-a", "x" * 65, "a#b"])
def test_bad_store_client_specs(spec):
    with pytest.raises(UserError):
        check_store_client(spec)


def test_secret_text_is_one_token_line_and_never_echoed():
    token = "Zk3v9Qx-_p0LmN4rT7yW2aB5cD8eF1gH6iJ0kL3mN9o"
    assert check_secret_text(token + "\n", "s") == token
    for bad in ("", "short", token + "\n\n", token + "|x", f"{token}:{token}", "pass word " * 3, None, token + "\r"):
        with pytest.raises(UserError) as err:
            check_secret_text(bad, "s")
        assert token not in str(err.value)


def test_the_new_build_environment_variables_are_checked():
    ok = {"CCACHE_CONFIGPATH": "/etc/kprov/ccache-remote.conf", "KCFLAGS": "-fdebug-prefix-map=/srv/kbuild/="}
    assert check_buildenv(ok) == ok
    for name, value in (("KCFLAGS", "-fplugin=/tmp/evil.so"), ("KCFLAGS", "-fdebug-prefix-map=/a/= -fplugin=x"),
                        ("CCACHE_CONFIGPATH", "relative"), ("CCACHE_CONFIGPATH", "/etc/$(id)")):
        with pytest.raises(UserError):
            check_buildenv({name: value})
