"""Licensing end to end: fingerprints from recorded device trees, online activation against the
reference server on loopback, offline and batch flows, and every refusal with its code."""
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from edge import config as C
from edge import errors as E
from edge.license import core
from edge.license import fingerprint as FP
from edge.license.device import Licensing
from edge.license.server import serve_in_thread
from edge.license.vendor import Vendor, keygen

from tests.licensing import DEVICES, T0, Clock, device, err, vendor  # noqa: F401  (vendor: fixture)


# ---- fingerprints ---------------------------------------------------------------------------
def test_fingerprints_of_recorded_devices_are_stable_and_distinct():
    fps = {d: FP.fingerprint(DEVICES / d) for d in ("rpi4", "rk3399", "pc")}
    assert all(FP.fingerprint(DEVICES / d) == fps[d] for d in fps)          # stable across runs
    assert len({f["device_id"] for f in fps.values()}) == 3                 # distinct
    assert set(fps["rpi4"]["components"]) >= {"cpu_serial", "machine_id"}
    assert {"cpu_serial", "emmc_cid"} <= set(fps["rk3399"]["components"])   # device-tree serial + eMMC CID
    assert "dmi_uuid" in fps["pc"]["components"]
    # physical NICs only (lo, docker0, veth are not), and the raw identifiers never appear
    assert sum(k.startswith("mac:") for k in fps["pc"]["components"]) == 2
    text = json.dumps(fps)
    assert "10000000a3b4c5d6" not in text and "dc:a6:32" not in text and "4c4c4544" not in text
    for a in fps:
        for b in fps:
            assert FP.matches(fps[a]["components"], fps[b]["components"])[0] is (a == b)


def test_one_changed_component_still_matches_a_new_board_does_not(tmp_path):
    root = tmp_path / "pi"
    shutil.copytree(DEVICES / "rpi4", root)
    licensed = FP.components(root)
    (root / "sys/class/net/wlan0/address").write_text("00:e0:4c:68:01:02\n")     # new USB adapter
    assert FP.matches(licensed, FP.components(root)) == (True, [k for k in licensed if k.startswith("mac:")
                                                               and k not in FP.components(root)])
    (root / "etc/machine-id").write_text("ffffffffffffffffffffffffffffffff\n")   # and the OS reinstalled
    assert FP.matches(licensed, FP.components(root))[0] is False
    board = tmp_path / "other"
    shutil.copytree(DEVICES / "rpi4", board)
    (board / "proc/cpuinfo").write_text((board / "proc/cpuinfo").read_text().replace("a3b4c5d6", "99887766"))
    assert FP.matches(licensed, FP.components(board))[0] is False              # SD card moved to another Pi
    empty = tmp_path / "empty"
    empty.mkdir()
    err(lambda: FP.components(empty), E.DEVICE_ID_EMPTY)


def test_serial_numbers_have_a_check_character():
    s = core.new_serial()
    assert len(s) == 19 and s.count("-") == 3 and core.normalize_serial(s.lower().replace("-", "")) == s
    typo = s[:5] + ("0" if s[5] != "0" else "1") + s[6:]
    err(lambda: core.normalize_serial(typo), E.LICENSE_KEY_INVALID)
    err(lambda: core.normalize_serial("  "), E.LICENSE_KEY_EMPTY)


# ---- activation flows ----------------------------------------------------------------------
def test_offline_activation_through_both_command_lines(tmp_path, vendor, capsys, monkeypatch):
    import edge.license as L
    from edge.cli import main as edge
    from edge.license.cli import main as edge_license

    serial = vendor.add_serials(1)[0]
    dev = device(tmp_path, vendor, "rk3399")
    monkeypatch.setattr(L, "FINGERPRINT_ROOT", str(dev.root))     # the Python API, never the config
    base = ["--json", "--home", str(dev.dir.parent), "license"]
    req = tmp_path / "req.json"
    assert edge(base + ["request", serial, "-o", str(req)]) == 0
    capsys.readouterr()
    lic = tmp_path / "license.json"
    assert edge_license(["--dir", str(vendor.pub.parent), "sign", str(req), "-o", str(lic)]) == 0
    capsys.readouterr()
    assert edge(base + ["import", str(lic)]) == 0
    assert json.loads(capsys.readouterr().out)["kind"] == "offline"
    assert edge(base + ["status"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["activated"] and st["serial"] == serial
    # the same file on another board is refused, with the seed's code on stdout
    other = device(tmp_path, vendor, "pc", home="pc")
    monkeypatch.setattr(L, "FINGERPRINT_ROOT", str(other.root))
    assert edge(["--json", "--home", str(other.dir.parent), "license", "import", str(lic)]) == 1
    assert json.loads(capsys.readouterr().out)["errno"] == E.LICENSE_ALREADY_USED


def test_batch_bundle_gives_each_device_its_own_license(tmp_path, vendor):
    devs = [device(tmp_path, vendor, d, home=d) for d in ("rpi4", "rk3399", "pc")]
    bundle = vendor.bundle([d.request() for d in devs])
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    serials = [d.import_file(path)["serial"] for d in devs]
    assert len(set(serials)) == 3 and all(d.status()["kind"] == "batch" for d in devs)
    stranger = device(tmp_path, vendor, "rpi4", home="stranger")
    (stranger.root / "proc/cpuinfo").write_text("Serial\t\t: 1000000011223344\n")
    (stranger.root / "sys/class/net/eth0/address").write_text("dc:a6:32:00:00:01\n")
    err(lambda: stranger.import_file(path), E.LICENSE_ALREADY_USED)


def test_reinstall_reactivates_with_the_same_serial(tmp_path, vendor):
    serial = vendor.add_serials(1, trial=True)[0]
    dev = device(tmp_path, vendor)
    first = dev.activate_online(serial, vendor.url)
    # OS reinstalled: EDGE_HOME gone, new machine-id, a week later
    shutil.rmtree(dev.dir)
    (dev.root / "etc/machine-id").write_text("00112233445566778899aabbccddeeff\n")
    vendor.clock.t += 7 * 86400
    dev = device(tmp_path, vendor)
    again = dev.activate_online(serial, vendor.url)
    assert again["activated"] == first["activated"] and again["expires"] == first["expires"]   # no new trial
    assert [s["activations"] for s in vendor.serials()] == [1]


# ---- refusals --------------------------------------------------------------------------------
def test_edited_payload_and_foreign_signature_are_refused(tmp_path, vendor):
    dev = device(tmp_path, vendor)
    dev.activate_online(vendor.add_serials(1)[0], vendor.url)
    doc = json.loads(dev.license_path.read_text())
    doc["payload"]["features"]["max_users"] = 10 ** 6
    dev.license_path.write_text(json.dumps(doc))
    e = err(dev.check, E.LICENSE_KEY_INVALID)
    assert "edited" in e.message
    # a license signed by somebody else's key, for this very device
    keygen(tmp_path / "pirate")
    pirate = Vendor(tmp_path / "pirate/v.db", tmp_path / "pirate/vendor.key", clock=vendor.clock)
    forged = pirate.activate(pirate.add_serials(1)[0], dev.fingerprint()["device_id"],
                             dev.fingerprint()["components"], "offline")
    err(lambda: dev.install(forged), E.LICENSE_KEY_INVALID)
    pirate.close()


def test_activated_device_keeps_working_when_one_part_changes(tmp_path, vendor):
    dev = device(tmp_path, vendor, "pc", home="pc")
    dev.activate_online(vendor.add_serials(1)[0], vendor.url)
    (dev.root / "sys/class/net/wlp2s0/address").write_text("00:e0:4c:11:22:33\n")   # Wi-Fi card swapped
    assert dev.check()["kind"] == "online"
    (dev.root / "sys/class/dmi/id/product_uuid").write_text("4c4c4544-0000-1111-2222-333344445555\n")
    err(dev.check, E.LICENSE_ALREADY_USED)                                          # and the mainboard too


def test_license_copied_to_another_device_is_refused(tmp_path, vendor):
    dev = device(tmp_path, vendor)
    dev.activate_online(vendor.add_serials(1)[0], vendor.url)
    other = device(tmp_path, vendor, "pc", home="pc")
    for f in ("license.json", "state.json"):
        shutil.copy(dev.dir / f, other.dir / f)
    e = err(other.check, E.LICENSE_ALREADY_USED)
    assert "another device" in e.message


def test_expired_trial_and_clock_set_back(tmp_path, vendor):
    clock = Clock()
    dev = device(tmp_path, vendor, clock=clock)
    dev.activate_online(vendor.add_serials(1, trial=True)[0], vendor.url)
    clock.t += 80 * 86400
    assert dev.check()["trial"] is True
    # fake-hwclock: booted 40 minutes behind the last-seen time, no network -> still works
    clock.t -= 40 * 60
    assert dev.check()
    # set back a day: not activated until the clock is right
    clock.t -= 86400
    err(dev.check, E.NOT_AUTHORIZED)
    clock.t += 86400 + 40 * 60
    assert dev.check()
    clock.t += 11 * 86400                  # 91 days after activation: a trial lasts 3 months
    e = err(dev.check, E.LICENSE_KEY_EXPIRE)
    assert "trial" in e.message
    # setting the clock back inside the tolerance does not bring the trial back
    clock.t -= 3600
    err(dev.check, E.LICENSE_KEY_EXPIRE)


def test_state_file_tampering_is_refused(tmp_path, vendor):
    dev = device(tmp_path, vendor)
    dev.activate_online(vendor.add_serials(1)[0], vendor.url)
    st = json.loads((dev.dir / "state.json").read_text())
    st["last_seen"] -= 10 * 86400
    (dev.dir / "state.json").write_text(json.dumps(st))
    err(dev.check, E.NOT_AUTHORIZED)
    (dev.dir / "state.json").unlink()
    err(dev.check, E.NOT_AUTHORIZED)


def test_revoked_serial(tmp_path, vendor):
    serial = vendor.add_serials(1)[0]
    dev = device(tmp_path, vendor)
    dev.activate_online(serial, vendor.url)
    vendor.revoke(serial)
    err(lambda: dev.activate_online(serial, vendor.url), E.LICENSE_KEY_INVALID)
    # an offline device learns it from a signed revocation list
    crl = tmp_path / "crl.json"
    crl.write_text(json.dumps(vendor.revocations()))
    assert dev.import_file(crl) == {"revoked_serials": 1}
    assert "revoked" in err(dev.check, E.LICENSE_KEY_INVALID).message


def test_activation_limits_and_clock_skew(tmp_path, vendor):
    one = vendor.add_serials(1)[0]
    device(tmp_path, vendor, "rpi4", home="a").activate_online(one, vendor.url)
    e = err(lambda: device(tmp_path, vendor, "pc", home="b").activate_online(one, vendor.url), E.LICENSE_ALREADY_USED)
    assert "another device" in e.message
    two = vendor.add_serials(1, max_activations=2)[0]
    device(tmp_path, vendor, "rpi4", home="a").activate_online(two, vendor.url)
    device(tmp_path, vendor, "rk3399", home="c").activate_online(two, vendor.url)
    e = err(lambda: device(tmp_path, vendor, "pc", home="b").activate_online(two, vendor.url), E.LICENSE_ALREADY_USED)
    assert "upper limit" in e.message
    three = vendor.add_serials(1)[0]
    late = device(tmp_path, vendor, "pc", home="b", clock=Clock(T0 - 20 * 60))   # 20 minutes slow
    assert "minutes off" in err(lambda: late.activate_online(three, vendor.url), E.NOT_AUTHORIZED).message
    err(lambda: late.activate_online("3G59-M5JK-889A-7LQA", vendor.url), E.LICENSE_KEY_INVALID)


def test_network_failures_name_the_offline_way(tmp_path, vendor):
    dev = device(tmp_path, vendor)
    serial = vendor.add_serials(1)[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    assert "offline" in err(lambda: dev.activate_online(serial, f"http://127.0.0.1:{closed}"), E.NETWORK_ERROR).message
    # a server that accepts the connection and never answers
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    held = []
    threading.Thread(target=lambda: held.append(silent.accept()), daemon=True).start()
    err(lambda: dev.activate_online(serial, f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5),
        E.NETWORK_TIMEOUT)
    silent.close()


def test_vendor_and_device_commands_as_processes(tmp_path):
    """The README's workflow: keygen, serials, `edge-license serve`, `edge license activate`."""
    import os
    import subprocess
    import sys

    vdir = tmp_path / "vendor"
    run = lambda *a, **kw: subprocess.run([sys.executable, "-m", *a], capture_output=True, text=True, timeout=60, **kw)
    assert run("edge.license.cli", "--dir", str(vdir), "keygen").returncode == 0
    out = run("edge.license.cli", "--dir", str(vdir), "serials", "add", "-n", "2", "--trial")
    serials = json.loads(out.stdout)["serials"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = subprocess.Popen([sys.executable, "-m", "edge.license.cli", "--dir", str(vdir), "serve", "--port", str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        home = tmp_path / "home"
        (home / "license").mkdir(parents=True)
        shutil.copy(vdir / "vendor.pub", home / "license" / "vendor.pub")
        conf = tmp_path / "d.toml"
        conf.write_text(f'[license]\nserver = "http://127.0.0.1:{port}"\n')
        env = dict(os.environ, EDGE_HOME=str(home))
        # the recorded device tree is injected through the Python API (no config key can move it)
        edge = lambda *a: subprocess.run(
            [sys.executable, "-c", "import sys, edge.license as L; from edge.cli import main; "
             f"L.FINGERPRINT_ROOT = {str(DEVICES / 'rpi4')!r}; sys.exit(main(sys.argv[1:]))",
             "--json", "--config", str(conf), "license", *a], capture_output=True, text=True, timeout=60, env=env)
        assert json.loads(edge("status").stdout)["errno"] == E.LICENSE_FILE_NOT_EXIST
        r = edge("activate", serials[0])
        assert r.returncode == 0, r.stdout + r.stderr
        st = json.loads(edge("status").stdout)
        assert st["activated"] and st["trial"] and st["serial"] == serials[0] and st["expires"]
        r = edge("activate", "not-a-serial")
        assert r.returncode == 1 and json.loads(r.stdout)["errno"] == E.LICENSE_KEY_INVALID
        listed = json.loads(run("edge.license.cli", "--dir", str(vdir), "serials", "list").stdout)["serials"]
        assert [s["activations"] for s in listed] == [1, 0]
    finally:
        srv.terminate()
        srv.wait(10)


def test_interrupted_write_leaves_the_license_usable(tmp_path, vendor):
    """A power cut during a write leaves a stray temporary file; the license and its clock
    record are each replaced whole (write, fsync, rename), never half-written."""
    dev = device(tmp_path, vendor)
    dev.activate_online(vendor.add_serials(1)[0], vendor.url)
    (dev.dir / ".state.json.4242.tmp").write_text('{"serial": "half')
    (dev.dir / ".license.json.4242.tmp").write_bytes(b"\x00" * 10)
    assert dev.check()["kind"] == "online"
