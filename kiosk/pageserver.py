"""The production WSGI server for both pages (the child's page and the staff page): cheroot.

Why cheroot, not werkzeug's development server, waitress or gunicorn:
- both pages stream Server-Sent Events from state that lives in the service's own process (fed by its MQTT
  client), so the server must run the app in that process, with a thread per open stream;
- the staff page serves HTTPS itself when ``dashboard.tls_cert_dir`` is set (remote carers);
- cheroot (CherryPy's server; pure Python, on PyPI and in Debian as ``python3-cheroot``) is a thread-pool
  server with TLS built in, writes each streamed chunk to the socket as the app yields it, and keeps idle
  keep-alive connections off its worker threads. waitress streams as well but has no TLS; gunicorn has TLS
  but runs the app in forked workers, away from the service's bus client and its in-process SSE fan-out
  (and forking a process whose MQTT threads already run is unsafe).

Streams end when the server stops (``STREAMS_STOP`` in the app's config, read by ``kiosk.sse``): cheroot
waits for its worker threads, and an open page must not hold a service's shutdown for a keepalive period.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from cheroot.ssl.builtin import BuiltinSSLAdapter
from cheroot.wsgi import Server
from flask import Flask

logger = logging.getLogger(__name__)

STREAMS_STOP = "KIOSK_STREAMS_STOP"


class PageServer:
    """One page's server on ``host:port`` (0: any free port), HTTPS when a certificate and key are given."""

    def __init__(
        self, app: Flask, host: str, port: int, name: str, tls: tuple[Path, Path] | None = None, threads: int = 16
    ) -> None:
        self.name = name
        self.streams_stop = threading.Event()
        app.config[STREAMS_STOP] = self.streams_stop
        self.server = Server((host, port), app, numthreads=threads, server_name=name, shutdown_timeout=5)
        if tls is not None:
            certificate, key = tls
            self.server.ssl_adapter = BuiltinSSLAdapter(str(certificate), str(key))
        self.server.prepare()  # binds now: a busy port fails the service's setup, not a thread later
        self.scheme = "https" if tls else "http"
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.server.bind_addr[1]

    def start(self) -> None:
        self._thread = threading.Thread(target=self.server.serve, name=f"{self.name}-http", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.streams_stop.set()
        self.server.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)


def wait_for_page(url: str, timeout: float) -> bool:
    """True once ``url`` answers at all (any HTTP status): the screen starts its browser on a live page."""
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # 503 while the service connects: the page itself is served
        except OSError:
            time.sleep(0.5)
    return False


def main(argv: list[str] | None = None) -> int:
    """``python -m kiosk.pageserver --wait URL``: the screen unit's start condition."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m kiosk.pageserver", description="wait until a page answers")
    parser.add_argument("--wait", required=True, metavar="URL")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    if wait_for_page(args.wait, args.timeout):
        return 0
    logger.error("%s did not answer in %.0f s", args.wait, args.timeout)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
