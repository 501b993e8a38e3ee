"""Headless Chromium for the browser tests (the report page and the explorer), shared by them.

``driver(width, height, offline=...)`` yields a selenium Chrome driver that records the browser
console (``driver.get_log("browser")``). ``offline=True`` cuts the network: every host name
resolves to nothing and every request goes to a dead proxy, and Chrome's own network emulation is
set offline, so a page that needed anything from the network would fail visibly.

``artifacts_dir(tmp_path_factory)`` is where the tests leave their screenshots:
``$INITLAB_TEST_ARTIFACTS`` when set, else ``<pytest's temporary base>/artifacts``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None)


def require_chromium() -> None:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("Chromium or chromedriver is not installed (.ci/run installs the Debian packages chromium "
                    "and chromium-driver)")


@contextlib.contextmanager
def driver(width: int = 1280, height: int = 2000, *, offline: bool = False) -> Iterator[Any]:
    require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--hide-scrollbars", f"--window-size={width},{height}"]
    if offline:
        flags += ["--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9",
                  "--proxy-bypass-list=<-loopback>"]
    for flag in flags:
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        # headless Chrome will not make a window narrower than ~500 px: emulate the exact viewport
        drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
        if offline:
            drv.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
        yield drv
    finally:
        drv.quit()


def console_errors(drv: Any) -> list[dict[str, Any]]:
    return [e for e in drv.get_log("browser") if e.get("level") in ("SEVERE", "ERROR")]


def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = os.environ.get("INITLAB_TEST_ARTIFACTS")
    path = Path(env) if env else tmp_path_factory.getbasetemp() / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path
