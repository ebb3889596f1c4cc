"""Event outputs without models or photos: webhook outbox order, a stuck output, Wiegand frames,
log rotation."""
import http.server
import json
import threading

import pytest

from edge import outputs as O
from edge import wiegand
from tests.helpers import Collector, free_port, wait_for


def test_webhook_delivers_in_order_once_the_target_comes_back(tmp_path):
    from edge.outputs.webhook import Webhook

    port = free_port()
    hook = Webhook(f"http://127.0.0.1:{port}/e", tmp_path / "q.db", timeout=1.0, retry_max=0.3, types=())
    d = O.Dispatcher([hook])
    for n in range(5):
        d.publish({"type": "decision", "n": n})
    assert wait_for(lambda: hook.pending() == 5 and hook.delivered == 0, 2)   # target down: all kept
    Collector.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert wait_for(lambda: hook.pending() == 0)
    finally:
        server.shutdown()
        d.close()
    assert [e["n"] for e in Collector.received] == [0, 1, 2, 3, 4]


def test_slow_output_never_blocks_the_loop():
    release = threading.Event()
    seen = []
    slow = O.Callback(lambda ev: (release.wait(30), seen.append(ev["n"])), name="slow")
    d = O.Dispatcher([slow], queue_size=5)
    for n in range(50):
        d.publish({"type": "decision", "n": n})   # returns at once although the output is stuck
    st = d.stats()["slow"]
    assert st["dropped"] >= 40 and st["queued"] <= 5
    release.set()
    d.close()
    assert seen[-1] == 49 and len(seen) <= 6   # the newest events survive, the oldest were dropped


@pytest.mark.parametrize("bits,facility,card", [(26, 0, 0), (26, 255, 65535), (34, 1234, 56789)])
def test_wiegand_frames_round_trip(bits, facility, card):
    fr = wiegand.encode(card, facility, bits)
    assert len(fr) == bits and wiegand.decode(fr) == (facility, card)
    bad = fr.copy()
    bad[5] ^= 1
    with pytest.raises(Exception, match="parity"):
        wiegand.decode(bad)
    with pytest.raises(Exception, match="does not fit"):
        wiegand.encode(1 << 16, facility, bits)


def test_event_log_rotates(tmp_path):
    log = O.JsonLines(tmp_path / "events.jsonl", max_mb=0.001, keep=2)     # ~1 KB per file
    for n in range(100):
        log.handle({"type": "decision", "n": n, "pad": "x" * 40})
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    newest = [json.loads(x)["n"] for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    older = [json.loads(x)["n"] for x in (tmp_path / "events.jsonl.1").read_text().splitlines()]
    assert older and newest and older[-1] + 1 == newest[0] and (newest or [0])[-1] == 99
