"""The TLS listener for remote dashboards: certificates from broker/make-certs.sh, same accounts and ACL."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from kiosk import broker
from kiosk.config import PROJECT_ROOT, TlsListenerConfig
from kiosk.events import StatusPayload, Topics
from tests.conftest import RawClient, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed"),
]


def make_certs(directory: Path, host: str = "kiosk-test") -> Path:
    subprocess.run(["bash", str(PROJECT_ROOT / "kiosk" / "broker" / "make-certs.sh"), str(directory), host], check=True)
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


def client(port: int, user: str | None, password: str | None, ca: Path | None, client_id: str | None = None):
    return RawClient(port, user, password, client_id=client_id, ca_file=ca)


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
        assert service.connect() == "Success" and staff.connect() == "Success"
        assert staff.subscribe("kiosk/tlskiosk/#") == ["Granted QoS 1"]
        assert service.publish(topics.face, b'{"probe": "crop"}') == "Not authorized"  # not emotion's to write
        status = StatusPayload(state="online", service="emotion").model_dump_json().encode()
        assert service.publish(topics.status("emotion"), status) == "Success"
        assert staff.wait_message(lambda m: m[0] == topics.status("emotion"))  # after the refused face
        assert [t for t, _, _ in staff.received()] == [topics.status("emotion")]
    finally:
        service.close()
        staff.close()


def test_no_tls_client_can_take_over_a_service_session(tls_broker):
    """The client-id binding holds on the TLS listener too: staff sending the emotion service's id is staff."""
    files, tls, passwords, certs = tls_broker
    topics = Topics("tlskiosk")
    service = client(files.port, "emotion", passwords["emotion"], None, client_id="kiosk-tlskiosk-emotion")
    assert service.connect() == "Success"
    assert service.subscribe(topics.status("emotion")) == ["Granted QoS 1"]
    try:
        for client_id in ("kiosk-tlskiosk-emotion", "emotion"):
            intruder = client(tls.port, "staff", passwords["staff"], certs / "ca.crt", client_id=client_id)
            assert intruder.connect() == "Success"
            intruder.close()
        marker = StatusPayload(state="online", service="emotion").model_dump_json().encode()
        assert service.publish(topics.status("emotion"), marker) == "Success"
        assert service.wait_message(lambda m: m[1] == marker)  # its own connection still carries its traffic
        assert service.disconnects == []
    finally:
        service.close()


EXPECTED_REFUSAL = {
    "no TLS": "dropped",  # plain MQTT to the TLS port: the broker closes the connection unanswered
    "unknown CA": "connection failed: SSLCertVerificationError",
    "wrong password": "Not authorized",
    "anonymous": "Not authorized",
}


@pytest.mark.parametrize("how", list(EXPECTED_REFUSAL), ids=lambda h: h.replace(" ", "-"))
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
    refused, allowed = (
        client(tls.port, user, password, ca),
        client(tls.port, "staff", passwords["staff"], certs / "ca.crt"),
    )
    try:
        assert refused.connect().startswith(EXPECTED_REFUSAL[how])
        assert allowed.connect() == "Success"  # the same listener, with everything right
    finally:
        refused.close()
        allowed.close()


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
