"""GPIO outputs through gpiozero (optional dependency): a door relay pulsed on "open"
decisions, and Wiegand 26/34 of the user's card number on two lines.

The card number is the ``card`` field of the user's ``user_info`` JSON, e.g.
``edge user add photo.jpg --user alice --group staff --info '{"card": 12345}'``.
"""
from __future__ import annotations

import json
import logging

from .. import errors as E
from .. import wiegand
from . import Sink

log = logging.getLogger("edge.outputs.gpio")


def factory(mock: bool):
    import importlib.util

    if importlib.util.find_spec("gpiozero") is None:
        raise E.EdgeError(E.PARARM_ERROR, "GPIO outputs need gpiozero: pip install 'edge-face[io]'")
    if mock:
        from gpiozero.pins.mock import MockFactory
        return MockFactory()
    return None   # gpiozero's default for the board


def _opens(event) -> bool:
    return event["type"] == "decision" and event.get("action") == "open"


class Relay(Sink):
    name = "relay"
    types = ("decision",)

    def __init__(self, pin: str, active_high: bool, pulse_ms: int, pin_factory=None):
        from gpiozero import DigitalOutputDevice
        self.dev = DigitalOutputDevice(pin, active_high=active_high, initial_value=False, pin_factory=pin_factory)
        self.pulse = pulse_ms / 1000.0

    def handle(self, event):
        if _opens(event):
            self.dev.blink(on_time=self.pulse, off_time=0, n=1, background=True)

    def close(self):
        self.dev.close()


def card_number(user_info: str | None) -> int | None:
    try:
        info = json.loads(user_info or "")
    except ValueError:
        return None
    card = info.get("card") if isinstance(info, dict) else None
    return card if isinstance(card, int) and not isinstance(card, bool) else None


class Wiegand(Sink):
    name = "wiegand"
    types = ("decision",)

    def __init__(self, d0: str, d1: str, bits: int = 26, facility: int = 0, pulse_us: int = 100,
                 interval_us: int = 2000, pin_factory=None):
        from gpiozero import DigitalOutputDevice
        # open-collector lines idle high: "on" = released (high), "off" = pulled low
        self.d0 = DigitalOutputDevice(d0, initial_value=True, pin_factory=pin_factory)
        self.d1 = DigitalOutputDevice(d1, initial_value=True, pin_factory=pin_factory)
        self.writer = wiegand.WiegandWriter(self.d0, self.d1, pulse_us, interval_us)
        self.bits, self.facility = bits, facility

    def handle(self, event):
        if not _opens(event):
            return
        card = card_number(event.get("user_info"))
        if card is None:
            log.warning("user %s has no card number in user_info: no Wiegand output", event.get("user_id"))
            return
        self.writer.send(wiegand.encode(card, self.facility, self.bits))

    def close(self):
        self.d0.close()
        self.d1.close()
