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


# ---- the v3 REST API's error messages (seed, online API error table), for the HTTP API -----------
# error_msg is the seed's text so clients that match on it keep working; "{}" is the field name
V3_MESSAGES: dict[int, str] = {
    0: "SUCCESS",
    1: "Unknown error",
    3: "Unsupported openapi method",
    6: "No permission to access data",
    17: "Open api daily request limit reached",
    18: "Open api qps request limit reached",
    100: "Invalid parameter",
    110: "Access token invalid or no longer valid",
    111: "Access token expired",
    216102: "service not support",
    216201: "image format error",
    222001: "param[{}] is null",
    222002: "param[start] format error",
    222003: "param[length] format error",
    222005: "param[group_id_list] format error",
    222006: "group_id format error",
    222007: "uid format error",
    222010: "user_info format error",
    222013: "param[image] format error",
    222015: "param[image_type] format error",
    222016: "param[max_face_num] format error",
    222017: "param[face_field] format error",
    222018: "param[user_id] format error",
    222019: "param[quality_control] format error",
    222020: "param[liveness_control] format error",
    222021: "param[max_user_num] format error",
    222024: "param[face_type] format error",
    222025: "param[face_token] format error",
    222030: "param[match_threshold] format error",
    222039: "param[face_sort_type] format error",
    222043: "param[display_corp_image] format error",
    222200: "request body should be json format",
    222202: "pic not has face",
    222203: "image check fail",
    222204: "image_url_download_fail",
    222207: "match user is not found",
    222208: "the number of image is incorrect",
    222209: "face token not exist",
    222210: "the number of user's faces is beyond the limit",
    222213: "face size is too small",
    222300: "add face fail",
    222302: "system error",
    222304: "image size is too large",
    223100: "group is not exist",
    223101: "group is already exist",
    223102: "user is already exist",
    223103: "user is not exist",
    223104: "group_list is too large",
    223105: "face is already exist",
    223106: "face is not exist",
    223111: "dst group is not exist",
    223113: "face is covered",
    223114: "face is fuzzy",
    223115: "face light is not good",
    223116: "incomplete face",
    223118: "quality control error",
    223119: "liveness control item error",
    223120: "liveness check fail",
    223121: "left eye is occlusion",
    223122: "right eye is occlusion",
    223123: "left cheek is occlusion",
    223124: "right cheek is occlusion",
    223125: "chin contour is occlusion",
    223126: "nose is occlusion",
    223127: "mouth is occlusion",
    223129: "face not forward",
    223130: "spoofing_control item error",
}


def v3_message(code: int, field: str = "") -> str:
    return V3_MESSAGES.get(code, V3_MESSAGES[1]).replace("{}", field or "field")
