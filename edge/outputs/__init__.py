"""Event outputs. Each runs on its own thread behind a bounded queue, so a slow or dead output
never blocks the camera loop; a full queue drops its oldest event and counts it (the webhook
keeps its own on-disk queue and drops nothing).
"""
from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from pathlib import Path

from ..files import private_dir, private_file

log = logging.getLogger("edge.outputs")


class Sink:
    name = "sink"
    types: tuple[str, ...] = ()      # empty = every event type

    def wants(self, event: dict) -> bool:
        return not self.types or event["type"] in self.types

    def accept(self, event: dict) -> None:
        """Called on the loop thread: must be quick (the webhook persists here)."""

    def handle(self, event: dict) -> None:
        """Called on the output's own thread."""
        raise NotImplementedError

    def close(self) -> None: ...


class _Worker:
    def __init__(self, sink: Sink, size: int):
        self.sink = sink
        self.q: queue.Queue = queue.Queue(size)
        self.dropped = 0
        self.failed = 0
        self.t = threading.Thread(target=self._run, name=f"out-{sink.name}", daemon=True)
        self.t.start()

    def put(self, event: dict):
        while True:
            try:
                self.q.put_nowait(event)
                return
            except queue.Full:
                try:
                    self.q.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _run(self):
        while True:
            ev = self.q.get()
            if ev is None:
                return
            try:
                self.sink.handle(ev)
            except Exception as e:  # an output failing must not take the others down
                self.failed += 1
                log.warning("output %s failed: %s", self.sink.name, e)


class Dispatcher:
    def __init__(self, sinks: list[Sink], queue_size: int = 1000):
        self.sinks = sinks
        self._workers = [_Worker(s, queue_size) for s in sinks]

    def add(self, sink: Sink, queue_size: int = 1000) -> None:
        """One more output after construction (the device service adds its live subscribers)."""
        self.sinks.append(sink)
        self._workers.append(_Worker(sink, queue_size))

    def publish(self, event: dict) -> None:
        for w in self._workers:
            if w.sink.wants(event):
                try:
                    w.sink.accept(event)
                except Exception as e:
                    log.warning("output %s refused an event: %s", w.sink.name, e)
                    continue
                w.put(event)

    def stats(self) -> dict:
        return {w.sink.name: {"queued": w.q.qsize(), "dropped": w.dropped, "failed": w.failed}
                for w in self._workers}

    def drain(self, timeout: float = 5.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and any(not w.q.empty() for w in self._workers):
            time.sleep(0.01)

    def close(self, timeout: float = 5.0) -> None:
        self.drain(timeout)
        for w in self._workers:
            w.q.put(None)
        for w in self._workers:
            w.t.join(timeout=timeout)
            w.sink.close()


class JsonLines(Sink):
    """One JSON object per line; flushed per event, fsynced at most once a second, rotated to
    ``<file>.1`` .. ``<file>.<keep>`` past ``max_mb``."""
    name = "jsonl"

    def __init__(self, path: Path, types=(), max_mb: float = 64.0, keep: int = 5):
        self.path = Path(path)
        self.types = tuple(types)
        self.max_bytes, self.keep = int(max_mb * 2**20), keep
        private_dir(self.path.parent, tighten=False)      # the path may be any directory
        self._f = open(private_file(self.path), "a", encoding="utf-8")   # events name people
        self._synced = 0.0

    def handle(self, event):
        self._f.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._f.flush()
        if time.monotonic() - self._synced > 1.0:
            os.fsync(self._f.fileno())
            self._synced = time.monotonic()
        if self._f.tell() > self.max_bytes:
            self._rotate()

    def _rotate(self):
        os.fsync(self._f.fileno())
        self._f.close()
        for i in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        if self.keep:
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        else:
            self.path.unlink()
        self._f = open(private_file(self.path), "a", encoding="utf-8")

    def close(self):
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()


class Callback(Sink):
    """Hands events to a Python callable (embedding edge in an application, tests)."""

    def __init__(self, fn, types=(), name="callback"):
        self.fn, self.types, self.name = fn, tuple(types), name

    def handle(self, event):
        self.fn(event)


def build(cfg, pin_factory=None) -> Dispatcher:
    """Outputs from the configuration; GPIO outputs use ``pin_factory`` (gpiozero) if given."""
    oc = cfg.outputs
    sinks: list[Sink] = []
    if oc.jsonl.path:
        p = Path(oc.jsonl.path)
        sinks.append(JsonLines(p if p.is_absolute() else cfg.home / p, oc.jsonl.types, oc.jsonl.max_mb, oc.jsonl.keep))
    if oc.webhook.url:
        from .webhook import Webhook
        sinks.append(Webhook(oc.webhook.url, cfg.home / "queue" / "webhook.db", oc.webhook.timeout,
                             oc.webhook.retry_max, oc.webhook.types))
    if oc.mqtt.host:
        from .mqtt import Mqtt
        sinks.append(Mqtt(oc.mqtt.host, oc.mqtt.port, oc.mqtt.topic, oc.mqtt.qos, oc.mqtt.client_id, oc.mqtt.types))
    if oc.relay.pin or oc.wiegand.d0:
        from . import gpio
        factory = pin_factory or gpio.factory(oc.gpio_mock)
        if oc.relay.pin:
            sinks.append(gpio.Relay(oc.relay.pin, oc.relay.active_high, oc.relay.pulse_ms, factory))
        if oc.wiegand.d0:
            w = oc.wiegand
            sinks.append(gpio.Wiegand(w.d0, w.d1, w.bits, w.facility, w.pulse_us, w.interval_us, factory))
    return Dispatcher(sinks, oc.queue)
