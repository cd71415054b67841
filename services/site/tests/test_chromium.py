"""The browser bootstrap: Debian's Chromium is found, or installed, or its absence is
explained. (Removing the real package to prove the install would break parallel runs, so
the missing cases point the helper at a path that does not exist.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tessera.devstack import browsers


@pytest.mark.timeout(900)  # may install Chromium first
def test_chromium_is_found_and_runs(chromium: Path) -> None:
    assert chromium == browsers.find_chromium()
    version = subprocess.run([str(chromium), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "Chromium" in version.stdout


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(browsers, "CHROMIUM", tmp_path / "chromium")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(browsers, "LOCK_FILE", tmp_path / "install.lock")
    monkeypatch.setattr(browsers, "RETRY_DELAY", 0.0)


@pytest.mark.usefixtures("no_chromium")
def test_without_root_a_missing_chromium_fails_with_the_command_to_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(browsers.BrowserUnavailableError, match="apt-get install -y chromium"):
        browsers.ensure_chromium()


@pytest.mark.usefixtures("no_chromium")
def test_as_root_a_failed_install_says_which_command_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr(
        browsers, "INSTALL_COMMANDS", (["/bin/sh", "-c", "echo no mirror >&2; exit 100"],)
    )
    with pytest.raises(browsers.BrowserUnavailableError, match=r"failed \(100\): no mirror"):
        browsers.ensure_chromium()


@pytest.mark.usefixtures("no_chromium")
def test_as_root_an_install_that_leaves_no_binary_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr(browsers, "INSTALL_COMMANDS", (["/bin/true"],))
    with pytest.raises(browsers.BrowserUnavailableError, match="is missing"):
        browsers.ensure_chromium()
