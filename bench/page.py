"""Kiosk page benchmark (JSON): `story/partial` event → words on screen (median of 20), page weight.

A real broker and web service, the page in headless Chromium; each partial carries a marker word and the
page records (Date.now) when the marker appears in the scene text; both clocks are this machine's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from bench import machine
from bench.chromium import headless_chromium
from kiosk import broker
from kiosk.bus import Bus
from kiosk.config import BrokerConfig, Settings, WebConfig
from kiosk.events import PresenceEvent, StoryPartialEvent, Topics
from kiosk.service import broker_address
from kiosk.web.service import WebService

WATCH_TEXT = """
window.__seen = {};
new MutationObserver(() => {
  const text = document.getElementById('scene-text').textContent;
  const m = text.match(/marker(\\d+)/);
  if (m && !(m[1] in window.__seen)) window.__seen[m[1]] = Date.now();
}).observe(document.getElementById('scene-text'), {childList: true, characterData: true, subtree: true});
"""


def page_weight(base: str) -> dict[str, int]:
    sizes = {}
    for path in ("/", "/static/kiosk.css", "/static/kiosk.js"):
        with urllib.request.urlopen(base + path) as response:
            sizes[path] = len(response.read())
    return sizes | {"total_bytes": sum(sizes.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-page-") as tmp:
        run_dir = Path(tmp)
        port = broker.free_port()
        mosquitto = broker.MosquittoProcess(broker.render(run_dir, port, run_dir / "secrets"))
        mosquitto.start()
        settings = Settings(
            kiosk_id=f"page{uuid.uuid4().hex[:6]}",
            run_dir=run_dir,
            broker=BrokerConfig(port=port, secrets_dir=run_dir / "secrets"),
            web=WebConfig(port=broker.free_port()),
        )
        web = WebService(settings)
        web.start()
        threading.Thread(target=web.loop, daemon=True).start()
        topics = Topics(settings.kiosk_id)
        camera = Bus(broker_address(settings, "camera"), "bench-page-camera", persistent=False)
        teller = Bus(broker_address(settings, "story"), "bench-page-story", persistent=False)
        for bus in (camera, teller):
            bus.start()
            bus.wait_connected(10)
        driver = headless_chromium(Path(tempfile.mkdtemp(prefix="kiosk-bench-chromium-")))
        try:
            base = f"http://127.0.0.1:{settings.web.port}"
            driver.get(base + "/")
            time.sleep(1.0)
            driver.execute_script(WATCH_TEXT)
            latencies = []
            for run in range(args.runs):
                session = f"visit{run}"
                camera.publish(topics.presence, PresenceEvent(session_id=session, state="arrived").to_json())
                time.sleep(0.2)
                sent_ms = time.time() * 1000
                teller.publish(
                    topics.story_partial,
                    StoryPartialEvent(
                        session_id=session, seq=0, text=f"A title\nOnce upon a time marker{run} felt calm."
                    ).to_json(),
                )
                deadline = time.time() + 5
                while time.time() < deadline:
                    seen = driver.execute_script(f"return window.__seen['{run}'] || null;")
                    if seen:
                        latencies.append(seen - sent_ms)
                        break
                    time.sleep(0.005)
            weight = page_weight(base)
        finally:
            driver.quit()
            for bus in (camera, teller):
                bus.stop()
            web.stop()
            mosquitto.stop()
    print(
        json.dumps(
            {
                "benchmark": "page",
                "machine": machine.describe(browser="headless Chromium"),
                "partial_to_words_on_screen_ms": {
                    "median": round(statistics.median(latencies), 1),
                    "max": round(max(latencies), 1),
                    "n": len(latencies),
                },
                "page_weight_bytes": weight,
            },
            indent=2,
        )
    )
    return 0 if len(latencies) == args.runs else 1


if __name__ == "__main__":
    raise SystemExit(main())
