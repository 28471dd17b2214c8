"""The dashboard service: the kiosk summary, Home Assistant discovery and the staff page.

It reads what the staff account may read (presence, emotion, story, status, metrics, errors, deploy
results; never ``face`` or ``illustration``), keeps a ``KioskView``, publishes the retained ``summary`` and
the model ``update`` states, answers Home Assistant's birth message with discovery, and serves the staff page
behind a login. Pause and reload from the page go out as ``cmd/<action>/set`` (never retained).
"""

from __future__ import annotations

import logging
import secrets
import threading
from pathlib import Path

from kiosk.dashboard.accounts import StaffAccounts, users_file
from kiosk.dashboard.app import StaffFeed, create_staff_app
from kiosk.dashboard.discovery import discovery_messages, update_state
from kiosk.dashboard.sessions import StaffSessions, sessions_file
from kiosk.dashboard.summary import KioskView
from kiosk.dashboard.throttle import LoginThrottle
from kiosk.events import PIPELINE_SERVICES, Command
from kiosk.pageserver import PageServer
from kiosk.service import Service

logger = logging.getLogger(__name__)

SUMMARY_EVERY_S = 5.0
READ_TOPICS = ("presence", "emotion", "story", "status/+", "metrics", "error", "models/deploy")


def session_key(state_dir: Path) -> bytes:
    """The staff session signing key, made once and kept (mode 600) so logins survive a restart."""
    path = state_dir / "staff-session-key"
    if not path.is_file():
        state_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


class DashboardService(Service):
    name = "dashboard"

    def setup(self) -> None:
        cfg = self.settings.dashboard
        self.view = KioskView(
            self.settings.kiosk_id, self.settings.run_dir / "dashboard-state.json", pipeline=PIPELINE_SERVICES
        )
        self.feed = StaffFeed()
        self.changed = threading.Event()
        self._published_updates: dict[str, bytes] = {}
        self.accounts = StaffAccounts(users_file(self.settings))
        if len(self.accounts) == 0:
            logger.warning("no staff accounts yet: add one with `kiosk staff add-user NAME`")
        tls = (cfg.tls_cert_dir / "server.crt", cfg.tls_cert_dir / "server.key") if cfg.tls_cert_dir else None
        app = create_staff_app(
            self.accounts,
            LoginThrottle(cfg.login_attempts, cfg.login_window_s),
            self.feed,
            summary=lambda: self.view.summary().model_dump(by_alias=True),
            health=self.view.health,
            send_command=self.send_command,
            secret_key=session_key(self.settings.run_dir),
            secure_cookie=tls is not None,
            sessions=StaffSessions(
                sessions_file(self.settings),
                idle_s=cfg.session_idle_minutes * 60,
                max_age_s=cfg.session_hours * 3600,
            ),
        )
        self.server = PageServer(app, cfg.host, cfg.port, "staff-page", tls=tls, threads=32)
        logger.info("staff page on %s://%s:%d", self.server.scheme, cfg.host, self.server.port)
        for suffix in READ_TOPICS:
            self.bus.subscribe(f"{self.topics.base}/{suffix}", self._on_bus_message)
        if cfg.home_assistant:
            self.bus.subscribe(f"{cfg.discovery_prefix}/status", self._on_home_assistant_status)
            self.bus.connect_hooks.append(self.publish_discovery)

    def status_detail(self) -> dict[str, str | float | int | bool | None]:
        accounts = getattr(self, "accounts", None)
        return {"staff_accounts": len(accounts) if accounts is not None else 0}

    # -- bus -----------------------------------------------------------------------------------
    def _on_bus_message(self, message) -> None:
        """One message into the view; a refused one becomes a dead letter on ``error`` and the service goes on."""
        payload = bytes(message.payload)
        try:
            entry = self.view.observe(self.topics.relative(message.topic), payload)
        except ValueError as exc:
            self.publish_error(message.topic, str(exc), payload)
            return
        except Exception as exc:  # no payload may stop the dashboard: say so on `error`, keep running
            logger.exception("dashboard: failed on a message on %s", message.topic)
            self.publish_error(message.topic, f"the dashboard failed on it: {type(exc).__name__}", payload)
            return
        if entry is not None:
            self.feed.publish(entry)
            self.changed.set()

    def _on_home_assistant_status(self, message) -> None:
        if bytes(message.payload).strip() == b"online":
            logger.info("Home Assistant (re)started: sending discovery again")
            self.publish_discovery()
            self._published_updates.clear()
            self.changed.set()

    def publish_discovery(self) -> None:
        cfg = self.settings.dashboard
        for topic, payload in discovery_messages(self.topics, cfg.discovery_prefix):
            self.bus.publish(topic, payload, qos=1, retain=True)

    def send_command(self, action: str, value: str) -> None:
        self.bus.publish(self.topics.command(action), Command(value=value).model_dump_json().encode(), qos=1)

    def publish_summary(self) -> None:
        summary = self.view.summary()
        self.bus.publish(self.topics.summary, summary.model_dump_json(by_alias=True).encode(), qos=1, retain=True)
        for task, state in summary.models.items():
            payload = update_state(state.version, state.name)
            if state.version and self._published_updates.get(task) != payload:
                self.bus.publish(self.topics.update(task), payload, qos=1, retain=True)
                self._published_updates[task] = payload

    # -- main loop -----------------------------------------------------------------------------
    def loop(self) -> None:
        self.server.start()
        while not self.stop_event.is_set():
            self.changed.wait(SUMMARY_EVERY_S)
            self.changed.clear()
            if self.stop_event.wait(0.2):  # gather a burst of events into one summary
                break
            if self.bus.connected.is_set():
                self.publish_summary()
        self.server.stop()
