"""Wiegand 26 / 34 frames, as door controllers and access panels read them.

Wiegand 26: even parity over bits 2-13, 8-bit facility code, 16-bit card number, odd parity over
bits 14-25. Wiegand 34: the same with a 16-bit facility code and 16-bit card number (32 data bits),
parity over 16 bits each. On the wire, DATA0 pulses low for a 0 and DATA1 for a 1; both idle high.
"""
from __future__ import annotations

import time

from . import errors as E


def _split(bits: int) -> tuple[int, int]:
    if bits == 26:
        return 8, 16
    if bits == 34:
        return 16, 16
    raise E.EdgeError(E.PARARM_ERROR, f"Wiegand {bits} is not supported: use 26 or 34")


def encode(card: int, facility: int = 0, bits: int = 26) -> list[int]:
    fac_bits, card_bits = _split(bits)
    if not 0 <= facility < (1 << fac_bits):
        raise E.EdgeError(E.PARARM_ERROR, f"facility code {facility} does not fit Wiegand {bits}")
    if not 0 <= card < (1 << card_bits):
        raise E.EdgeError(E.PARARM_ERROR, f"card number {card} does not fit Wiegand {bits} (0-{(1 << card_bits) - 1})")
    value = (facility << card_bits) | card
    data = [(value >> i) & 1 for i in reversed(range(fac_bits + card_bits))]
    half = len(data) // 2
    even = sum(data[:half]) % 2               # makes the first half + parity even
    odd = 1 - sum(data[half:]) % 2            # makes the second half + parity odd
    return [even] + data + [odd]


def decode(frame: list[int]) -> tuple[int, int]:
    """(facility, card) from a received frame; raises on a wrong length or parity."""
    n = len(frame)
    fac_bits, card_bits = _split(n)
    data = frame[1:-1]
    half = len(data) // 2
    if (frame[0] + sum(data[:half])) % 2 != 0 or (frame[-1] + sum(data[half:])) % 2 != 1:
        raise E.EdgeError(E.PARARM_ERROR, f"Wiegand {n} parity error")
    value = 0
    for b in data:
        value = (value << 1) | b
    return value >> card_bits, value & ((1 << card_bits) - 1)


class WiegandWriter:
    """Drives two open-collector lines (gpiozero DigitalOutputDevice, idle high)."""

    def __init__(self, d0, d1, pulse_us: int = 100, interval_us: int = 2000):
        self.d0, self.d1 = d0, d1
        self.pulse, self.interval = pulse_us / 1e6, interval_us / 1e6
        d0.on(), d1.on()

    def send(self, frame: list[int]) -> None:
        for b in frame:
            line = self.d1 if b else self.d0
            t0 = time.perf_counter()
            line.off()
            _wait_until(t0 + self.pulse)
            line.on()
            _wait_until(t0 + self.interval)


def _wait_until(t: float) -> None:
    # sleep() overshoots by ~0.1 ms; spin for the last stretch so pulse widths stay in spec
    while True:
        left = t - time.perf_counter()
        if left <= 0:
            return
        if left > 0.0005:
            time.sleep(left - 0.0004)


class WiegandReader:
    """Software decoder: collects falling edges on DATA0 / DATA1 (gpiozero input devices) and
    closes a frame after ``gap`` seconds of silence, as a controller does."""

    def __init__(self, d0_in, d1_in, gap: float = 0.025):
        self.inputs = (d0_in, d1_in)   # held: a collected gpiozero device drops its callbacks
        self.bits: list[int] = []
        self.frames: list[list[int]] = []
        self.gap = gap
        self._last = 0.0
        d0_in.when_deactivated = lambda: self._bit(0)
        d1_in.when_deactivated = lambda: self._bit(1)

    def _bit(self, b: int):
        now = time.perf_counter()
        if self.bits and now - self._last > self.gap:
            self.frames.append(self.bits)
            self.bits = []
        self.bits.append(b)
        self._last = now

    def flush(self) -> list[list[int]]:
        if self.bits:
            self.frames.append(self.bits)
            self.bits = []
        out, self.frames = self.frames, []
        return out
