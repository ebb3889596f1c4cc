"""Licence bypasses of issue 8 item 5, each refused: a config or EDGE_HOME cannot swap the vendor
key or borrow another device's identifiers; an expiry once seen stays seen; re-importing a
license never moves the clock record back; a newly issued license is how a device recovers."""
import json
import shutil

import pytest

import edge.license as L
from edge import config as C
from edge import errors as E
from edge.license.vendor import Vendor, keygen
from tests.licensing import DEVICES, Clock, device, err, vendor  # noqa: F401  (vendor: fixture)


@pytest.fixture
def installed(tmp_path, vendor, monkeypatch):
    """A device whose vendor key was installed in the system location (as deploy/install.sh does),
    reading its fingerprint from a recorded Raspberry Pi tree."""
    system = tmp_path / "etc-edge" / "vendor.pub"
    system.parent.mkdir()
    shutil.copy(vendor.pub, system)
    monkeypatch.setattr(L, "SYSTEM_KEY", system)
    root = tmp_path / "pi-root"
    shutil.copytree(DEVICES / "rpi4", root)
    monkeypatch.setattr(L, "FINGERPRINT_ROOT", str(root))
    return root


def test_no_config_key_can_replace_the_key_or_move_the_root(tmp_path, vendor, installed):
    conf = tmp_path / "c.toml"
    for text in (f'[license]\nroot = "{DEVICES / "pc"}"\n', f'[license]\npublic_key = "{tmp_path}/mine.pub"\n'):
        conf.write_text(text)
        assert "no longer accepted" in err(lambda: C.load(conf), E.PARARM_ERROR).message


def test_edge_home_cannot_bring_its_own_key_or_switch_licensing_off(tmp_path, vendor, installed):
    # the attacker's own key pair and a license it signed for this very device, in a home it controls
    keygen(tmp_path / "pirate")
    pirate = Vendor(tmp_path / "pirate/v.db", tmp_path / "pirate/vendor.key", clock=vendor.clock)
    fp = L.licensing(C.load(home=tmp_path / "any")).fingerprint()
    forged = pirate.activate(pirate.add_serials(1)[0], fp["device_id"], fp["components"], "offline")
    pirate.close()
    home = tmp_path / "attacker-home"
    (home / "license").mkdir(parents=True)
    shutil.copy(tmp_path / "pirate/vendor.pub", home / "license" / "vendor.pub")
    (home / "license" / "license.json").write_text(json.dumps(forged))
    cfg = C.load(home=home)
    assert L.key_path(cfg) == L.SYSTEM_KEY
    err(lambda: L.require(cfg), E.LICENSE_KEY_INVALID)                        # signed by the wrong key
    err(lambda: L.licensing(cfg).install(forged), E.LICENSE_KEY_INVALID)
    # a home with no key at all does not turn licensing off
    err(lambda: L.require(C.load(home=tmp_path / "empty-home")), E.LICENSE_FILE_NOT_EXIST)
    # a real license of another device, with a copy of that device's identifiers, does not work here
    other = device(tmp_path, vendor, "pc", home="pc")
    other.activate_online(vendor.add_serials(1)[0], vendor.url)
    cfg = C.load(home=other.dir.parent)
    err(lambda: L.require(cfg), E.LICENSE_ALREADY_USED)


def test_an_expiry_once_seen_stays_seen(tmp_path, vendor):
    clock = Clock()
    dev = device(tmp_path, vendor, clock=clock)
    dev.activate_online(vendor.add_serials(1, trial=True)[0], vendor.url)
    lic = tmp_path / "lic.json"
    shutil.copy(dev.license_path, lic)
    clock.t += 60 * 86400
    assert dev.check()["trial"]                                  # seen valid on day 60
    clock.t += 35 * 86400                                        # day 95: expired
    err(dev.check, E.LICENSE_KEY_EXPIRE)
    clock.t -= 5 * 86400                                         # clock set back to day 90: before, valid again
    err(dev.check, E.NOT_AUTHORIZED)
    clock.t += 5 * 86400 - 3600                                  # within the 2 h tolerance: still expired
    err(dev.check, E.LICENSE_KEY_EXPIRE)
    clock.t -= 5 * 86400
    err(lambda: dev.import_file(lic), E.NOT_AUTHORIZED)          # re-importing does not bring it back
    err(dev.check, E.NOT_AUTHORIZED)


def test_reimporting_never_moves_the_record_back(tmp_path, vendor):
    clock = Clock()
    dev = device(tmp_path, vendor, clock=clock)
    dev.activate_online(vendor.add_serials(1)[0], vendor.url)
    lic = tmp_path / "lic.json"
    shutil.copy(dev.license_path, lic)
    clock.t += 10 * 86400
    dev.check()
    seen = json.loads((dev.dir / "state.json").read_text())["last_seen"]
    clock.t -= 5 * 86400
    err(dev.check, E.NOT_AUTHORIZED)
    err(lambda: dev.import_file(lic), E.NOT_AUTHORIZED)          # before: the import reset the record
    assert json.loads((dev.dir / "state.json").read_text())["last_seen"] == seen
    clock.t += 5 * 86400
    assert dev.check()


def test_a_clock_once_far_ahead_recovers_with_a_newly_issued_license(tmp_path, vendor):
    clock = Clock()
    dev = device(tmp_path, vendor, clock=clock)
    serial = vendor.add_serials(1)[0]
    dev.activate_online(serial, vendor.url)
    old = tmp_path / "old.json"
    shutil.copy(dev.license_path, old)
    clock.t += 5 * 365 * 86400                                   # the RTC jumped five years ahead ...
    dev.check()
    clock.t -= 5 * 365 * 86400 - 86400                           # ... and was corrected: a day after activation
    err(dev.check, E.NOT_AUTHORIZED)
    err(lambda: dev.import_file(old), E.NOT_AUTHORIZED)          # the old license does not reset it
    vendor.clock.t = clock.t                                     # the vendor signs anew (same serial, same terms)
    p = dev.activate_online(serial, vendor.url)
    assert p["serial"] == serial and dev.check()
    assert json.loads((dev.dir / "state.json").read_text())["last_seen"] == pytest.approx(clock.t)
