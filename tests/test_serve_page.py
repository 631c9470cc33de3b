"""The page of python -m streamssm.serve in a real headless Chromium (Debian's package, driven by
Playwright): a held-out real recording played as the fake microphone shows up as its keyword."""

import os
import shutil

import numpy as np
import pytest
import soundfile

from serve_helpers import alexa, kws_recognizer, running  # noqa: F401 (fixtures)

CHROMIUM = "/usr/bin/chromium"
# headless, offline and quiet (this machine reaches no network), a fake microphone playing a file
# in a loop and no permission prompt; a fake audio output keeps the page's audio graph running.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--disable-audio-output",
]
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def chromium():
    if shutil.which(CHROMIUM) is None:
        message = f"{CHROMIUM} is missing: scripts/install.sh installs Debian's chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return pytest.importorskip("playwright.sync_api")


def test_page_shows_the_keyword_heard_by_the_browser_microphone(chromium, alexa, tmp_path):
    microphone = tmp_path / "alexa.wav"
    soundfile.write(microphone, np.concatenate([alexa, np.zeros(16000, np.float32)]), 16000, subtype="PCM_16")
    with running("streamssm.serve", "--model", "kws", "--port", "0") as line, chromium.sync_playwright() as driver:
        url = line.split(" on ")[1].split()[0]
        browser = driver.chromium.launch_persistent_context(
            tmp_path / "profile",
            executable_path=CHROMIUM,
            headless=True,
            args=[*FLAGS, f"--use-file-for-fake-audio-capture={microphone}"],
        )
        try:
            page = browser.new_page()
            page.goto(url)
            chromium.expect(page.locator("#model")).to_have_text("kws", timeout=TIMEOUT_MS)
            page.click("#start")
            chromium.expect(page.locator("#status")).to_contain_text("listening", timeout=TIMEOUT_MS)
            first = page.locator("li.keyword").first
            chromium.expect(first).to_contain_text("alexa", timeout=TIMEOUT_MS)
            page.click("#stop")
            chromium.expect(page.locator("#status")).to_contain_text("end of stream", timeout=TIMEOUT_MS)
            heard = page.locator("li.keyword").all_inner_texts()
        finally:
            browser.close()
    assert heard and all(text.startswith("alexa at") for text in heard), heard
