"""`edge-license serve`: the reference license server for online activation.

POST /v1/activate  {serial, device_id, fingerprint, device_time} -> {license, revocations, server_time}
POST /v1/validate  {serial}  -> {serial, revoked}
GET  /v1/time      -> {server_time}
Errors answer HTTP 403 (400 for malformed requests) with the offline SDK's errno and a message.
"""
from __future__ import annotations

import http.server
import json
import logging
import threading

from .. import errors as E
from . import core
from .vendor import Vendor

log = logging.getLogger("edge.license.server")
MAX_BODY = 64 * 1024


def make_server(vendor: Vendor, host: str = "127.0.0.1", port: int = 8731) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "edge-license/1"

        def _send(self, code: int, body: dict):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/v1/time":
                return self._send(200, {"server_time": vendor.clock()})
            self._send(404, {"errno": E.ILLEGAL_PARAMS, "msg": "no such endpoint"})

        def do_POST(self):
            try:
                n = int(self.headers.get("Content-Length") or 0)
                if not 0 < n <= MAX_BODY:
                    raise ValueError("body size")
                req = json.loads(self.rfile.read(n))
                if not isinstance(req, dict):
                    raise ValueError("not an object")
            except ValueError:
                return self._send(400, {"errno": E.ILLEGAL_PARAMS, "msg": "the request must be a JSON object"})
            try:
                if self.path == "/v1/activate":
                    lic = vendor.activate(req.get("serial"), req.get("device_id"), req.get("fingerprint"),
                                          "online", float(req["device_time"]) if "device_time" in req else None)
                    log.info("activated %s on %s", lic["payload"]["serial"], lic["payload"]["device_id"])
                    return self._send(200, {"license": lic, "revocations": vendor.revocations(),
                                            "server_time": vendor.clock()})
                if self.path == "/v1/validate":
                    s = core.normalize_serial(req.get("serial"))
                    row = vendor.db.execute("SELECT revoked FROM serials WHERE serial=?", (s,)).fetchone()
                    if row is None:
                        raise E.EdgeError(E.LICENSE_KEY_INVALID, f"serial {s} is not known")
                    return self._send(200, {"serial": s, "revoked": row[0] is not None})
                return self._send(404, {"errno": E.ILLEGAL_PARAMS, "msg": "no such endpoint"})
            except E.EdgeError as e:
                log.info("refused %s: %s", self.path, e)
                return self._send(403, e.to_dict())
            except (TypeError, ValueError) as e:
                return self._send(400, {"errno": E.ILLEGAL_PARAMS, "msg": f"bad request: {e}"})

        def log_message(self, fmt, *args):
            log.debug(fmt, *args)

    return http.server.ThreadingHTTPServer((host, port), Handler)


def serve_in_thread(vendor: Vendor, host: str = "127.0.0.1", port: int = 0):
    srv = make_server(vendor, host, port)
    threading.Thread(target=srv.serve_forever, daemon=True, name="license-server").start()
    return srv
