"""The v3 API's response envelope: ``error_code``, ``error_msg``, ``log_id``, ``timestamp``,
``cached``, ``result`` — for successes and errors alike (HTTP 200, as the cloud answers)."""
from __future__ import annotations

import logging
import secrets
import time

from starlette.responses import JSONResponse

from .. import errors as E

log = logging.getLogger("edge.api")


class ApiError(Exception):
    """An error answered in the envelope with the v3 code; ``detail`` goes to the log only."""

    def __init__(self, code: int, detail: str = "", field: str = "", status: int = 200):
        self.code, self.detail, self.field, self.status = code, detail, field, status
        super().__init__(f"{code}: {detail}")

    @classmethod
    def from_edge(cls, e: E.EdgeError) -> "ApiError":
        # an offline-SDK error without a v3 counterpart is the v3 "system error"
        return cls(e.http_code or 222302, e.message)


def log_id() -> int:
    return secrets.randbits(52)     # JSON-safe in JavaScript clients too (< 2^53)


def body(code: int = 0, result=None, msg: str | None = None, lid: int | None = None) -> dict:
    return {"error_code": code, "error_msg": msg or E.v3_message(code), "log_id": lid or log_id(),
            "timestamp": int(time.time()), "cached": 0, "result": result}


def ok(result=None) -> dict:
    return body(0, result)


def error_response(err: ApiError, path: str = "") -> JSONResponse:
    lid = log_id()
    # the client gets the seed's message; the sentence saying what went wrong is logged under
    # the same log_id, so an integrator's report can be matched with the device's log
    # a system error (no model pack, a full disk, a damaged library) is the installer's to fix:
    # logged where `edge serve`'s default level shows it; a client's own mistakes stay at INFO
    log.log(logging.WARNING if err.code == E.SYSTEM_ERROR_HTTP else logging.INFO,
            "log_id %d %s: error %d %s", lid, path, err.code, err.detail)
    return JSONResponse(body(err.code, None, E.v3_message(err.code, err.field), lid), status_code=err.status)
