"""A user with several faces is scored by their mean template (README "Several photos per user",
measured with `edge eval multiphoto`); a user with one face as before."""
import numpy as np
import pytest

from edge.library import FaceRecord

MODEL, DIM = "m@1", 8


def unit(v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def test_two_faces_around_the_query_beat_one_closer_face(lib):
    q = unit(np.eye(DIM)[0])
    # alice's two photos sit either side of the query (cosine 0.8 each); their mean is the query
    a1, a2 = unit([0.8, 0.6, 0, 0, 0, 0, 0, 0]), unit([0.8, -0.6, 0, 0, 0, 0, 0, 0])
    bob = unit([0.9, 0, np.sqrt(1 - 0.81), 0, 0, 0, 0, 0])              # one photo, cosine 0.9
    lib.user_add("alice", "g", FaceRecord(a1 * 1.4, MODEL))              # raw templates need not be unit
    lib.user_add("alice", "g", FaceRecord(a2 * 1.4, MODEL))
    lib.user_add("bob", "g", FaceRecord(bob, MODEL))
    hits = lib.search(q, ["g"], top_k=2)
    assert [h["user_id"] for h in hits] == ["alice", "bob"]
    assert hits[0]["cosine"] == pytest.approx(1.0, abs=1e-5)            # the mean template's cosine
    assert hits[1]["cosine"] == pytest.approx(0.9, abs=1e-5)            # a single face: as before
    # restricted to one user, and top_k = 1, the same scores
    assert lib.search(q, top_k=1, user_id="bob")[0]["cosine"] == pytest.approx(0.9, abs=1e-5)
    assert lib.search(q, top_k=1)[0]["user_id"] == "alice"


def test_the_face_token_is_still_the_closest_face(lib):
    q = unit(np.eye(DIM)[0])
    t_far = lib.user_add("carol", "g", FaceRecord(unit([0.5, 0.86, 0, 0, 0, 0, 0, 0]), MODEL))
    t_near = lib.user_add("carol", "g", FaceRecord(unit([0.95, -0.3, 0, 0, 0, 0, 0, 0]), MODEL))
    hit = lib.search(q, ["g"])[0]
    assert hit["face_token"] == t_near != t_far
