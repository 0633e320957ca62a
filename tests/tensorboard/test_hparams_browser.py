"""End to end in headless Chromium: TensorBoard's HParams dashboard lists every trial of the sweep.

Needs Debian's `chromium` and `chromium-driver` (installed by .ci/setup). Skipped on a developer machine
without them, but fails under CI (any non-empty CI, tests/capabilities.py) so a missing browser cannot pass
unnoticed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

from tests.capabilities import require_modules, require_programs
from tests.conftest import PROJECT_ROOT
from tests.tensorboard.conftest import TRIALS

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
BROWSER_INSTALL = "`bash .ci/setup` as root (apt-get install -y chromium chromium-driver)"
CHROMIUM_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1600,900",
]

# Text of every element without children, looking inside the shadow roots TensorBoard's Polymer UI uses.
LEAF_TEXTS = """
const out = [];
(function walk(node) {
  if (node.shadowRoot) walk(node.shadowRoot);
  for (const child of node.children || []) walk(child);
  if (node.nodeType === 1 && node.children.length === 0 && node.tagName !== 'STYLE') {
    const text = node.textContent.trim();
    if (text) out.push(text);
  }
})(document.body);
return out;
"""


def _browser():
    require_programs("chromium", "chromedriver", install=BROWSER_INSTALL)
    require_modules("selenium", install="pip install -e '.[test]' (or `bash .ci/setup`)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium fetch a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}"]:
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))


def test_hparams_dashboard_in_chromium_lists_every_trial(sweep_tensorboard):
    driver = _browser()
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "hparams_dashboard.png"
    try:
        driver.get(f"{sweep_tensorboard.url}/#hparams")
        expected_ids = [f"{name}/tensorboard" for name in TRIALS]
        deadline = time.monotonic() + 60
        while True:
            texts = driver.execute_script(LEAF_TEXTS)
            if all(trial_id in texts for trial_id in expected_ids) and "val_loss" in texts:
                break
            if time.monotonic() > deadline:
                driver.save_screenshot(str(screenshot))
                pytest.fail(f"HParams table never listed {expected_ids}; page shows: {texts[:200]}")
            time.sleep(0.5)
        driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()

    # Each trial is one row: its id followed by its hyperparameters, in the table's column order.
    for name, trial in TRIALS.items():
        row = texts[texts.index(f"{name}/tensorboard"):][:12]
        assert trial["model"] in row, row
        assert any(cell.startswith(f"{trial['lr']:.7f}") for cell in row), row
    # The swept hyperparameters and the validation metric are columns shown by default.
    for column in ("model", "lr", "val_loss"):
        assert column in texts
    assert screenshot.stat().st_size > 10_000
