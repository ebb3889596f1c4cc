"""The admin page: status, library (groups, users, faces, thumbnails), enrolment from a photo or
the live camera, the live view, the last events and attendance with CSV export.

Plain server-rendered HTML (Jinja2 templates, one CSS file, one small script); every state
change is a POST carrying the session's CSRF token; pages work from a phone to a 7-inch kiosk.
"""
from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from .. import errors as E
from .. import image as I
from . import i18n
from .auth import Busy
from .envelope import ApiError
from .live import MAX_FPS
from .service import admin_enrol
from .sessions import COOKIE, LOGIN_COOKIE, Session, Sessions, same

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(prefix="/admin", include_in_schema=False)
PAGE = 48                 # users per library page


def mount(app, state) -> None:
    state.sessions = Sessions(state.cfg.serve.session_hours, secure=bool(state.cfg.serve.tls_cert))
    app.mount("/admin/static", StaticFiles(directory=str(HERE / "static")), name="static")


def _st(request: Request):
    return request.app.state.edge


def _lang(request: Request) -> str:
    return i18n.pick(request.headers.get("accept-language"), request.cookies.get("lang"))


def session(request: Request) -> Session:
    s = _st(request).sessions.get(request.cookies.get(COOKIE))
    if s is None:
        raise HTTPException(303, "login")
    return s


async def form(request: Request, s: Session = Depends(session)):
    """The posted form, after checking its CSRF token against the session's."""
    f = await request.form()
    if not same(f.get("csrf") or request.headers.get("x-csrf-token"), s.csrf):
        raise HTTPException(403, "csrf")
    return f


async def http_error(request: Request, exc: HTTPException):
    if exc.status_code == 303:
        return RedirectResponse("/admin/login", status_code=303)
    if exc.status_code == 400:
        return bad_request(request)
    return page(request, "refused.html", {"message": "csrf_refused"}, status=403)


def bad_request(request: Request):
    """A form Starlette cannot read (over 1,000 fields or files) or a query of the wrong kind:
    a page that says so, not the v3 API's JSON envelope."""
    return page(request, "refused.html", {"message": "bad_form"}, status=400)


def page(request: Request, name: str, ctx: dict | None = None, s: Session | None = None, status: int = 200):
    lang = _lang(request)
    c = {"request": request, "t": i18n.translator(lang), "lang": lang, "session": s, "csrf": s.csrf if s else "",
         "path": request.url.path, "msg": request.query_params.get("msg", ""),
         "err": request.query_params.get("err", "")}
    c.update(ctx or {})
    resp = templates.TemplateResponse(request, name, c, status_code=status)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Content-Security-Policy"] = ("default-src 'self'; img-src 'self' data: blob:; "
                                               "style-src 'self'; script-src 'self'; frame-ancestors 'none'")
    return resp


def back(url: str, msg: str = "", err: str = "") -> RedirectResponse:
    q = "&".join(f"{k}={quote(v)}" for k, v in (("msg", msg), ("err", err)) if v)
    return RedirectResponse(url + (("&" if "?" in url else "?") + q if q else ""), status_code=303)


async def _call(request, fn):
    """A library call for a page, off the event loop (errors raise as ApiError)."""
    svc = _st(request).service
    return await run_in_threadpool(svc.call, fn)


def _err(e: ApiError) -> str:
    return f"{e.code} {E.v3_message(e.code, e.field)}: {e.detail}"


# ---- login ------------------------------------------------------------------------------------------
@router.get("/login")
async def login_page(request: Request):
    import secrets

    token = secrets.token_urlsafe(24)
    resp = page(request, "login.html", {"login_csrf": token, "configured": _st(request).admin.configured()})
    resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path="/admin", max_age=3600,
                    secure=_st(request).sessions.secure)
    return resp


@router.post("/login")
async def login(request: Request):
    st = _st(request)
    f = await request.form()
    if not same(f.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
        return page(request, "refused.html", {"message": "csrf_refused"}, status=403)
    who = request.client.host if request.client else "?"
    user, password = str(f.get("username", "")), str(f.get("password", ""))
    try:
        ok = await st.secret_checks.run("admin|" + who, st.admin.check, user, password)
    except Busy as e:
        return page(request, "login.html", {"error": f"login_{e.reason}", "login_csrf": f.get("csrf"),
                                            "configured": True}, status=429)
    if not ok:
        st.token_throttle.failed("admin|" + who)
        return page(request, "login.html", {"error": "login_failed", "login_csrf": f.get("csrf"),
                                            "configured": st.admin.configured()}, status=401)
    st.token_throttle.succeeded("admin|" + who)
    sid, _ = st.sessions.create(user)
    resp = RedirectResponse("/admin/", status_code=303)
    resp.set_cookie(COOKIE, sid, **st.sessions.cookie_args())
    resp.delete_cookie(LOGIN_COOKIE, path="/admin")
    return resp


@router.post("/logout")
async def logout(request: Request, f=Depends(form)):
    _st(request).sessions.drop(request.cookies.get(COOKIE))
    resp = RedirectResponse("/admin/login", status_code=303)
    resp.delete_cookie(COOKIE, path="/")
    return resp


@router.get("/lang/{lang}")
async def set_lang(request: Request, lang: str, next: str = "/admin/"):
    resp = RedirectResponse(next if next.startswith("/admin") else "/admin/", status_code=303)
    resp.set_cookie("lang", lang if lang in i18n.LANGS else "en", samesite="strict", path="/",
                    max_age=365 * 86400)
    return resp


# ---- status -----------------------------------------------------------------------------------------
@router.get("/")
async def status_page(request: Request, s: Session = Depends(session)):
    st = _st(request)
    status = await run_in_threadpool(st.device.status)
    return page(request, "status.html", {"st": status, "events": list(reversed(st.hub.last(10)))}, s)


@router.get("/status.json")
async def status_json(request: Request, s: Session = Depends(session)):
    return JSONResponse(await run_in_threadpool(_st(request).device.status))


# ---- library ----------------------------------------------------------------------------------------
@router.get("/library")
async def library_page(request: Request, group: str = "", q: str = "", start: int = 0,
                       s: Session = Depends(session)):
    ctx = {"groups": [], "group": group, "q": q, "start": max(0, start), "users": [], "more": False, "error": ""}
    try:
        ctx["groups"] = await _call(request, lambda lib: lib.group_list(0, 1000))
        if not group and ctx["groups"]:
            group = ctx["group"] = ctx["groups"][0]
        if group:
            ids = await _call(request, lambda lib: lib.get_user_list(group, 0, 1000))
            if q:
                ids = [u for u in ids if q.lower() in u.lower()]
            ctx["more"] = len(ids) > ctx["start"] + PAGE
            ids = ids[ctx["start"]:ctx["start"] + PAGE]
            users = await _call(request, lambda lib: [lib.get_user(u) for u in ids])
            ctx["users"] = users
    except ApiError as e:
        ctx["error"] = _err(e)
    return page(request, "library.html", ctx, s)


@router.post("/groups/add")
async def group_add(request: Request, f=Depends(form)):
    g = str(f.get("group_id", ""))
    try:
        await _call(request, lambda lib: lib.group_add(g))
    except ApiError as e:
        return back("/admin/library", err=_err(e))
    return back(f"/admin/library?group={quote(g)}", msg=f"+ {g}")


@router.post("/groups/delete")
async def group_delete(request: Request, f=Depends(form)):
    g = str(f.get("group_id", ""))
    try:
        await _call(request, lambda lib: lib.group_delete(g))
    except ApiError as e:
        return back(f"/admin/library?group={quote(g)}", err=_err(e))
    return back("/admin/library", msg=f"- {g}")


@router.get("/user/{user_id}")
async def user_page(request: Request, user_id: str, s: Session = Depends(session)):
    try:
        u = await _call(request, lambda lib: lib.get_user(user_id))
        groups = await _call(request, lambda lib: lib.group_list(0, 1000))
    except ApiError as e:
        return back("/admin/library", err=_err(e))
    return page(request, "user.html", {"u": u, "all_groups": groups}, s)


@router.post("/user/{user_id}/{action}")
async def user_action(request: Request, user_id: str, action: str, f=Depends(form)):
    here = f"/admin/user/{quote(user_id)}"
    try:
        if action == "info":
            info = str(f.get("user_info", ""))
            await _call(request, lambda lib: lib.set_user_info(user_id, info))
        elif action == "copy":
            await _call(request, lambda lib: lib.user_copy(user_id, str(f.get("src_group_id", "")),
                                                             str(f.get("dst_group_id", ""))))
        elif action == "remove":
            g = str(f.get("group_id", ""))
            await _call(request, lambda lib: lib.user_delete(user_id, g))
            return back(f"/admin/library?group={quote(g)}", msg=f"- {user_id}")
        elif action == "delete":
            await _call(request, lambda lib: lib.user_delete(user_id, "@ALL"))
            return back("/admin/library", msg=f"- {user_id}")
        elif action == "face-delete":
            await _call(request, lambda lib: lib.face_delete(user_id, str(f.get("group_id", "")),
                                                               str(f.get("face_token", ""))))
        elif action == "face-add":
            return await _enrol_post(request, f, user_id=user_id)
        else:
            raise HTTPException(404, "no such action")
    except ApiError as e:
        return back(here, err=_err(e))
    return back(here, msg="done")


@router.get("/thumb/{user_id}.jpg")
async def thumbnail(request: Request, user_id: str, s: Session = Depends(session)):
    try:
        data = await _call(request, lambda lib: lib.get_thumbnail(user_id))
    except ApiError:
        data = None
    if not data:
        return Response(status_code=404)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=60"})


# ---- enrolment --------------------------------------------------------------------------------------
@router.get("/enrol")
async def enrol_page(request: Request, s: Session = Depends(session)):
    groups = []
    try:
        groups = await _call(request, lambda lib: lib.group_list(0, 1000))
    except ApiError:
        pass
    return page(request, "enrol.html", {"groups": groups, "camera": _st(request).live.seq > 0, "result": None,
                                        "liveness": _st(request).service.liveness.model() is not None}, s)


@router.post("/enrol")
async def enrol(request: Request, f=Depends(form)):
    return await _enrol_post(request, f)


async def _enrol_post(request: Request, f, user_id: str | None = None):
    st = _st(request)
    s = session(request)
    user_id = user_id or str(f.get("user_id", "")).strip()
    group_id = str(f.get("group_id", "")).strip()
    info = str(f.get("user_info", "")).strip() or None
    result = {"ok": False, "reasons": [], "error": ""}
    try:
        if f.get("source") == "camera":
            img = st.live.upright()
            if img is None:
                raise ApiError(222202, "the camera is not running")
        else:
            up = f.get("photo")
            data = await up.read() if hasattr(up, "read") else b""
            try:
                img = I.decode(data, getattr(up, "filename", "photo") or "photo")
            except E.EdgeError as e:
                raise ApiError.from_edge(e) from None
        live = "NORMAL" if f.get("liveness") else "NONE"
        result = await run_in_threadpool(admin_enrol, st.service, img, user_id, group_id, info, live)
    except ApiError as e:
        result["error"] = _err(e)
    except E.EdgeError as e:
        result["error"] = f"{e.http_code} {e.message}"
    if result.get("ok"):
        return back(f"/admin/user/{quote(user_id)}", msg="enrolled")
    groups = []
    try:
        groups = await _call(request, lambda lib: lib.group_list(0, 1000))
    except ApiError:
        pass
    return page(request, "enrol.html", {"groups": groups, "camera": st.live.seq > 0, "result": result,
                                        "form": {"user_id": user_id, "group_id": group_id, "user_info": info or ""},
                                        "liveness": st.service.liveness.model() is not None}, s, status=422)


# ---- live view and events -----------------------------------------------------------------------------
@router.get("/live")
async def live_page(request: Request, s: Session = Depends(session)):
    st = _st(request)
    return page(request, "live.html", {"camera": st.device.camera(), "events": list(reversed(st.hub.last(10)))}, s)


@router.get("/live.json")
async def live_json(request: Request, s: Session = Depends(session)):
    st = _st(request)
    return JSONResponse({"seq": st.live.seq, "tracks": st.live.tracks(), "camera": st.device.camera()})


@router.get("/live.jpg")
async def live_jpg(request: Request, s: Session = Depends(session)):
    data = await run_in_threadpool(_st(request).live.render)
    if data is None:
        return Response(status_code=404)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/snapshot.jpg")
async def snapshot_jpg(request: Request, s: Session = Depends(session)):
    from .service import jpeg

    img = _st(request).live.upright()
    if img is None:
        return Response(status_code=404)
    return Response(await run_in_threadpool(jpeg, img), media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/live.mjpg")
async def live_mjpeg(request: Request, s: Session = Depends(session)):
    view = _st(request).live

    async def frames():
        seq = -1
        while True:
            if view.seq == seq:
                await asyncio.sleep(0.03)
                continue
            seq = view.seq
            data = await run_in_threadpool(view.render)
            if data:
                yield (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(data)).encode() +
                       b"\r\n\r\n" + data + b"\r\n")
            await asyncio.sleep(1.0 / MAX_FPS)

    return StreamingResponse(frames(), media_type="multipart/x-mixed-replace; boundary=frame",
                             headers={"Cache-Control": "no-store"})


@router.get("/events")
async def events_page(request: Request, s: Session = Depends(session)):
    return page(request, "events.html", {"events": list(reversed(_st(request).hub.last(50)))}, s)


# ---- attendance -------------------------------------------------------------------------------------------
def _day(v: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(v) if v else None
    except ValueError:
        return None


def _attendance(cfg, since: dt.date | None, until: dt.date | None) -> list[dict]:
    from ..attendance import Attendance

    path = cfg.home / "db" / "attendance.db"
    if not path.is_file():
        return []
    att = Attendance(path, cfg.attendance)
    try:
        rows = att.rows(dt.datetime.combine(since, dt.time()).timestamp() if since else None)
    finally:
        att.close()
    if until:
        end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time())
        rows = [r for r in rows if dt.datetime.fromisoformat(r["check_in"]) < end]
    return rows


@router.get("/attendance")
async def attendance_page(request: Request, since: str = "", until: str = "", s: Session = Depends(session)):
    rows = await run_in_threadpool(_attendance, _st(request).cfg, _day(since), _day(until))
    return page(request, "attendance.html", {"rows": rows, "since": since, "until": until}, s)


@router.get("/attendance.csv")
async def attendance_csv(request: Request, since: str = "", until: str = "", s: Session = Depends(session)):
    rows = await run_in_threadpool(_attendance, _st(request).cfg, _day(since), _day(until))
    out = io.StringIO()
    w = csv.DictWriter(out, ["user_id", "window", "check_in", "check_out", "check_in_score", "check_out_score"])
    w.writeheader()
    w.writerows(rows)
    name = f"attendance{'-' + since if since else ''}{'-' + until if until else ''}.csv"
    # a BOM so spreadsheet programs read the Chinese user_info and names as UTF-8
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
