"""MQTT publish with paho-mqtt (optional dependency: `pip install 'edge-face[io]'`).

paho reconnects by itself and queues QoS 1/2 messages while the broker is away."""
from __future__ import annotations

import json
import logging

from .. import errors as E
from . import Sink

log = logging.getLogger("edge.outputs.mqtt")


class Mqtt(Sink):
    name = "mqtt"

    def __init__(self, host: str, port: int = 1883, topic: str = "edge/events", qos: int = 1,
                 client_id: str = "", types=()):
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise E.EdgeError(E.PARARM_ERROR, "MQTT output needs paho-mqtt: pip install 'edge-face[io]'") from None
        self.topic, self.qos, self.types = topic.rstrip("/"), qos, tuple(types)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "")
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = lambda c, u, f, rc, p=None: log.info("mqtt connected to %s:%s (%s)", host, port, rc)
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()

    def handle(self, event):
        self.client.publish(f"{self.topic}/{event['type']}", json.dumps(event, ensure_ascii=False), qos=self.qos)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()
