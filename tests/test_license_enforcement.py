"""Licensing as the recognition engine and the camera loop enforce it (needs the model pack)."""
from edge import config as C
from edge import errors as E
from tests.licensing import device, err, vendor  # noqa: F401  (vendor is a fixture)


def test_online_activation_end_to_end_and_enforcement(tmp_path, vendor, models_dir, monkeypatch):
    import edge.license as L

    serial = vendor.add_serials(1, {"max_users": 5000, "modes": ["gate"]})[0]
    dev = device(tmp_path, vendor)
    cfg = C.load(home=dev.dir.parent, models_dir=models_dir)
    monkeypatch.setattr(L, "FINGERPRINT_ROOT", str(dev.root))
    from edge.engine import FaceEngine
    err(lambda: FaceEngine(cfg), E.LICENSE_FILE_NOT_EXIST)     # vendor key installed, not activated
    p = dev.activate_online(serial, vendor.url)
    assert p["serial"] == serial and p["kind"] == "online" and p["expires"] is None
    assert dev.status()["activated"] is True
    eng = FaceEngine(cfg)                                         # recognition runs now ...
    assert cfg.library.max_users == 5000                          # ... within the licensed size
    from edge.pipeline import Pipeline
    Pipeline(cfg, eng)                                            # the gate mode is licensed
    cfg.decision.mode = "attendance"
    err(lambda: Pipeline(cfg, eng), E.NOT_AUTHORIZED)             # attendance is not
    eng.close()
    # the license survives a restart with no network (new process = new Licensing, server gone)
    assert device(tmp_path, vendor).check()["serial"] == serial
