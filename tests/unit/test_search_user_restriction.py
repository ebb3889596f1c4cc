"""1:N authentication (`edge identify --user ID`, the v3 search's user_id): an empty id is an
illegal id, not "no restriction". A script calling `edge identify door.jpg --user "$ID"` with ID
unset was answered with whoever the face matched, as a match."""
import numpy as np
import pytest

from edge import errors as E
from edge.library import FaceLibrary, FaceRecord

MODEL, DIM = "m@1", 8


def test_an_empty_user_restriction_is_refused_not_ignored(tmp_path):
    lib = FaceLibrary(tmp_path / "face.db", MODEL, DIM)
    rng = np.random.default_rng(3)
    alice = rng.standard_normal(DIM).astype(np.float32)
    lib.add_many([("alice", "staff", FaceRecord(alice, MODEL), None),
                  ("bob", "staff", FaceRecord(rng.standard_normal(DIM).astype(np.float32), MODEL), None)])
    probe = alice / np.linalg.norm(alice)
    assert [h["user_id"] for h in lib.search(probe, ["staff"], 1, "bob")] == ["bob"]   # restricted: bob only
    with pytest.raises(E.EdgeError) as e:
        lib.search(probe, ["staff"], 1, "")
    assert e.value.code == E.PARARM_ERROR and "user_id" in e.value.message
    lib.close()
