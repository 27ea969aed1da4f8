"""The operator dashboard at /ui, driven in headless Chromium: sign in, a device appears, its readings arrive live."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import new_device
from iotsim.api import RegistryClient
from iotsim.device import Device
from stack import DockerStack, docker

pytestmark = pytest.mark.docker

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--window-size=1440,900")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Debian's Chromium through Debian's chromedriver, with a fresh profile (nothing is downloaded)."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (scripts/test.sh installs them)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev dependency group)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, script: str, timeout: float, *args: Any) -> Any:
    """Evaluate a JavaScript expression (`return ...`) until it is truthy; return it, or fail at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(script, *args)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout} s: {script}")
        time.sleep(0.02)


def publish_wave(device: Device, count: int, start: int = 0, pause: float = 0.0) -> int:
    """Publish readings that trace a gentle curve (the simulator's random ones would look like noise); last seq."""
    seq = 0
    for i in range(start, start + count):
        seq = device.seq + 1
        body = {"seq": seq, "ts": time.time(), "temperature": round(21.5 + 2.5 * math.sin(i / 6), 2),
                "humidity": round(45 + 8 * math.cos(i / 9), 1), "battery": max(10, 95 - i // 10)}
        assert device.publish(json.dumps(body).encode()) == seq
        time.sleep(pause)
    assert device.wait_acked(10)
    return seq


def test_sign_in_see_a_device_appear_and_a_reading_arrive_within_2_s(
    stack: DockerStack, api: RegistryClient, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{stack.api_url}/ui")
    browser.find_element(By.ID, "token").send_keys(stack.admin_token)
    browser.find_element(By.ID, "sign-in").click()
    wait_for(browser, "return !document.getElementById('dashboard-view').hidden", 10)
    assert stack.admin_token not in browser.current_url
    assert browser.execute_script("return sessionStorage.getItem('iot-operator-token')") == stack.admin_token

    device = new_device(api, stack.mqtt_url, "greenhouse sensor")
    appeared = time.monotonic()
    row = f"#device-table tr[data-id='{device.device_id}']"
    wait_for(browser, "return document.querySelector(arguments[0])", 5, row)
    print(f"device row appeared {time.monotonic() - appeared:.2f} s after registration")
    last = publish_wave(device, 40, pause=0.1)  # some history for the chart

    browser.find_element(By.CSS_SELECTOR, row).click()
    wait_for(browser, "return document.getElementById('chart-box').dataset.lastSeq === arguments[0]", 10, str(last))
    wait_for(browser, "return document.getElementById('stream-state').dataset.state === 'ok'", 10)

    delays = []
    for i in range(40, 60):  # each new reading must be on the chart within 2 s of its publication
        published = time.monotonic()
        seq = publish_wave(device, 1, start=i)
        wait_for(browser, "return document.getElementById('chart-box').dataset.lastSeq === arguments[0]", 2.0,
                 str(seq))
        delays.append(time.monotonic() - published)
        time.sleep(0.1)
    delays.sort()
    print(f"publish -> on the chart: median {delays[len(delays) // 2]:.2f} s, max {delays[-1]:.2f} s (20 readings)")
    assert browser.find_element(By.ID, "reading-count").text == "60"
    status = browser.find_element(By.CSS_SELECTOR, f"{row} .badge").text
    assert status == "active"

    screenshot = tmp_path / "dashboard.png"
    browser.save_screenshot(str(screenshot))
    print(f"dashboard screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000
    device.close()
    assert stack.admin_token not in docker("logs", stack.name("registry"))


def test_the_page_loads_nothing_from_elsewhere_and_holds_no_data(stack: DockerStack) -> None:
    with urllib.request.urlopen(f"{stack.api_url}/ui", timeout=5) as response:
        page = response.read().decode()
        policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "form-action 'none'" in policy
    assert "http://" not in page and "https://" not in page
    for name in ("dashboard.js", "chart.js", "dashboard.css"):
        with urllib.request.urlopen(f"{stack.api_url}/ui/{name}", timeout=5) as response:
            assert "https://" not in response.read().decode()
    for path in ("/ui/../app.py", "/ui/app.py", "/ui/%2e%2e%2fapp.py"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{stack.api_url}{path}", timeout=5)
        assert refused.value.code == 404


def test_the_readings_stream_needs_an_operator_token(stack: DockerStack, api: RegistryClient) -> None:
    device = api.register(name="stream-auth")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{stack.api_url}/devices/{device['id']}/readings/stream", timeout=5)
    assert refused.value.code == 401
