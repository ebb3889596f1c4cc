"""`edge run` on a replay that ends: its summary says the source ended, not that a camera is
being reconnected."""
import shutil

from edge import sources as S
from edge.runner import Runner
from tests.conftest import PUBLIC


def test_a_replay_that_ends_is_reported_as_ended(cfg, engine, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(6):
        shutil.copy(PUBLIC / "obama/obama_5_480p.jpg", frames / f"f{i}.jpg")
    engine.user_add(str(PUBLIC / "obama/obama_1.jpg"), "obama", "staff")
    cfg.decision.groups = ["staff"]
    summary = Runner(cfg, engine, S.from_uri(str(frames), fps=25, paced=True), on_status=lambda st: None).run(seconds=60)
    assert summary["frames"] == 6 and summary["camera"] == "ended", summary      # before: "reconnecting"
    assert "camera_error" not in summary
