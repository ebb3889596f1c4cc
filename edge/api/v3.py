"""The face v3 endpoints, under the cloud's paths (``/rest/2.0/face/v3/...``) and the private
deployment's (``/face-api/v3/...``, with both its own names and the cloud's).

Each handler validates what the schema cannot (group counts, field combinations), asks
``FaceService`` and returns the seed's ``result`` shape; every failure is an ``ApiError``.
"""
from __future__ import annotations

import base64

from fastapi import APIRouter, Depends, Request, Security
from fastapi.security import APIKeyQuery

from . import schemas as S
from .envelope import ApiError, ok
from .liveness import threshold as live_threshold
from .liveness import thresholds as live_thresholds
from .service import CONTROL_FAILURES, FaceService, Probe

token_query = APIKeyQuery(name="access_token", auto_error=False,
                          description="from POST /oauth/2.0/token (client_credentials)")
router = APIRouter(dependencies=[Security(token_query)])

CLOUD = "/rest/2.0/face/v3"
PRIVATE = "/face-api/v3"


def service(request: Request) -> FaceService:
    return request.app.state.service


def _route(cloud: str, private: str | None, model, summary: str, exclude_none: bool = False):
    """Register one handler under the cloud path, the same path under /face-api/v3, and the
    private deployment's own name for it."""
    paths = [f"{CLOUD}/{cloud}", f"{PRIVATE}/{cloud}"] + ([f"{PRIVATE}/{private}"] if private else [])

    def deco(fn):
        for i, p in enumerate(paths):
            router.add_api_route(p, fn, methods=["POST"], response_model=S.Envelope[model], summary=summary,
                                 response_model_exclude_none=exclude_none, name=f"{fn.__name__}_{i}",
                                 tags=["v3"], responses={413: {"model": S.Envelope[None],
                                                               "description": "body over serve.max_body_mb"}})
        return fn
    return deco


def _groups(group_id_list: str) -> list[str]:
    groups = list(dict.fromkeys(group_id_list.split(",")))
    if len(groups) > S.MAX_GROUPS:
        raise ApiError(223104, f"{len(groups)} groups; at most {S.MAX_GROUPS}")
    return groups


# ---- analysis -------------------------------------------------------------------------------------
@_route("detect", "face/detect", S.DetectResult, "Detect faces: location, angle, landmarks, quality",
        exclude_none=True)
def detect(body: S.DetectIn, svc: FaceService = Depends(service)):
    svc.controls(body.liveness_control)
    n = min(body.max_face_num, 5) if body.display_corp_image else body.max_face_num
    faces = svc.probes(body.image, body.image_type, n, body.face_sort_type)
    fields = {f.strip() for f in body.face_field.split(",") if f.strip()}
    out = []
    for p in faces:
        if p.face is None:
            raise ApiError(222209, "an enrolled face's token has no image to detect on: use it in match or search")
        live = None
        if body.liveness_control != "NONE":
            # seed: faces below the level are filtered out of detect's result, not an error
            live = svc.live_score(p)
            if live < live_threshold(body.liveness_control):
                continue
        d = svc.face_fields(p, fields)
        if live is not None:
            d["liveness"] = {"livemapscore": live}
        if body.display_corp_image and p.img is not None:
            from ..engine import face_crop
            d["corp_image_base64"] = base64.b64encode(face_crop(p.img, p.face)[0]).decode()
        out.append(d)
    return ok({"face_num": len(out), "face_list": out})


@_route("match", "face/match", S.MatchResult, "1:1 compare two faces (score 0-100; 80 = same person)")
def match(body: list[S.MatchItem], svc: FaceService = Depends(service)):
    if len(body) != 2:
        raise ApiError(222208, f"{len(body)} images; match takes 2")
    for item in body:
        svc.controls(item.liveness_control, item.spoofing_control)
    probes: list[Probe] = []
    for item in body:
        p = svc.probes(item.image, item.image_type, 1, item.face_sort_type)[0]
        svc.check(p, item.quality_control, item.liveness_control)
        probes.append(p)
    score = svc.score(svc.unit(probes[0]), svc.unit(probes[1]))
    return ok({"score": score, "face_list": [{"face_token": p.token} for p in probes]})


@_route("search", "face/identify", S.SearchResult, "1:N search of the face in up to 10 groups")
def search(body: S.SearchIn, svc: FaceService = Depends(service)):
    groups = _groups(body.group_id_list)
    svc.controls(body.liveness_control, body.spoofing_control)
    p = svc.probes(body.image, body.image_type, 1, body.face_sort_type)[0]
    svc.check(p, body.quality_control, body.liveness_control)
    users = svc.users(svc.unit(p), groups, body.max_user_num, body.match_threshold, body.user_id)
    if not users:
        raise ApiError(222207, f"nobody in {groups} scores {body.match_threshold} or more")
    return ok({"face_token": p.token, "user_list": users})


@_route("multi-search", "face/midentify", S.MultiSearchResult, "M:N: search every face of the image")
def multi_search(body: S.MultiSearchIn, svc: FaceService = Depends(service)):
    groups = _groups(body.group_id_list)
    svc.controls(body.liveness_control, body.spoofing_control)
    faces = []
    for p in svc.probes(body.image, body.image_type, body.max_face_num):
        try:
            svc.check(p, body.quality_control, body.liveness_control)
        except ApiError as e:
            if e.code not in CONTROL_FAILURES:
                raise
            continue            # seed: faces failing the controls are left out of the result
        users = svc.users(svc.unit(p), groups, body.max_user_num, body.match_threshold)
        faces.append({"face_token": p.token, "location": p.location or None, "user_list": users})
    if not any(f["user_list"] for f in faces):
        raise ApiError(222207, f"no face matches anyone in {groups} at {body.match_threshold}")
    return ok({"face_num": len(faces), "face_list": faces})


@_route("faceverify", "face/liveness", S.FaceverifyResult,
        "Image liveness: RGB silent anti-spoofing of 1, 3 or 8 images of one person (needs the models)",
        exclude_none=True)
def faceverify(body: list[S.FaceverifyItem], svc: FaceService = Depends(service)):
    if len(body) not in (1, 3, 8):
        raise ApiError(222208, f"{len(body)} images; faceverify takes 1, 3 or 8")
    svc.controls("NORMAL")          # 216102 without the models, before any image is decoded
    faces = []
    for item in body:
        # option COMMON and GATE run the same model: this device has one RGB anti-spoof pair
        p = svc.probes(item.image, item.image_type, 1)[0]
        if p.face is None:
            raise ApiError(222209, "an enrolled face's token has no image to judge liveness on: send the image")
        fields = {f.strip() for f in item.face_field.split(",") if f.strip()}
        d = svc.face_fields(p, fields)
        d["liveness"] = {"livemapscore": svc.live_score(p)}
        faces.append(d)
    # seed: the overall score is the best image's (the images are frames of one live capture)
    best = max(f["liveness"]["livemapscore"] for f in faces)
    return ok({"thresholds": live_thresholds(), "face_liveness": best, "face_list": faces})


# ---- the face library -------------------------------------------------------------------------------
def _enrol(body, svc: FaceService, replace: bool, must_exist: bool):
    svc.controls(body.liveness_control, body.spoofing_control)
    p = svc.probes(body.image, body.image_type, 1, body.face_sort_type)[0]
    svc.check(p, body.quality_control, body.liveness_control)
    token = svc.enrol(p, body.user_id, body.group_id, body.user_info, replace, must_exist)
    return ok({"face_token": token, "location": p.location or None})


@_route("faceset/user/add", "face/add", S.UserAddResult, "Enrol a face (APPEND, or REPLACE the user's faces)",
        exclude_none=True)
def user_add(body: S.UserAddIn, svc: FaceService = Depends(service)):
    return _enrol(body, svc, replace=body.action_type == "REPLACE", must_exist=False)


@_route("faceset/user/update", "face/update", S.UserAddResult, "Replace a user's faces with this one",
        exclude_none=True)
def user_update(body: S.UserUpdateIn, svc: FaceService = Depends(service)):
    return _enrol(body, svc, replace=True, must_exist=body.action_type == "UPDATE")


@_route("faceset/face/delete", "face/delete", type(None), "Delete one face (the last one deletes the user)")
def face_delete(body: S.FaceDeleteIn, svc: FaceService = Depends(service)):
    svc.call(lambda lib: lib.face_delete(body.user_id, body.group_id, body.face_token))
    return ok()


@_route("faceset/user/get", "user/get", S.UserGetResult, "A user's info in one group or @ALL")
def user_get(body: S.UserGetIn, svc: FaceService = Depends(service)):
    u = svc.call(lambda lib: lib.get_user(body.user_id, body.group_id))
    groups = u["groups"] if body.group_id == "@ALL" else [body.group_id]
    return ok({"user_list": [{"user_info": u["user_info"] or "", "group_id": g} for g in groups]})


@_route("faceset/face/getlist", "face/list", S.FaceListResult, "A user's faces")
def face_getlist(body: S.FaceGetlistIn, svc: FaceService = Depends(service)):
    u = svc.call(lambda lib: lib.get_user(body.user_id, body.group_id))
    return ok({"face_list": [{"face_token": f["face_token"], "ctime": f["create_time"]} for f in u["face_list"]]})


@_route("faceset/group/getusers", "user/list", S.UserIdList, "The user ids of a group (start/length)")
def group_getusers(body: S.GroupGetusersIn, svc: FaceService = Depends(service)):
    return ok({"user_id_list": svc.call(lambda lib: lib.get_user_list(body.group_id, body.start, body.length))})


@_route("faceset/user/copy", "user/copy", type(None), "Add a user to another existing group")
def user_copy(body: S.UserCopyIn, svc: FaceService = Depends(service)):
    svc.call(lambda lib: lib.user_copy(body.user_id, body.src_group_id, body.dst_group_id))
    return ok()


@_route("faceset/user/delete", "user/delete", type(None), "Remove a user from a group, or from @ALL")
def user_delete(body: S.UserDeleteIn, svc: FaceService = Depends(service)):
    svc.call(lambda lib: lib.user_delete(body.user_id, body.group_id))
    return ok()


@_route("faceset/group/add", "group/add", type(None), "Create an empty group")
def group_add(body: S.GroupIn, svc: FaceService = Depends(service)):
    svc.call(lambda lib: lib.group_add(body.group_id))
    return ok()


@_route("faceset/group/delete", "group/delete", type(None), "Delete a group, its users and their faces")
def group_delete(body: S.GroupIn, svc: FaceService = Depends(service)):
    svc.call(lambda lib: lib.group_delete(body.group_id))
    return ok()


@_route("faceset/group/getlist", "group/list", S.GroupIdList, "The group ids (start/length)")
def group_getlist(body: S.GroupGetlistIn | None = None, svc: FaceService = Depends(service)):
    body = body or S.GroupGetlistIn()
    return ok({"group_id_list": svc.call(lambda lib: lib.group_list(body.start, body.length))})
