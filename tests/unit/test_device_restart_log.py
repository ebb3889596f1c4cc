"""`edge serve --camera` with a camera loop that cannot start (no model pack here; on a device a
missing camera or a config typo) restarts it every few seconds and says why, once, not on every
restart (17,280 identical journal lines a day at the 5 s restart)."""
import logging
import time

from edge import config as C
from edge.api import device as D
from edge.api.app import create_app


def test_the_same_failure_is_logged_once_per_minute(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(D, "RESTART_AFTER", 0.01)
    cfg = C.load(home=tmp_path / "home", models_dir=tmp_path / "no-models")
    dev = create_app(cfg).state.edge.device
    with caplog.at_level(logging.WARNING, logger="edge.serve"):
        dev.start_camera("/no/such/folder")
        time.sleep(0.6)
        dev.stop()
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("camera loop:")]
    assert dev.camera_error and "edge models build" in dev.camera_error     # the page shows why
    assert len(said) == 1 and "edge models build" in said[0], said
