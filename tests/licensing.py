"""A vendor (keys, serials, its activation server on loopback) and devices made from recorded
hardware trees, for the licensing tests of both tiers."""
import shutil
import time
from pathlib import Path

import pytest

from edge import errors as E
from edge.license.device import Licensing
from edge.license.server import serve_in_thread
from edge.license.vendor import Vendor, keygen

DEVICES = Path(__file__).parent / "fixtures" / "devices"
T0 = time.time()              # "now" for the vendor and device clocks the tests move


class Clock:
    def __init__(self, t=T0):
        self.t = t

    def __call__(self):
        return self.t


def err(fn, code):
    with pytest.raises(E.EdgeError) as e:
        fn()
    assert e.value.code == code, e.value
    assert len(e.value.message) > 30          # a sentence saying what to do
    return e.value


@pytest.fixture
def vendor(tmp_path):
    d = tmp_path / "vendor"
    keygen(d)
    clock = Clock()
    v = Vendor(d / "vendor.db", d / "vendor.key", clock=clock)
    srv = serve_in_thread(v)
    v.url = f"http://127.0.0.1:{srv.server_address[1]}"
    v.pub = d / "vendor.pub"
    yield v
    srv.shutdown()
    v.close()


def device(tmp_path, vendor, name="rpi4", home="home", clock=None):
    """A device: its own EDGE_HOME with the vendor key installed, and a copy of a recorded tree."""
    root = tmp_path / f"{home}-root"
    if not root.exists():
        shutil.copytree(DEVICES / name, root)
    h = tmp_path / home
    (h / "license").mkdir(parents=True, exist_ok=True)
    shutil.copy(vendor.pub, h / "license" / "vendor.pub")
    return Licensing(h, h / "license" / "vendor.pub", root, clock or vendor.clock)
