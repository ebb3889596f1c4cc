"""`edge bench library`'s running-loop figure: the person enrolled by another process is decided
by the loop. Since scores became calibrated false-accept rates, the default threshold 80 never
decided the bench's person (0 of 5 rounds, printed as null); it decides at the threshold its
one-user library calls for, as the pipeline bench does."""
from edge_tools import bench_library


def test_the_loop_decides_the_person_another_process_enrols(cfg):
    r = bench_library.live(cfg, rounds=1)
    assert r["enrolment_to_decision_ms"]["decided_rounds"] == 1, r
    assert r["threshold"] == 60.0           # 1 user, FPIR <= 1 %: the 1:1 FAR 1e-2 point
