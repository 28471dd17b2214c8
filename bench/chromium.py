"""Headless Chromium as the project's tests and benchmarks drive it (Debian's chromium + chromium-driver)."""

from __future__ import annotations

import shutil
from pathlib import Path

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",  # the kiosk reads stories aloud without a tap, as deployed
)


def headless_chromium(user_data_dir: Path, window: tuple[int, int] = (1080, 1920), network_log: bool = False):
    """A Selenium Chrome driver on a fresh profile; ``network_log`` records every request (performance log)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (*FLAGS, f"--user-data-dir={user_data_dir}", f"--window-size={window[0]},{window[1]}"):
        options.add_argument(flag)
    if network_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
