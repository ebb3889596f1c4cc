"""Attendance when the device clock is set back (no RTC and no network, or by hand): a sighting
that lands in an earlier window must not pull that window's check-out back."""
import datetime as dt

from edge.attendance import Attendance
from edge.config import AttendanceConfig


def test_a_clock_set_back_never_moves_a_check_out_earlier(tmp_path):
    att = Attendance(tmp_path / "attendance.db", AttendanceConfig())
    day = dt.datetime(2026, 3, 2, 9, 0).timestamp()
    assert att.record("alice", day, 90.0) == "check_in"                    # 09:00
    assert att.record("alice", day + 9 * 3600, 91.0) == "check_out"        # 18:00
    # the next morning the clock is set back to 12:00 of the day before: before, the check-out
    # became 12:00 and the 18:00 record was lost
    assert att.record("alice", day + 3 * 3600, 92.0) is None
    row = att.rows()[0]
    assert row["check_in"].endswith("09:00:00") and row["check_out"].endswith("18:00:00")
    assert row["check_out_score"] == 91.0
    assert att.record("alice", day + 10 * 3600, 93.0) == "check_out"       # later still: moves forward
    assert att.rows()[0]["check_out"].endswith("19:00:00")
    att.close()
