"""Recognition on real faces: the public fixtures and LFW (lfw-dev)."""
import itertools

import pytest

from edge import errors as E
from edge_tools import evaluate as ev
from edge import image as I
from tests.conftest import IDENTITIES, LFW, PUBLIC, photos
from tests.helpers import SMALL_LIBRARY_THRESHOLD

MULTI = {"two_people.jpg": {"biden", "obama"}, "obama_and_biden.jpg": {"obama", "biden"},
         "kit_with_rose.jpg": {"kit_harington", "rose_leslie"}}


@pytest.fixture
def enrolled(engine):
    for ident in IDENTITIES:
        engine.user_add(str(photos(ident)[0]), ident, "staff")
    return engine


def test_every_other_photo_is_identified_top1(enrolled):
    checked = 0
    for ident in IDENTITIES:
        for f in photos(ident)[1:]:
            r = enrolled.identify(str(f), ["staff"], top_k=3, threshold=SMALL_LIBRARY_THRESHOLD)
            assert r["user_id"] == ident, (f.name, r["user_list"])
            assert r["user_list"][0]["score"] >= SMALL_LIBRARY_THRESHOLD
            checked += 1
    assert checked == 9


def test_every_known_face_in_multi_photos_is_identified(enrolled):
    an = enrolled.analyzer
    for name, people in MULTI.items():
        img = I.load(PUBLIC / "multi" / name)
        found = set()
        for face in an.detect(img):
            r = enrolled.identify_template(an.template(img, face).unit, ["staff"])
            if r["match"]:
                found.add(r["user_id"])
        assert found == people, (name, found)


def test_same_and_different_identity_scores_are_far_apart(analyzer):
    """Calibrated scores (README): every different-identity pair of the public photos stays under
    the FAR-1e-2 point (60; highest 53.8), every same-identity pair over 65 (lowest 70.2: the
    blurred video still alex_lacamoire_1 against his photos; the rest score 90 and more)."""
    tpl = {}
    for ident in IDENTITIES:
        for f in photos(ident):
            img = I.load(f)
            tpl[f.name] = (ident, analyzer.template(img, analyzer.largest(img)).unit)
    worst = 0.0
    for (a, (ia, ua)), (b, (ib, ub)) in itertools.combinations(tpl.items(), 2):
        s = analyzer.embedder.score(float(ua @ ub))
        if ia != ib:
            worst = max(worst, s)
            assert s < 60, (a, b, s)
        else:
            assert s >= 65, (a, b, s)
    print(f"highest different-identity score {worst:.2f}")


def test_compare_scores_and_threshold(engine):
    same = engine.compare(str(photos("obama")[0]), str(photos("obama")[1]))
    diff = engine.compare(str(photos("obama")[0]), str(photos("biden")[0]))
    assert same["match"] and same["score"] >= 80 and same["threshold"] == 80
    assert not diff["match"] and diff["score"] < 80
    assert same["euclidean"] < 0.6 < diff["euclidean"]  # dlib's documented same-person point


def test_identify_unknown_face_is_not_matched(enrolled):
    enrolled.library.user_delete("obama", "staff")
    r = enrolled.identify(str(photos("obama")[1]), ["staff"])
    assert r["match"] is False and r["user_id"] is None
    assert r["user_list"][0]["user_id"] != "obama"


def test_no_face_gives_detect_no_face(engine, tmp_path):
    import cv2

    img = I.load(photos("obama")[0])
    corner = img[:120, :120]  # real photo background without a face
    p = tmp_path / "wall.png"
    cv2.imwrite(str(p), corner)
    with pytest.raises(E.EdgeError) as e:
        engine.identify(str(p))
    assert e.value.code == E.DETECT_NO_FACE == -1012 and e.value.http_code == 222202


# What we measured on lfw-dev (README): rank-1 97.57 % (96.52 % before the still-image second
# detector pass and the central-face choice); the score is calibrated on these very pairs so that
# 80 = FAR 1e-4 (37 of 373,974 impostor pairs). dlib's own pipeline (HOG + 5-point + dlib chip,
# = face_recognition's) measured 96.01 % on the same split.
LFW_RANK1_MIN = 0.975
LFW_FAR_MAX = 1e-4


def test_lfw_rank1_and_false_accept_rate(analyzer):
    t = ev.embed_all(analyzer, ev.identities(LFW), quiet=True)
    r = ev.one_to_n(t, analyzer.embedder.score, 80.0)
    print({k: v for k, v in r.items() if k not in ("rank1_errors", "no_face_files")})
    assert r["people"] == 158 and r["probes"] == 2383
    assert r["no_face"] <= 1
    assert r["rank1"] >= LFW_RANK1_MIN
    assert r["far"] <= LFW_FAR_MAX
