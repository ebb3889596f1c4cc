"""Request and response models of the v3 API, as the seed documents them. They make
``/openapi.json`` precise enough to check every answer against (schemathesis does, in CI).

Requests are lenient where the cloud is (unknown fields ignored, numbers given as strings
accepted); every field that does not validate is answered with its own v3 code (``FIELD_CODES``).
"""
from __future__ import annotations

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ..liveness.levels import THRESHOLDS

ID = r"^[A-Za-z0-9_]{1,128}$"
ID_OR_ALL = r"^(@ALL|[A-Za-z0-9_]{1,128})$"
ID_LIST = r"^[A-Za-z0-9_]{1,128}(,[A-Za-z0-9_]{1,128})*$"
MAX_GROUPS = 10          # seed: group_id_list holds at most 10 groups (223104)

Control = Literal["NONE", "LOW", "NORMAL", "HIGH"]
ImageType = Literal["BASE64", "URL", "FACE_TOKEN"]
FaceType = Literal["LIVE", "IDCARD", "WATERMARK", "CERT", "INFRARED", "HYBRID"]
Id = Annotated[str, Field(pattern=ID, description="letters, digits and _, 1-128 bytes")]
IdOrAll = Annotated[str, Field(pattern=ID_OR_ALL, description="a group id, or @ALL for every group")]
Start = Annotated[int, Field(ge=0, le=2**31 - 1)]
Length = Annotated[int, Field(ge=1, le=1000)]
Token = Annotated[str, Field(min_length=1, max_length=64)]

IMAGE_DOC = ("BASE64: the image file's bytes in base64 (JPEG, PNG, BMP, WebP, TIFF; no data-URI header; "
             "<= 40 MP); FACE_TOKEN: a token from detect/search (60 min) or of an enrolled face; "
             "URL is refused with 222204 (the device is offline)")
FACE_FIELDS = "landmark, quality (occlusion per part, blur, illumination, completeness)"
NOT_SUPPORTED = ("age, beauty, expression, face_shape, gender, glasses, emotion, eye_status, face_type, mask, "
                 "spoofing, landmark72, landmark150, feature")
_RGB = THRESHOLDS["rgb"]
LEVELS_DOC = f"LOW {_RGB['LOW']:g} / NORMAL {_RGB['NORMAL']:g} / HIGH {_RGB['HIGH']:g}"
LIVENESS_DOC = ("RGB silent liveness (MiniFASNetV2 + MiniFASNetV1SE, liveness.rgb_models) on the face used, "
                f"score thresholds {LEVELS_DOC}; below it the call answers 223120. 216102 when the anti-spoof "
                "models are not installed")
SPOOFING_DOC = "synthetic-image detection: no model on this device, anything but NONE answers 216102"

# request field -> the v3 code for a value that does not validate
FIELD_CODES = {
    "image": 222013, "image_type": 222015, "max_face_num": 222016, "face_field": 222017, "user_id": 222018,
    "quality_control": 222019, "liveness_control": 222020, "spoofing_control": 223130, "max_user_num": 222021,
    "face_type": 222024, "face_token": 222025, "match_threshold": 222030, "face_sort_type": 222039,
    "display_corp_image": 222043, "start": 222002, "length": 222003, "group_id_list": 222005,
    "group_id": 222006, "src_group_id": 222006, "dst_group_id": 222006, "user_info": 222010,
    "action_type": 222001, "option": 222001,
}


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ImageIn(_In):
    image: str = Field(min_length=1, description=IMAGE_DOC)
    image_type: ImageType


class DetectIn(ImageIn):
    face_field: str = Field("", pattern=r"^[A-Za-z0-9_, ]*$",
                            description=f"comma-separated; supported: {FACE_FIELDS}. Accepted and not "
                                        f"returned (no model for them): {NOT_SUPPORTED}")
    max_face_num: int = Field(1, ge=1, le=20)
    face_type: FaceType = "LIVE"
    liveness_control: Control = Field("NONE", description="faces scoring below the level are left out of the "
                                      "result (not an error); each face kept carries liveness.livemapscore. "
                                      f"RGB silent liveness (MiniFASNet), thresholds {LEVELS_DOC}; 216102 when "
                                      "the anti-spoof models are not installed")
    face_sort_type: Literal[0, 1] = Field(0, description="0: largest first, 1: nearest the centre first")
    display_corp_image: Literal[0, 1] = Field(0, description="1: return each face's crop (max_face_num <= 5)")


class _Controls(_In):
    quality_control: Control = "NONE"
    liveness_control: Control = Field("NONE", description=LIVENESS_DOC)
    spoofing_control: Control = Field("NONE", description=SPOOFING_DOC)
    face_sort_type: Literal[0, 1] = 0


class MatchItem(ImageIn, _Controls):
    face_type: FaceType = "LIVE"


class SearchIn(ImageIn, _Controls):
    group_id_list: str = Field(pattern=ID_LIST, description=f"comma-separated, at most {MAX_GROUPS}")
    user_id: Id | None = Field(None, description="restrict the search to this user (1:N authentication)")
    max_user_num: int = Field(1, ge=1, le=50)
    match_threshold: float = Field(0, ge=0, le=100, description="users scoring below are left out; none "
                                                                "left = 222207")


class MultiSearchIn(ImageIn, _Controls):
    group_id_list: str = Field(pattern=ID_LIST, description=f"comma-separated, at most {MAX_GROUPS}")
    quality_control: Control = Field("NONE", description="faces failing it are left out of the result")
    liveness_control: Control = Field("NONE", description="faces scoring below the level are left out of the "
                                      f"result. RGB silent liveness (MiniFASNet), thresholds {LEVELS_DOC}; "
                                      "216102 when the anti-spoof models are not installed")
    max_face_num: int = Field(1, ge=1, le=10)
    match_threshold: float = Field(80, ge=0, le=100)
    max_user_num: int = Field(1, ge=1, le=20)


class _EnrolIn(ImageIn, _Controls):
    group_id: Id
    user_id: Id
    user_info: str | None = Field(None, max_length=256)


class UserAddIn(_EnrolIn):
    action_type: Literal["APPEND", "REPLACE"] = Field("APPEND", description="REPLACE: this face replaces "
                                                                            "the user's faces")


class UserUpdateIn(_EnrolIn):
    action_type: Literal["UPDATE", "REPLACE"] = Field("UPDATE", description="UPDATE: the user must exist "
                                                                            "(223103); REPLACE: created if not")


class FaceDeleteIn(_In):
    user_id: Id
    group_id: Id
    face_token: Token


class UserGetIn(_In):
    user_id: Id
    group_id: IdOrAll


class FaceGetlistIn(_In):
    user_id: Id
    group_id: IdOrAll


class GroupGetusersIn(_In):
    group_id: Id
    start: Start = 0
    length: Length = 100


class UserCopyIn(_In):
    user_id: Id
    src_group_id: Id
    dst_group_id: Id


class UserDeleteIn(_In):
    group_id: IdOrAll
    user_id: Id


class GroupIn(_In):
    group_id: Id


class GroupGetlistIn(_In):
    start: Start = 0
    length: Length = 100


class FaceverifyItem(ImageIn):
    face_field: str = Field("", pattern=r"^[A-Za-z0-9_, ]*$",
                            description=f"comma-separated; supported: {FACE_FIELDS}. Accepted and not returned: "
                                        f"{NOT_SUPPORTED}")
    option: Literal["COMMON", "GATE"] = Field("COMMON", description="both run the same RGB model (the device "
                                                                    "has one)")


# ---- responses ------------------------------------------------------------------------------------
R = TypeVar("R")


class Envelope(BaseModel, Generic[R]):
    error_code: int = Field(description="0 = success; otherwise the seed's v3 error code")
    error_msg: str
    log_id: int
    timestamp: int
    cached: int
    result: R | None = None


class Location(BaseModel):
    left: float
    top: float
    width: float
    height: float
    rotation: int


class Angle(BaseModel):
    yaw: float
    pitch: float
    roll: float


class Point(BaseModel):
    x: float
    y: float


class Occlusion(BaseModel):
    left_eye: float
    right_eye: float
    nose: float
    mouth: float
    left_cheek: float
    right_cheek: float
    chin_contour: float


class Quality(BaseModel):
    occlusion: Occlusion
    blur: float
    illumination: float
    completeness: int


class Liveness(BaseModel):
    livemapscore: float = Field(ge=0, le=1, description="RGB liveness score of this image's face: the mean "
                                                        "of the anti-spoof models' 'real' probabilities")


class DetectFace(BaseModel):
    face_token: str
    location: Location
    face_probability: float
    angle: Angle
    landmark: list[Point] | None = Field(None, description="with face_field=landmark")
    quality: Quality | None = Field(None, description="with face_field=quality")
    liveness: Liveness | None = Field(None, description="with liveness_control LOW / NORMAL / HIGH")
    corp_image_base64: str | None = Field(None, description="with display_corp_image=1")


class DetectResult(BaseModel):
    face_num: int
    face_list: list[DetectFace]


class LivenessThresholds(BaseModel):
    """The seed's keys, each filled with the threshold of the level the seed ties it to (frr_1e-4 =
    LOW, frr_1e-3 = NORMAL, frr_1e-2 = HIGH). The false-rejection rates in the names are Baidu's
    for its own model: this device's model does not reach them (README "Liveness")."""
    model_config = ConfigDict(populate_by_name=True)
    frr_1e_4: float = Field(alias="frr_1e-4", description="LOW's threshold")
    frr_1e_3: float = Field(alias="frr_1e-3", description="NORMAL's threshold")
    frr_1e_2: float = Field(alias="frr_1e-2", description="HIGH's threshold")


class VerifyFace(DetectFace):
    liveness: Liveness


class FaceverifyResult(BaseModel):
    thresholds: LivenessThresholds
    face_liveness: float = Field(ge=0, le=1, description="the highest livemapscore of the images")
    face_list: list[VerifyFace] = Field(description="one per image, in request order (its largest face)")


class TokenRef(BaseModel):
    face_token: str


class MatchResult(BaseModel):
    score: float
    face_list: list[TokenRef]


class SearchUser(BaseModel):
    group_id: str
    user_id: str
    user_info: str
    score: float


class SearchResult(BaseModel):
    face_token: str
    user_list: list[SearchUser]


class MultiFace(BaseModel):
    face_token: str
    location: Location | None = Field(None, description="null for the token of an enrolled face")
    user_list: list[SearchUser]


class MultiSearchResult(BaseModel):
    face_num: int
    face_list: list[MultiFace]


class UserAddResult(BaseModel):
    face_token: str
    location: Location | None = None


class UserGroup(BaseModel):
    user_info: str
    group_id: str


class UserGetResult(BaseModel):
    user_list: list[UserGroup]


class FaceItem(BaseModel):
    face_token: str
    ctime: str


class FaceListResult(BaseModel):
    face_list: list[FaceItem]


class UserIdList(BaseModel):
    user_id_list: list[str]


class GroupIdList(BaseModel):
    group_id_list: list[str]


class TokenOut(BaseModel):
    access_token: str | None = None
    expires_in: int | None = None
    scope: str | None = None
    error: str | None = Field(None, description="invalid_client, invalid_request, unsupported_grant_type")
    error_description: str | None = None
