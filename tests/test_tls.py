"""The TLS listener for remote dashboards: certificates from broker/make-certs.sh, same accounts and ACL."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import uuid
from pathlib import Path

import pytest

from kiosk import broker
from kiosk.bus import BrokerAddress, Bus
from kiosk.config import PROJECT_ROOT, TlsListenerConfig
from kiosk.events import StatusPayload, Topics
from tests.conftest import Recorder, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed"),
]


def make_certs(directory: Path, host: str = "kiosk-test") -> Path:
    subprocess.run(["bash", str(PROJECT_ROOT / "broker" / "make-certs.sh"), str(directory), host], check=True)
    return directory


@pytest.fixture
def tls_broker(tmp_path):
    certs = make_certs(tmp_path / "certs")
    tls = TlsListenerConfig(port=broker.free_port(), bind="127.0.0.1", cert_dir=certs)
    files = broker.render(
        tmp_path / "run", broker.free_port(), tmp_path / "secrets", log_file=tmp_path / "mq.log", tls=tls
    )
    process = broker.MosquittoProcess(files)
    process.start()
    assert wait_for(lambda: broker.port_open(tls.port), timeout=5)
    yield files, tls, broker.ensure_passwords(tmp_path / "secrets"), certs
    process.stop()


def client(port: int, user: str | None, password: str | None, ca: Path | None) -> Bus:
    address = BrokerAddress("127.0.0.1", port, user, password, str(ca) if ca else None)
    bus = Bus(address, f"tls-{user}-{uuid.uuid4().hex[:6]}", persistent=False)
    bus.start()
    return bus


def test_make_certs_gives_a_ca_signed_server_certificate_with_private_keys(tmp_path):
    certs = make_certs(tmp_path / "certs", "kiosk-7")
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", str(certs / "ca.crt"), str(certs / "server.crt")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    text = subprocess.run(
        ["openssl", "x509", "-in", str(certs / "server.crt"), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "DNS:kiosk-7" in text and "IP Address:127.0.0.1" in text
    assert (certs / "server.key").stat().st_mode & 0o077 == 0 and (certs / "ca.key").stat().st_mode & 0o077 == 0
    ca_before = (certs / "ca.crt").read_bytes()
    make_certs(certs, "kiosk-7-renewed")
    assert (certs / "ca.crt").read_bytes() == ca_before  # a renewal keeps the CA dashboards trust


def test_a_dashboard_over_tls_sees_status_under_the_same_acl(tls_broker):
    files, tls, passwords, certs = tls_broker
    topics = Topics("tlskiosk")
    service = client(files.port, "emotion", passwords["emotion"], None)  # loopback, plain
    staff = client(tls.port, "staff", passwords["staff"], certs / "ca.crt")
    try:
        assert service.wait_connected(10) and staff.wait_connected(10)
        seen = Recorder()
        staff.subscribe("kiosk/tlskiosk/#", seen)
        wait_for(lambda: False, timeout=0.3)
        status = StatusPayload(state="online", service="emotion").model_dump_json().encode()
        service.publish(topics.status("emotion"), status).wait_for_publish(5)
        service.publish(topics.face, b'{"probe": "crop"}').wait_for_publish(5)  # not the emotion account's to write
        assert wait_for(lambda: topics.status("emotion") in seen.topics())
        wait_for(lambda: False, timeout=0.3)
        assert topics.face not in seen.topics()
    finally:
        service.stop()
        staff.stop()


@pytest.mark.parametrize(
    "how", ["no TLS", "unknown CA", "wrong password", "anonymous"], ids=lambda h: h.replace(" ", "-")
)
def test_the_tls_listener_refuses(tls_broker, tmp_path, how):
    _, tls, passwords, certs = tls_broker
    other_ca = make_certs(tmp_path / "other") / "ca.crt"
    user, password, ca = "staff", passwords["staff"], certs / "ca.crt"
    if how == "no TLS":
        ca = None
    elif how == "unknown CA":
        ca = other_ca
    elif how == "wrong password":
        password = "wrong"
    else:
        user, password = None, None
    try:
        bus = client(tls.port, user, password, ca)
    except ssl.SSLError:
        return  # refused while setting up TLS: also a refusal
    try:
        assert not bus.wait_connected(2.0)
    finally:
        bus.stop()


def test_the_staff_page_over_https_with_a_secure_cookie(settings, tmp_path):
    import urllib.request

    from kiosk.config import DashboardConfig
    from kiosk.dashboard.service import DashboardService
    from tests.servicekit import running

    certs = make_certs(tmp_path / "certs", "localhost")
    kiosk = settings.model_copy(update={"dashboard": DashboardConfig(port=broker.free_port(), tls_cert_dir=certs)})
    context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    with running(DashboardService(kiosk)):
        with urllib.request.urlopen(f"https://localhost:{kiosk.dashboard.port}/login", context=context) as page:
            assert page.status == 200
            cookie = page.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP is not served
            urllib.request.urlopen(f"http://localhost:{kiosk.dashboard.port}/login", timeout=3)
