"""Done-when 3 of the device service: a real browser (Debian's headless Chromium, driven by
Selenium with Debian's chromedriver) uses the admin page: a wrong password is refused, it logs
in, enrols a fixture photo (and sees a dark one refused with its quality reasons), finds the
person in the library, watches the live view recognise the same person replayed through the
camera loop (name drawn on the frame), enrols from a snapshot of that camera, is refused a form without its CSRF token, and exports
the attendance CSV. Screenshots of each page go to test-output/browser/ (EDGE_TEST_OUTPUT)."""
import datetime as dt
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from edge import sources as S
from edge.api.app import create_app
from edge.api.auth import AdminAccount
from edge.api.live import GREEN
from edge_tools.scenes import Actor, Scene
from tests.api_server import Served
from tests.conftest import PUBLIC
from tests.helpers import wait_for

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
PASSWORD = "kiosk-pass-1"


@pytest.fixture
def out_dir():
    d = Path(os.environ.get("EDGE_TEST_OUTPUT", Path(__file__).resolve().parents[1] / "test-output")) / "browser"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


@pytest.fixture
def browser(tmp_path):
    if not (os.path.exists(CHROMIUM) and os.path.exists(DRIVER)):
        pytest.fail("Debian's chromium and chromium-driver are needed: apt-get install chromium chromium-driver "
                    "(.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for f in FLAGS + [f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1024,700", "--lang=en-US"]:
        opts.add_argument(f)
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    d.set_page_load_timeout(60)
    yield d
    d.quit()


@pytest.fixture
def device(cfg, analyzer):
    """The service with its camera loop in attendance mode, replaying a real photo of a person
    standing in front of the camera, over and over (paced at 25 fps, as a camera)."""
    cfg.decision.mode = "attendance"
    cfg.attendance.min_checkout_gap = 3600.0
    actor = Actor(PUBLIC / "obama/obama_2.jpg", 0, 140, (260, 240), (340, 240), face_px=150, name="obama")
    scene = Scene([actor], 160, find_face=lambda img: analyzer.largest(img).box)
    AdminAccount(cfg.home).set_password(PASSWORD)
    app = create_app(cfg, camera=True, source=S.Replay(scene, fps=25, paced=True, loop=True))
    with Served(app) as srv:
        yield srv


def submit(d, button):
    """Click a form's button and wait until the page it was on is gone: a click returns before
    the browser has navigated. Asking the old button anything then fails; mid-navigation
    chromedriver fails with "Node with given id does not belong to the document" rather than the
    stale-element error Selenium's staleness_of expects, so any driver error counts as gone.
    (WebElement.submit() is not used: its script can be cut off by the navigation it starts.)"""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def gone(_):
        try:
            button.is_enabled()
        except WebDriverException:
            return True
        return False

    button.click()
    WebDriverWait(d, 60).until(gone)
    WebDriverWait(d, 60).until(lambda drv: drv.execute_script("return document.readyState") == "complete")


def shot(d, out_dir, name):
    d.save_screenshot(str(out_dir / f"{name}.png"))


def csrf_session(d):
    s = requests.Session()
    for c in d.get_cookies():
        s.cookies.set(c["name"], c["value"])
    return s


def test_admin_page_in_headless_chromium(device, browser, out_dir, tmp_path):
    from selenium.webdriver.common.by import By

    # a real photo taken in poor light (the same pixels, darkened): the enrolment policy refuses it
    dark_photo = tmp_path / "obama_dark.jpg"
    img = cv2.imread(str(PUBLIC / "obama/obama_1.jpg"))
    cv2.imwrite(str(dark_photo), (img.astype(np.float32) * 0.2).astype(np.uint8))

    d, url = browser, device.url
    find = d.find_element
    d.get(url + "/admin/")
    assert d.current_url.endswith("/admin/login")
    shot(d, out_dir, "01-login")
    # a wrong password is refused
    find(By.ID, "password").send_keys("not-the-password")
    submit(d, find(By.ID, "login-button"))
    assert "Wrong user name or password" in find(By.ID, "login-error").text
    shot(d, out_dir, "02-login-refused")
    find(By.ID, "password").clear()
    find(By.ID, "password").send_keys(PASSWORD)
    submit(d, find(By.ID, "login-button"))
    assert d.current_url.endswith("/admin/") and find(By.ID, "camera-state")
    shot(d, out_dir, "03-status")

    # enrolment: a photo the quality rules refuse shows its reasons; a good one is enrolled
    d.get(url + "/admin/enrol")
    find(By.ID, "enrol-user").send_keys("obama")
    find(By.ID, "enrol-group").clear()
    find(By.ID, "enrol-group").send_keys("staff")
    find(By.ID, "enrol-photo").send_keys(str(dark_photo))
    submit(d, find(By.ID, "enrol-button"))
    refused = find(By.ID, "enrol-refused").text
    assert "Too dark" in refused and "illumination" in refused and "223115" in refused, refused
    shot(d, out_dir, "04-enrol-refused")
    find(By.ID, "enrol-info").send_keys("Barack Obama 奥巴马")
    find(By.ID, "enrol-photo").send_keys(str(PUBLIC / "obama/obama_1.jpg"))
    submit(d, find(By.ID, "enrol-button"))
    assert "/admin/user/obama?msg=enrolled" in d.current_url, d.current_url
    assert find(By.ID, "user-title").text == "obama"
    assert find(By.ID, "user-info").get_attribute("value") == "Barack Obama 奥巴马"
    shot(d, out_dir, "05-user")

    # the person is in the library, with a thumbnail
    d.get(url + "/admin/library?group=staff")
    users = find(By.ID, "user-list")
    assert "obama" in users.text and "Barack Obama" in users.text
    img = users.find_element(By.TAG_NAME, "img")
    assert wait_for(lambda: d.execute_script("return arguments[0].naturalWidth", img) == 96, 10)
    shot(d, out_dir, "06-library")

    # the live view recognises the replayed person: the name in the list and drawn on the frame
    d.get(url + "/admin/live")
    tracks = find(By.ID, "live-tracks")
    assert wait_for(lambda: "obama" in tracks.text, 60), tracks.text
    assert wait_for(lambda: d.execute_script("return arguments[0].naturalWidth",
                                             find(By.ID, "live-view")) == 640, 10)
    shot(d, out_dir, "07-live")
    s = csrf_session(d)
    state = s.get(url + "/admin/live.json").json()
    named = [t for t in state["tracks"] if t["user_id"] == "obama"]
    if named:       # the person may have walked out between the two reads: check the frame then
        frame = cv2.imdecode(np.frombuffer(s.get(url + "/admin/live.jpg").content, np.uint8), cv2.IMREAD_COLOR)
        x, y, w, h = (int(v) for v in named[0]["box"])
        # the label box above the face is drawn in the "recognised" colour
        label = frame[max(0, y - 18):max(1, y - 4), x + 2:x + 40].reshape(-1, 3).astype(int)
        assert (np.abs(label - np.array(GREEN)).sum(axis=1) < 60).mean() > 0.3

    # enrolment from a snapshot of the live camera (the person may be between passes: retry)
    for _ in range(5):
        d.get(url + "/admin/enrol")
        find(By.ID, "enrol-user").send_keys("guest")
        find(By.ID, "enrol-group").clear()
        find(By.ID, "enrol-group").send_keys("visitors")
        find(By.CSS_SELECTOR, "input[name=source][value=camera]").click()
        submit(d, find(By.ID, "enrol-button"))
        if "/admin/user/guest" in d.current_url:
            break
    assert "/admin/user/guest?msg=enrolled" in d.current_url, d.page_source[:2000]

    # a form without its CSRF token is refused and changes nothing
    d.get(url + "/admin/library")
    d.execute_script("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")
    find(By.CSS_SELECTOR, "form[action='/admin/groups/add'] input[name=group_id]").send_keys("intruders")
    submit(d, find(By.CSS_SELECTOR, "form[action='/admin/groups/add'] button"))
    assert "security token" in find(By.ID, "refused").text
    shot(d, out_dir, "08-csrf-refused")
    d.get(url + "/admin/library")
    assert "intruders" not in d.page_source

    # attendance: the recognition made a check-in; filter by date and export CSV
    today = dt.date.today()
    assert wait_for(lambda: "obama" in s.get(url + "/admin/attendance").text, 30)
    d.get(url + f"/admin/attendance?since={today}&until={today}")
    assert "obama" in find(By.ID, "attendance-table").text
    shot(d, out_dir, "09-attendance")
    href = find(By.ID, "export-csv").get_attribute("href")
    r = s.get(href)
    assert r.headers["content-type"].startswith("text/csv") and "attachment" in r.headers["content-disposition"]
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "user_id,window,check_in,check_out,check_in_score,check_out_score"
    assert lines[1].startswith("obama,") and len(lines) == 2
    yesterday = today - dt.timedelta(days=1)
    empty = s.get(url + f"/admin/attendance.csv?since={yesterday}&until={yesterday}").content.decode("utf-8-sig")
    assert empty.splitlines()[1:] == []
    assert requests.get(href).url.endswith("/admin/login")        # no session, no export

    # events, the status page in Chinese, and the same page on a phone-sized screen
    d.get(url + "/admin/events")
    assert wait_for(lambda: "decision" in find(By.ID, "event-list").text, 10)
    shot(d, out_dir, "10-events")
    d.get(url + "/admin/lang/zh?next=/admin/")
    assert "设备状态" in d.page_source
    shot(d, out_dir, "11-status-zh")
    d.set_window_size(390, 844)
    d.get(url + "/admin/live")
    assert d.execute_script("return document.documentElement.scrollWidth") <= 390
    shot(d, out_dir, "12-live-phone")
