"""NIR and depth liveness on frames built from real photos. Every construction is synthetic and
named (edge_tools/liveness_data.py):

- synthetic NIR of a live face: the frame's red channel (skin reflects 850 nm much as red light),
  slightly softened, seen by the second camera: scaled 0.97 and shifted (+24, -9) px;
- synthetic NIR of a screen replay: the screen area dark and flat (LCDs emit no 850 nm);
- synthetic NIR glare: the illuminator mirrored by glass, a bright flat patch over the face;
- depth rendered from the FaceMesh points of a real photo (its own relief, or another real
  face's), 600 mm away, 1.5 mm noise; attacks: the photo as a sheet, flat and tilted, bent round
  a vertical axis, curved both ways; structured-light holes; a face out of range.
"""
import json

import cv2
import numpy as np
import pytest

from edge import errors as E
from edge import sources as S
from edge.detect import Detection
from edge.liveness import levels
from edge.liveness.calibrate import calibrate
from edge.liveness.depth import DepthLiveness, load_depth
from edge.liveness.nir import NirLiveness
from edge.pipeline import Pipeline
from edge_tools import liveness_data as D
from edge_tools.scenes import Actor, Scene
from tests.conftest import PUBLIC, frames

DX, DY, SCALE = 24.0, -9.0, 0.97
PEOPLE = ["obama/obama_2.jpg", "biden/biden_2.jpg", "rose_leslie/rose_leslie_2.jpg", "alex_lacamoire/alex_lacamoire_3.jpg"]


def scene(analyzer, photo, n=40):
    return Scene([Actor(PUBLIC / photo, 0, n, (260, 230), (360, 240), name="p")], n,
                 find_face=lambda img: analyzer.largest(img).box)


def nir_view(frame):
    return D.shift(D.nir_live(frame), DX, DY, SCALE)


@pytest.fixture
def lc(cfg):
    cfg.liveness.nir_offset, cfg.liveness.nir_scale = [DX, DY], SCALE
    return cfg.liveness


@pytest.mark.parametrize("photo", PEOPLE)
def test_nir_passes_live_faces_and_refuses_screens_glare_and_absent_faces(analyzer, lc, photo):
    nir = NirLiveness(lc, analyzer)
    normal = levels.THRESHOLDS["nir"]["NORMAL"]
    frame = scene(analyzer, photo).frame(20)
    face = analyzer.largest(frame)
    live = nir_view(frame)
    s, d = nir(frame, face, live)
    assert s >= levels.THRESHOLDS["nir"]["HIGH"] and d["iou"] > 0.6, d
    # a phone / monitor replay: no face at 850 nm where the calibration puts it
    screen = D.nir_screen(live, nir.expected_box(face.box))
    assert nir(frame, face, screen)[0] < normal
    # the illuminator mirrored by the screen glass: a bright flat patch
    glare = live.copy()
    x, y, w, h = (int(v) for v in nir.expected_box(face.box))
    glare[max(0, y - h // 2):y + 2 * h, max(0, x - w // 2):x + 2 * w] = 180
    assert nir(frame, face, glare)[0] < normal
    # the person is not in the NIR view (a photo shown to the RGB camera alone)
    empty = nir_view(Scene([], 1).frame(0))
    s, d = nir(frame, face, empty)
    assert s == 0.0 and "no face" in d["reason"]
    # no paired frame at all
    assert nir(frame, face, None)[0] == 0.0


def test_nir_in_the_loop_opens_for_the_live_face_and_refuses_the_replay(cfg, engine, lc, antispoof_models):
    """rgb+nir through the pipeline with a paired second camera (sources.Paired)."""
    engine.user_add(str(PUBLIC / "obama/obama_1.jpg"), "obama", "staff")
    cfg.liveness.mode = "rgb+nir"
    sc = scene(engine.analyzer, "obama/obama_2.jpg", 45)
    rgb_frames = list(sc)
    nir_frames = [nir_view(f) for f in rgb_frames]
    for replay, want in ((False, "decision"), (True, "spoof")):
        second = nir_frames
        if replay:
            boxes = [engine.analyzer.largest(f).box for f in rgb_frames]
            second = [D.nir_screen(n, [b[0] * SCALE + DX, b[1] * SCALE + DY, b[2] * SCALE, b[3] * SCALE])
                      for n, b in zip(nir_frames, boxes)]
        src = S.Paired(S.Replay(rgb_frames, fps=25), S.Replay(second, fps=25), 0.01)
        pipe = Pipeline(cfg, engine)
        ev = [e for fr in frames(src) for e in pipe.process(fr) if e["type"] != "prompt"]
        assert [e["type"] for e in ev] == [want], ev
        if want == "decision":
            assert ev[0]["user_id"] == "obama" and ev[0]["action"] == "open"
        else:
            assert ev[0]["liveness"]["nir"]["passed"] is False and ev[0]["liveness"]["rgb"]["passed"] is True


def test_calibrate_nir_recovers_the_offset(analyzer, tmp_path, capsys, monkeypatch):
    # the person walks across the view (a fit from one spot cannot tell scale from offset)
    sc = Scene([Actor(PUBLIC / "obama/obama_2.jpg", 0, 12, (130, 140), (510, 330), name="p")], 12,
               find_face=lambda img: analyzer.largest(img).box)
    pairs = [(f, nir_view(f)) for f in sc]
    r = calibrate(analyzer, pairs)
    assert r["frames_used"] == 12 and r["residual_px_median"] < 2.0
    assert r["nir_offset"] == pytest.approx([DX, DY], abs=1.5) and r["nir_scale"] == pytest.approx(SCALE, abs=0.01)
    with pytest.raises(E.EdgeError) as e:
        calibrate(analyzer, pairs[:3])
    assert e.value.code == E.DETECT_NO_FACE
    # the command, on two folders of frames
    for name, imgs in (("rgb", [p for p, _ in pairs]), ("nir", [q for _, q in pairs])):
        (tmp_path / name).mkdir()
        for i, img in enumerate(imgs):
            cv2.imwrite(str(tmp_path / name / f"{i:03d}.png"), img)
    from edge.cli import main

    monkeypatch.setenv("EDGE_MODELS_DIR", str(analyzer.cfg.models_path))
    assert main(["--json", "calibrate", "nir", "--rgb", str(tmp_path / "rgb"), "--nir", str(tmp_path / "nir")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["liveness"]["nir_offset"] == pytest.approx([DX, DY], abs=1.5)


def _mesh(analyzer, img, face):
    return analyzer.mesh(img, Detection(np.asarray(face.box, np.float64), face.score,
                                        np.asarray(face.landmarks5)[:2])).points


@pytest.mark.parametrize("photo,other", [(PEOPLE[0], PEOPLE[1]), (PEOPLE[2], PEOPLE[3])])
def test_depth_passes_a_face_relief_and_refuses_sheets_holes_and_range(analyzer, lc, photo, other):
    depth = DepthLiveness(lc, analyzer)
    normal = levels.THRESHOLDS["depth"]["NORMAL"]
    frame = scene(analyzer, photo).frame(20)
    face = analyzer.largest(frame)
    size = (frame.shape[1], frame.shape[0])
    points = _mesh(analyzer, frame, face)
    other_img = cv2.imread(str(PUBLIC / other))
    other_points = _mesh(analyzer, other_img, analyzer.largest(other_img))
    live = {"own relief": D.depth_of_face(points, size),
            "another real face's relief": D.depth_of_face(points, size, z_from=other_points),
            "30 % holes": D.holes(D.depth_of_face(points, size), 0.3)}
    for what, d in live.items():
        s, det = depth(frame, face, d)
        assert s >= levels.THRESHOLDS["depth"]["HIGH"], (what, det)
    attacks = {"flat, tilted": D.depth_of_sheet(face.box, size),
               "flat, square on": D.depth_of_sheet(face.box, size, tilt=(0, 0)),
               "bent round a vertical axis": D.depth_of_sheet(face.box, size, bend="bent"),
               "curved both ways": D.depth_of_sheet(face.box, size, bend="bowl", radius_mm=150),
               "85 % holes": D.holes(D.depth_of_face(points, size), 0.85),
               "out of range (5 m)": D.depth_of_face(points, size, distance_mm=5000)}
    for what, d in attacks.items():
        s, det = depth(frame, face, d)
        assert s < normal, (what, det)
    # an 8-bit frame is not depth
    assert depth(frame, face, (live["own relief"] >> 8).astype(np.uint8))[0] == 0.0


def test_depth_files_must_be_16_bit(tmp_path):
    d = (np.arange(100 * 120, dtype=np.uint32).reshape(100, 120) % 4000).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), d)
    assert np.array_equal(load_depth(tmp_path / "d.png"), d)
    cv2.imwrite(str(tmp_path / "e.png"), (d >> 8).astype(np.uint8))
    for bad in ("e.png", "missing.png"):
        with pytest.raises(E.EdgeError):
            load_depth(tmp_path / bad)
