"""Start and stop a real ComfyUI server (`main.py`) for the demo, `make serve` and the tests.

An isolated server gets its own base folder: `custom_nodes/` holding a link to this pack,
`models/` linking to the model library, and its own temp, user, input and output folders
(ComfyUI empties its temp folder at start and exit, so two servers must never share one).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

PACK_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACK_LINK_NAME = "intelligent_pipeline"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortInUse(RuntimeError):
    """Another program (often another ComfyUI) listens on the port: nothing was prepared or changed."""


def port_is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:`port` (a bind succeeds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _link(target: str, link: str) -> None:
    if os.path.islink(link) and os.path.realpath(link) == os.path.realpath(target):
        return
    if os.path.islink(link) or os.path.isfile(link):
        os.unlink(link)
    elif os.path.isdir(link):
        raise RuntimeError(f"{link} exists and is a real folder: not replacing it")
    os.symlink(target, link)


@dataclass
class ComfyServer:
    comfyui_path: str
    state_dir: str  # base folder for this server's models link, custom_nodes, user, temp, output, input
    models_dir: str | None = None
    port: int = 0
    python: str = sys.executable
    extra_args: list[str] = field(default_factory=list)
    settings: dict | None = None  # written to the user settings file before start
    log_path: str | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _prepare(self) -> list[str]:
        # before anything is linked or written: a server already running on this port may use this
        # state folder, and relinking its models would change the library under it
        if self.port and not port_is_free(self.port):
            raise PortInUse(f"port {self.port} is already in use (another ComfyUI?); "
                            f"{self.state_dir} was left as it was")
        base = os.path.abspath(self.state_dir)
        for sub in ("custom_nodes", "user/default", "temp", "output", "input"):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
        _link(PACK_DIR, os.path.join(base, "custom_nodes", PACK_LINK_NAME))
        if self.models_dir:
            _link(os.path.abspath(self.models_dir), os.path.join(base, "models"))
        else:
            os.makedirs(os.path.join(base, "models"), exist_ok=True)
        if self.settings is not None:
            path = os.path.join(base, "user", "default", "intelligent-pipeline.json")
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                json.dump(self.settings, f, indent=2)
            os.replace(path + ".tmp", path)
        if not self.port:
            self.port = free_port()
        return [self.python, os.path.join(self.comfyui_path, "main.py"), "--cpu", "--listen", "127.0.0.1",
                "--port", str(self.port), "--base-directory", base,
                "--temp-directory", os.path.join(base, "temp"), "--user-directory", os.path.join(base, "user"),
                "--output-directory", os.path.join(base, "output"), "--input-directory", os.path.join(base, "input"),
                "--database-url", "sqlite:///:memory:",
                # the classic output cache: newer ComfyUI drops cached outputs under RAM pressure by default
                "--cache-classic", *self.extra_args]

    def start(self, timeout: float = 240.0) -> "ComfyServer":
        cmd = self._prepare()
        log_file = open(self.log_path or os.path.join(self.state_dir, "comfyui.log"), "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(cmd, cwd=self.comfyui_path, stdout=log_file, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env)
        log_file.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with code {self.process.returncode}; see {self.log_file}")
            try:
                with urllib.request.urlopen(self.url + "/system_stats", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"ComfyUI did not answer on {self.url} within {timeout:.0f} s; see {self.log_file}")

    @property
    def log_file(self) -> str:
        return self.log_path or os.path.join(self.state_dir, "comfyui.log")

    def log_text(self) -> str:
        try:
            with open(self.log_file, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def __enter__(self) -> "ComfyServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def find_comfyui(explicit: str | None = None) -> str:
    """COMFYUI_PATH, else the runtime copy that `make setup` made next to the pack."""
    for candidate in (explicit, os.environ.get("COMFYUI_PATH"), os.path.join(PACK_DIR, ".runtime", "ComfyUI")):
        if candidate and os.path.isfile(os.path.join(candidate, "main.py")):
            return os.path.abspath(candidate)
    raise FileNotFoundError("no ComfyUI found: set COMFYUI_PATH or run `make setup`")


def clear_dir(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
