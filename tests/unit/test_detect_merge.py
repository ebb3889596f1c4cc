"""Merging the detections of two passes over the same still image."""
import numpy as np

from edge.detect import Detection, suppress


def det(x, y, s, score):
    return Detection(np.array([x, y, s, s], float), score, np.zeros((6, 2)))


def test_one_detection_per_face_the_most_confident_kept():
    a, b = det(100, 100, 80, 0.7), det(104, 98, 84, 0.9)     # the same face from both passes
    c = det(300, 90, 60, 0.6)                                # another face
    kept = suppress([a, c, b], 0.3)
    assert [k.score for k in kept] == [0.9, 0.6]


def test_faces_that_barely_overlap_are_both_kept():
    a, b = det(0, 0, 100, 0.8), det(90, 0, 100, 0.8)         # IoU 0.05
    assert len(suppress([a, b], 0.3)) == 2
    assert suppress([], 0.3) == []
