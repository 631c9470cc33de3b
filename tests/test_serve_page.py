"""The page of python -m streamssm.serve in a real headless Chromium (Debian's package, driven by
Playwright): a held-out real recording played as the fake microphone shows up as its keyword, and
a real sentence as text."""

import contextlib
import os
import shutil

import numpy as np
import pytest
import soundfile

from serve_helpers import alexa, kws_recognizer, running, sentence  # noqa: F401 (fixtures)

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


@contextlib.contextmanager
def page_listening(chromium, model: str, audio, tmp_path):
    """The page of a server of `model`, started, with `audio` (then 1 s of silence) as its microphone."""
    microphone = tmp_path / "microphone.wav"
    soundfile.write(microphone, np.concatenate([audio, np.zeros(16000, np.float32)]), 16000, subtype="PCM_16")
    with running("streamssm.serve", "--model", model, "--port", "0") as line, chromium.sync_playwright() as driver:
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
            chromium.expect(page.locator("#model")).to_have_text(model, timeout=TIMEOUT_MS)
            page.click("#start")
            chromium.expect(page.locator("#status")).to_contain_text("listening", timeout=TIMEOUT_MS)
            yield page
            page.click("#stop")
            chromium.expect(page.locator("#status")).to_contain_text("end of stream", timeout=TIMEOUT_MS)
        finally:
            browser.close()


def test_page_shows_the_keyword_heard_by_the_browser_microphone(chromium, alexa, tmp_path):
    with page_listening(chromium, "kws", alexa, tmp_path) as page:
        chromium.expect(page.locator("li.keyword").first).to_contain_text("alexa", timeout=TIMEOUT_MS)
        heard = page.locator("li.keyword").all_inner_texts()
    assert heard and all(text.startswith("alexa at") for text in heard), heard


def test_page_shows_the_text_heard_by_the_browser_microphone(chromium, sentence, tmp_path):
    with page_listening(chromium, "asr", sentence, tmp_path) as page:
        chromium.expect(page.locator("p.final").first).to_contain_text("invention", timeout=TIMEOUT_MS)
