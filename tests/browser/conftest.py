"""A real ComfyUI server and a headless Debian chromium that opens its editor, driven over the DevTools protocol.

The server is the one the integration tests use (`ComfyServer`), with its own temporary state and a models
folder made of symlinks to the synthetic library. Chromium (`make browser` installs it) gets a temporary
profile and HOME, a DevTools port of its own choosing (read back from `DevToolsActivePort`, so no port race),
and is stopped with its whole process group at the end. Without chromium the browser tests are skipped,
except under `CI=true`, where they fail.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from typing import Any

import pytest

from intelligent_pipeline.client.server import ComfyServer, find_comfyui

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1920,1080"]
VIEWPORT = (1920, 1080)


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives the real ComfyUI frontend in headless chromium")


def _unavailable(reason: str):
    """Skip, but fail under CI: there chromium is part of the set-up (`make browser`)."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: browser tests must run)", pytrace=False)
    pytest.skip(reason)


def find_chromium() -> str | None:
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return shutil.which(explicit)
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Abort(Exception):
    """Raised by a wait's check when waiting longer is pointless."""


def wait_until(check, timeout: float, what: str, interval: float = 0.1):
    """Poll `check()` until it returns something truthy; exceptions (but `Abort`) count as 'not yet'."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except Abort:
            raise
        except Exception as e:  # not ready yet
            last_error = e
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}"
                               + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(interval)


@pytest.fixture(scope="session")
def poll():
    """`wait_until` for the tests (test files are not a package: they take it as a fixture)."""
    return wait_until


class Page:
    """Just enough of CDP: evaluate JavaScript, wait for a condition, screenshot; console errors are kept."""

    def __init__(self, ws_url: str, timeout: float = 60.0):
        import websocket  # the dev extra; imported here so a missing package fails the fixture, not collection

        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self._id = 0
        self.console: list[tuple[str, str]] = []
        self.call("Runtime.enable")
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=VIEWPORT[0], height=VIEWPORT[1],
                  deviceScaleFactor=1, mobile=False)

    def _note(self, message: dict) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.console.append((params.get("type", "log"), text))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.console.append(("exception", str(details.get("exception", {}).get("description")
                                                  or details.get("text"))))

    def call(self, method: str, **params: Any) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self._note(message)

    def js(self, expression: str) -> Any:
        """Evaluate an expression (a promise is awaited) and return its JSON value."""
        result = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise RuntimeError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float, what: str | None = None) -> Any:
        return wait_until(lambda: self.js(expression), timeout, what or expression)

    def errors(self) -> list[str]:
        return [text for kind, text in self.console if kind in ("error", "exception")]

    def screenshot(self, path: str) -> str:
        shot = self.call("Page.captureScreenshot", format="png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        try:
            self.ws.close()
        except OSError:
            pass


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = find_chromium()
    if not path:
        _unavailable("chromium not found: `make browser` installs Debian's chromium (needs root), "
                     "or set CHROMIUM to a chromium binary")
    return path


@pytest.fixture(scope="session")
def server(tmp_path_factory, chromium_path, linked_models) -> ComfyServer:
    base = tmp_path_factory.mktemp("comfy_browser")
    models = linked_models()
    state = base / "state"
    # a returning user: no first-run templates dialog over the canvas
    (state / "user" / "default").mkdir(parents=True)
    (state / "user" / "default" / "comfy.settings.json").write_text(json.dumps({"Comfy.TutorialCompleted": True}))
    settings = {"cache.dir": str(state / "user" / "civitai_cache"), "index.cache_dir": str(state / "user" / "index_cache"),
                "civitai.enabled": False, "ollama.enabled": False}
    comfy = ComfyServer(comfyui_path=find_comfyui(), state_dir=str(state), models_dir=models, settings=settings)
    comfy.start()
    try:
        yield comfy
    finally:
        comfy.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory, chromium_path):
    """A headless chromium with one blank tab; yields (process, DevTools base URL). Module-scoped: the editor's
    canvas redraws all the time, so chromium is stopped as soon as the browser tests are done."""
    base = tmp_path_factory.mktemp("chromium")
    profile, home = base / "profile", base / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), XDG_CACHE_HOME=str(home / ".cache"))
    with open(base / "chromium.log", "wb") as log:
        proc = subprocess.Popen([chromium_path, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                 "--remote-debugging-port=0", "about:blank"],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    try:
        def devtools_port():
            if proc.poll() is not None:
                raise Abort(f"chromium exited with {proc.returncode}: {(base / 'chromium.log').read_text()[-2000:]}")
            lines = (profile / "DevToolsActivePort").read_text().splitlines()
            return int(lines[0]) if len(lines) >= 2 else None

        try:
            port = wait_until(devtools_port, 30, "chromium's DevTools port")
        except TimeoutError:
            raise RuntimeError(f"chromium gave no DevTools port; log: {(base / 'chromium.log').read_text()[-2000:]}") from None
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        try:  # renderer/zygote children left behind by the browser process, if any
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def editor(browser, server):
    """The editor at the server's URL, loaded: `window.app` with its graph and the extensions registered."""
    _proc, devtools = browser

    def blank_tab():
        with urllib.request.urlopen(devtools + "/json/list", timeout=5) as r:
            return next((t for t in json.load(r) if t["type"] == "page"), None)

    tab = wait_until(blank_tab, 30, "chromium's first tab")
    page = Page(tab["webSocketDebuggerUrl"])
    try:
        page.call("Page.navigate", url=server.url + "/")
        page.wait_for("!!(window.app && window.app.graph && window.app.canvas && window.LiteGraph"
                      " && window.app.extensionManager)", 60, "the editor (window.app and its graph)")
        page.wait_for("!!LiteGraph.registered_node_types['IntelligentAutoModelPicker']", 30,
                      "the pack's nodes to be registered")
        yield page
    finally:
        page.close()
