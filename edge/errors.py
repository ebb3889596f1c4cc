"""Error codes from the offline SDK (``baidu_face_api.h``), with the matching v3 REST codes.

The Python API and CLI report the offline SDK's negative codes; the HTTP API (a later issue)
reports ``http_code``, the v3 API's code for the same condition.
"""
from __future__ import annotations

# offline SDK code -> (name, v3 REST code or None)
CODES: dict[int, tuple[str, int | None]] = {
    -1: ("ILLEGAL_PARAMS", 222001),
    -4: ("MODEL_IS_EMPTY", None),
    -7: ("NN_CREATE_FAILED", None),
    -9: ("IMAGE_IS_EMPTY", 222013),
    -11: ("ABILITY_UNLOAD", None),
    -13: ("NOT_AUTHORIZED", 6),
    -15: ("UNSUPPORT_IMAGE_TYPE", 216201),
    -16: ("IMAGE_TRANSFORM_FAILED", 222203),
    -1001: ("SYSTEM_ERROR", 222302),
    -1002: ("PARARM_ERROR", 222001),
    -1003: ("DB_OP_FAILED", 222302),
    -1004: ("NO_DATA", 222207),
    -1005: ("RECORD_UNEXIST", 223103),
    -1006: ("RECORD_ALREADY_EXIST", 223102),
    -1007: ("FILE_NOT_EXIST", 222013),
    -1008: ("GET_FEATURE_FAIL", 222203),
    -1009: ("FILE_TOO_BIG", 222304),
    -1010: ("FACE_RESOURCE_NOT_EXIST", 223106),
    -1011: ("FEATURE_LEN_ERROR", 222001),
    -1012: ("DETECT_NO_FACE", 222202),
    -1013: ("CAMERA_ERROR", None),
    -1014: ("FACE_INSTANCE_ERROR", None),
    -1015: ("LICENSE_FILE_NOT_EXIST", 6),
    -1016: ("LICENSE_KEY_EMPTY", 6),
    -1017: ("LICENSE_KEY_INVALID", 6),
    -1018: ("LICENSE_KEY_EXPIRE", 6),
    -1019: ("LICENSE_ALREADY_USED", 6),
    -1020: ("DEVICE_ID_EMPTY", 6),
    -1021: ("NETWORK_TIMEOUT", 222201),
    -1022: ("NETWORK_ERROR", 222201),
}


SYSTEM_ERROR_HTTP = 222302


class EdgeError(Exception):
    """An error with the offline SDK's code and a sentence saying what to do."""

    def __init__(self, code: int, message: str, *, http_code: int | None = None, **detail):
        self.code = code
        self.name = CODES.get(code, ("ERROR", None))[0]
        self.http_code = http_code if http_code is not None else CODES.get(code, (None, None))[1]
        self.message = message
        self.detail = detail
        super().__init__(f"{self.name} ({code}): {message}")

    def to_dict(self) -> dict:
        # every error carries all four keys (README); the v3 API's "system error" where it has no
        # code of its own for the condition (models, camera)
        d = {"errno": self.code, "error": self.name, "msg": self.message,
             "error_code": self.http_code if self.http_code is not None else SYSTEM_ERROR_HTTP}
        d.update(self.detail)
        return d


ILLEGAL_PARAMS = -1
MODEL_IS_EMPTY = -4
NN_CREATE_FAILED = -7
IMAGE_IS_EMPTY = -9
UNSUPPORT_IMAGE_TYPE = -15
IMAGE_TRANSFORM_FAILED = -16
SYSTEM_ERROR = -1001
PARARM_ERROR = -1002
DB_OP_FAILED = -1003
NO_DATA = -1004
RECORD_UNEXIST = -1005
RECORD_ALREADY_EXIST = -1006
FILE_NOT_EXIST = -1007
GET_FEATURE_FAIL = -1008
FILE_TOO_BIG = -1009
FACE_RESOURCE_NOT_EXIST = -1010
FEATURE_LEN_ERROR = -1011
DETECT_NO_FACE = -1012
CAMERA_ERROR = -1013
FACE_INSTANCE_ERROR = -1014
NOT_AUTHORIZED = -13
LICENSE_FILE_NOT_EXIST = -1015
LICENSE_KEY_EMPTY = -1016
LICENSE_KEY_INVALID = -1017
LICENSE_KEY_EXPIRE = -1018
LICENSE_ALREADY_USED = -1019
DEVICE_ID_EMPTY = -1020
NETWORK_TIMEOUT = -1021
NETWORK_ERROR = -1022
