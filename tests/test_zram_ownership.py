"""zram ownership: kprov touches only the zram swap its own record vouches for.

The record (/etc/kprov/zram.state, written by the role) is the only proof of ownership: a sysfs
activation is kprov's during the boot it happened in, a service-managed device while the config
file still has the content kprov wrote. The activation script runs for real on this host's
/sys/block/zram0 (root, a zram-enabled kernel), with its record in a temp dir.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from provision.facts.local import sysprobe

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "playbooks" / "roles" / "kbuild_host" / "files" / "kprov-zram-sysfs.sh"
SYS = Path("/sys/block/zram0")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def fake_root(tmp_path: Path, swaps: str = "", state: str = "", configs: dict[str, str] | None = None,
              config_state: str = "") -> str:
    (tmp_path / "proc/sys/kernel/random").mkdir(parents=True)
    (tmp_path / "proc/sys/kernel/random/boot_id").write_text("11111111-2222-3333-4444-555555555555\n")
    (tmp_path / "proc/swaps").write_text("Filename\tType\tSize\tUsed\tPriority\n" + swaps)
    (tmp_path / "etc/kprov").mkdir(parents=True)
    if state:
        (tmp_path / "etc/kprov/zram.state").write_text(state)
    if config_state:
        (tmp_path / "etc/kprov/zram-config.state").write_text(config_state)
    for path, text in (configs or {}).items():
        (tmp_path / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path.lstrip("/")).write_text(text)
    return str(tmp_path)


SWAPS = "/dev/zram0 partition 1024 0 100\n/dev/zram1 partition 1024 0 5\n"
THIS_BOOT = "11111111-2222-3333-4444-555555555555"


def test_without_a_record_every_zram_swap_is_the_users(tmp_path):
    z = sysprobe().zram_facts(fake_root(tmp_path, SWAPS))
    assert z["devices_in_use"] == ["/dev/zram0", "/dev/zram1"]
    assert z["kprov_devices"] == []


def test_a_sysfs_record_counts_only_during_the_boot_it_was_made_in(tmp_path):
    record = "mode=sysfs boot_id={} phase=active device=zram0 algorithm=lz4 disksize=1048576 priority=100\n"
    now = fake_root(tmp_path / "now", SWAPS, record.format(THIS_BOOT))
    assert sysprobe().zram_facts(now)["kprov_devices"] == ["/dev/zram0"]
    # After a reboot someone else may have set up zram0 with the very same settings: not kprov's.
    old = fake_root(tmp_path / "old", SWAPS, record.format("99999999-0000-0000-0000-000000000000"))
    assert sysprobe().zram_facts(old)["kprov_devices"] == []
    # The record of the first release (no mode, no boot) vouches for nothing either.
    legacy = fake_root(tmp_path / "legacy", SWAPS, "device=zram0 algorithm=lz4 disksize=1048576 priority=100\n")
    assert sysprobe().zram_facts(legacy)["kprov_devices"] == []


def test_a_service_record_counts_while_the_config_is_what_kprov_wrote(tmp_path):
    config = "ALGO=lz4\nPERCENT=50\nPRIORITY=100\n"
    digest = hashlib.sha256(config.encode()).hexdigest()
    record = f"mode=service device=zram0 config=/etc/default/zramswap sha256=0000,{digest}\n"
    ours = fake_root(tmp_path / "ours", SWAPS, "", {"/etc/default/zramswap": config}, record)
    z = sysprobe().zram_facts(ours)
    assert z["kprov_devices"] == ["/dev/zram0"] and z["foreign_configs"] == []
    # The user edited the file since: the config, and the device it makes, are theirs now.
    edited = fake_root(tmp_path / "edited", SWAPS, "", {"/etc/default/zramswap": config + "SIZE=512\n"}, record)
    z = sysprobe().zram_facts(edited)
    assert z["kprov_devices"] == [] and z["foreign_configs"] == ["/etc/default/zramswap"]
    # A record may only vouch for a zram tool's own config file.
    odd = f"mode=service device=zram0 config=/etc/passwd sha256={digest}\n"
    assert sysprobe().zram_facts(fake_root(tmp_path / "odd", SWAPS, "", {}, odd))["kprov_devices"] == []


def test_a_comment_saying_kprov_proves_nothing(tmp_path):
    config = "# Planned by kprov\nALGO=zstd\nPERCENT=100\n"
    root = fake_root(tmp_path, SWAPS, "", {"/etc/default/zramswap": config})
    z = sysprobe().zram_facts(root)
    assert z["kprov_devices"] == [] and z["foreign_configs"] == ["/etc/default/zramswap"]


def test_a_config_exactly_as_its_package_shipped_it_is_nobodys(tmp_path):
    """trixie's zram-tools ships an /etc/default/zramswap that sets ALGO and PERCENT."""
    shipped = "# Compression algorithm\nALGO=lz4\nPERCENT=50\n"
    md5 = hashlib.md5(shipped.encode()).hexdigest()
    status = ("Package: zram-tools\nStatus: install ok installed\nConffiles:\n"
              f" /etc/default/zramswap {md5}\nVersion: 0.3.7-1\n\n")
    root = fake_root(tmp_path / "pristine", "", "", {"/etc/default/zramswap": shipped, "/var/lib/dpkg/status": status})
    assert sysprobe().zram_facts(root)["foreign_configs"] == []
    edited = fake_root(tmp_path / "edited", "", "", {"/etc/default/zramswap": shipped + "SIZE=2048\n",
                                                     "/var/lib/dpkg/status": status})
    assert sysprobe().zram_facts(edited)["foreign_configs"] == ["/etc/default/zramswap"]


def test_a_package_default_config_with_only_comments_is_nobodys(tmp_path):
    root = fake_root(tmp_path, "", "", {"/etc/default/zramswap": "# ALGO=lz4\n\n#PERCENT=50\n"})
    assert sysprobe().zram_facts(root)["foreign_configs"] == []


# --------------------------------------------------------------------------- the script, for real


def zram_usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to change /sys/block/zram0"
    if not (SYS / "disksize").exists():
        return "this host has no /sys/block/zram0"
    if "/dev/zram0 " in Path("/proc/swaps").read_text() or (SYS / "disksize").read_text().strip() != "0":
        return "this host's zram0 is in use: the script tests need it free"
    return None


@pytest.fixture
def zram0():
    reason = zram_usable()
    if reason:
        pytest.skip(reason)
    yield
    subprocess.run(["swapoff", "/dev/zram0"], capture_output=True, check=False)
    (SYS / "reset").write_text("1")


def script(state: Path, check: bool = False, percent: int = 1, algo: str = "lzo") -> dict:
    proc = subprocess.run(
        ["sh", str(SCRIPT), "zram0", algo, str(percent), "100", str(state), "1" if check else "0"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def disksize() -> int:
    return int((SYS / "disksize").read_text())


def is_swap() -> bool:
    return "/dev/zram0 " in Path("/proc/swaps").read_text()


def test_the_script_activates_records_then_changes_nothing(zram0, tmp_path):
    state = tmp_path / "zram.state"
    check = script(state, check=True)
    assert check["changed"] and check["action"] == "activate"
    assert disksize() == 0 and not state.exists(), "check mode changed something"
    first = script(state)
    assert first["changed"] and is_swap() and disksize() > 0
    fields = dict(f.split("=", 1) for f in state.read_text().split())
    assert fields["mode"] == "sysfs" and fields["boot_id"] == BOOT_ID and fields["phase"] == "active"
    again = script(state)
    assert again == {"changed": False, "action": "unchanged", "msg": again["msg"]}
    # A new plan resizes kprov's own device.
    resized = script(state, percent=2)
    assert resized["action"] == "reconfigure" and is_swap()


def test_a_device_someone_else_initialised_is_never_reset(zram0, tmp_path):
    (SYS / "comp_algorithm").write_text("lzo")
    (SYS / "disksize").write_text(str(64 << 20))
    out = script(tmp_path / "zram.state")
    assert out["changed"] is False and out["action"] == "foreign"
    assert disksize() == 64 << 20 and not is_swap() and not (tmp_path / "zram.state").exists()


def test_a_users_swap_with_the_planned_settings_is_not_adopted(zram0, tmp_path):
    state = tmp_path / "zram.state"
    script(state)  # the device as kprov would make it ...
    state.unlink()  # ... but no record of it: someone else's
    out = script(state)
    assert out["action"] == "foreign" and not state.exists()
    # A record from another boot is no better.
    state.write_text(f"mode=sysfs boot_id=00000000-0000-0000-0000-000000000000 phase=active "
                     f"device=zram0 algorithm=lzo disksize={disksize()} priority=100\n")
    assert script(state, percent=2)["action"] == "foreign" and is_swap()


def test_a_run_killed_half_way_finishes_its_own_activation(zram0, tmp_path):
    state = tmp_path / "zram.state"
    # What a run leaves when it dies after setting disksize, before mkswap/swapon:
    state.write_text(f"mode=sysfs boot_id={BOOT_ID} phase=activating device=zram0 algorithm=lzo "
                     f"disksize={64 << 20} priority=100\n")
    (SYS / "comp_algorithm").write_text("lzo")
    (SYS / "disksize").write_text(str(64 << 20))
    out = script(state)
    assert out["changed"] and out["action"] == "activate" and is_swap()
    assert "phase=active" in state.read_text()
    assert script(state)["action"] == "unchanged"


def test_the_probe_reads_each_zram_config_digest_and_what_the_kernel_lets_the_role_change(tmp_path):
    """The role's zram area reads these from the probe instead of a stat of its own per path."""
    config = "ALGO=lz4\n"
    z = sysprobe().zram_facts(fake_root(tmp_path, "", "", {"/etc/default/zramswap": config}))
    assert z["config_sha256"] == {
        "/etc/default/zramswap": hashlib.sha256(config.encode()).hexdigest(),
        "/etc/systemd/zram-generator.conf": None,
    }
    # a fake root has no /proc/sys/vm/swappiness and no zram0: nothing is writable there
    assert z["proc_sys_writable"] is False and z["sysfs_writable"] is False and z["device_present"] is False
    (tmp_path / "proc/sys/vm").mkdir(parents=True)
    (tmp_path / "proc/sys/vm/swappiness").write_text("60\n")
    assert sysprobe().zram_facts(str(tmp_path))["proc_sys_writable"] is True
