"""The admin page's words in English and Chinese. A page asks ``t(key)``; the language comes
from the ``lang`` cookie, else the browser's Accept-Language."""
from __future__ import annotations

LANGS = ("en", "zh")

TEXT = {
    "title": ("edge terminal", "edge 人脸终端"),
    "status": ("Status", "设备状态"),
    "library": ("Library", "人脸库"),
    "enrol": ("Enrol", "人脸注册"),
    "live": ("Live view", "实时画面"),
    "events": ("Events", "事件"),
    "attendance": ("Attendance", "考勤记录"),
    "logout": ("Log out", "退出"),
    "login": ("Log in", "登录"),
    "user": ("User", "用户名"),
    "password": ("Password", "密码"),
    "login_failed": ("Wrong user name or password.", "用户名或密码错误。"),
    "login_blocked": ("Too many failed attempts: wait a minute.", "失败次数过多，请一分钟后再试。"),
    "login_busy": ("The device is busy checking other logins: try again in a moment.", "设备正忙于其他登录验证，请稍后再试。"),
    "no_admin": ("No admin account yet: run `edge admin set-password` on the device.",
                 "尚未设置管理员账号：请在设备上运行 `edge admin set-password`。"),
    "refused": ("Refused", "请求被拒绝"),
    "csrf_refused": ("The form's security token is missing or wrong: reload the page and try again.",
                     "表单安全令牌缺失或无效：请刷新页面后重试。"),
    "bad_form": ("The request could not be read (too many fields or files, or a value of the wrong kind): go "
                 "back, reload the page and try again.", "无法读取请求（字段或文件过多，或取值类型错误）：请返回并刷新页面后重试。"),
    "licence": ("Licence", "授权"),
    "models": ("Models", "模型"),
    "camera": ("Camera", "摄像头"),
    "disk": ("Disk", "磁盘"),
    "fps": ("fps", "帧率"),
    "users": ("Users", "用户数"),
    "faces": ("Faces", "人脸数"),
    "free": ("free", "可用"),
    "uptime": ("Up for", "运行时间"),
    "state": ("State", "状态"),
    "groups": ("Groups", "用户组"),
    "group": ("Group", "用户组"),
    "add_group": ("Add group", "新建用户组"),
    "delete": ("Delete", "删除"),
    "delete_group": ("Delete group", "删除用户组"),
    "search": ("Search", "搜索"),
    "search_user": ("User id contains", "用户ID包含"),
    "user_id": ("User id", "用户ID"),
    "user_info": ("User info", "用户信息"),
    "save": ("Save", "保存"),
    "copy_to": ("Add to group", "复制到用户组"),
    "remove_from": ("Remove from this group", "从该组移除"),
    "delete_user": ("Delete user", "删除用户"),
    "face_list": ("Faces", "人脸列表"),
    "add_face": ("Add a face", "添加人脸"),
    "created": ("Created", "创建时间"),
    "photo": ("Photo", "照片"),
    "source": ("Source", "来源"),
    "upload": ("Uploaded photo", "上传照片"),
    "snapshot": ("Snapshot of the live camera", "实时摄像头快照"),
    "enrolled": ("Enrolled", "注册成功"),
    "enrol_refused": ("Not enrolled: the photo does not meet the quality rules", "未注册：照片不符合质量要求"),
    "no_face": ("No face found in the photo.", "照片中未检测到人脸。"),
    "why_too_small": ("The face is too small: move closer or use a larger photo", "人脸太小：请靠近或使用更大的照片"),
    "why_too_dark": ("Too dark: more light on the face", "光线太暗：请增加面部光照"),
    "why_blurred": ("Blurred: hold still, focus the camera", "图像模糊：请保持静止并对焦"),
    "why_turned": ("Head turned: face the camera", "头部偏转：请正对摄像头"),
    "why_spoof": ("Liveness check failed: a photo or a screen rather than a live face?",
                  "活体检测未通过：疑似照片或屏幕翻拍"),
    "liveness_check": ("Check liveness (RGB anti-spoofing, NORMAL)", "活体检测（RGB 静默活体，NORMAL）"),
    "no_camera": ("The camera is not running.", "摄像头未运行。"),
    "tracks": ("People in view", "画面中的人"),
    "nobody": ("Nobody in view", "画面中无人"),
    "last_events": ("Last events", "最近事件"),
    "from": ("From", "开始日期"),
    "to": ("To", "结束日期"),
    "filter": ("Filter", "筛选"),
    "export_csv": ("Export CSV", "导出 CSV"),
    "check_in": ("Check-in", "签到"),
    "check_out": ("Check-out", "签退"),
    "window": ("Window", "考勤周期"),
    "no_rows": ("No records.", "暂无记录。"),
    "done": ("Done", "完成"),
    "error": ("Error", "错误"),
    "none": ("none", "无"),
    "prev": ("Previous", "上一页"),
    "next": ("Next", "下一页"),
    "confirm_delete": ("Delete? This cannot be undone.", "确定删除？此操作不可撤销。"),
    "unknown": ("unknown", "未识别"),
    "all_groups": ("every group", "所有用户组"),
}


def pick(accept_language: str | None, cookie: str | None) -> str:
    if cookie in LANGS:
        return cookie
    al = (accept_language or "").lower()
    return "zh" if al.startswith("zh") or (",zh" in al and "en" not in al.split(",")[0]) else "en"


def translator(lang: str):
    i = LANGS.index(lang) if lang in LANGS else 0
    return lambda key: TEXT.get(key, (key, key))[i]
