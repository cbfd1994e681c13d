"""A small synchronous client for ComfyUI's HTTP API and the pack's routes (standard library only)."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any


class ComfyError(RuntimeError):
    def __init__(self, message: str, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class OutputImage:
    filename: str
    subfolder: str
    type: str


class ComfyClient:
    def __init__(self, base_url: str = "http://127.0.0.1:8188", timeout: float = 60.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.client_id = uuid.uuid4().hex

    def _request(self, method: str, path: str, body: Any = None, raw: bool = False) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data is not None else {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                payload = r.read()
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", "replace")
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            raise ComfyError(f"{method} {path} -> {e.code}: {text[:2000]}", e.code, parsed) from None
        except (urllib.error.URLError, OSError) as e:
            raise ComfyError(f"{method} {path}: no answer from {self.base_url} ({e})") from None
        return payload if raw else json.loads(payload or b"null")

    def get(self, path: str) -> Any:
        return self._request("GET", path)

    def post(self, path: str, body: Any) -> Any:
        return self._request("POST", path, body)

    # ComfyUI's own API
    def queue(self, graph: dict, extra_pnginfo: dict | None = None) -> str:
        body: dict[str, Any] = {"prompt": graph, "client_id": self.client_id}
        if extra_pnginfo is not None:
            body["extra_data"] = {"extra_pnginfo": extra_pnginfo}
        answer = self.post("/prompt", body)
        if answer.get("node_errors"):
            raise ComfyError(f"the graph was refused: {answer['node_errors']}", 400, answer)
        return str(answer["prompt_id"])

    def wait(self, prompt_id: str, timeout: float = 600.0, poll_s: float = 0.25) -> dict:
        """The history entry of a finished prompt; raises if it failed or took too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = self.get(f"/history/{urllib.parse.quote(prompt_id)}")
            entry = history.get(prompt_id) if isinstance(history, dict) else None
            if entry:
                status = entry.get("status") or {}
                if status.get("status_str") == "error":
                    messages = [m for m in status.get("messages", []) if m and m[0] == "execution_error"]
                    detail = messages[0][1].get("exception_message") if messages else "unknown error"
                    raise ComfyError(f"the prompt failed: {detail}", None, entry)
                if status.get("completed", True):
                    return entry
            time.sleep(poll_s)
        raise ComfyError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")

    def run(self, graph: dict, extra_pnginfo: dict | None = None, timeout: float = 600.0) -> dict:
        return self.wait(self.queue(graph, extra_pnginfo), timeout)

    @staticmethod
    def images(entry: dict) -> list[OutputImage]:
        out = []
        for node_output in (entry.get("outputs") or {}).values():
            for img in node_output.get("images", []) or []:
                out.append(OutputImage(img["filename"], img.get("subfolder", ""), img.get("type", "output")))
        return out

    def image_bytes(self, image: OutputImage) -> bytes:
        query = urllib.parse.urlencode({"filename": image.filename, "subfolder": image.subfolder, "type": image.type})
        return self._request("GET", f"/view?{query}", raw=True)

    # The pack's routes
    def plan(self, prompt: str, **fields: Any) -> dict:
        return self.post("/intelligent/api/plan", {"prompt": prompt, **fields})

    def stats(self) -> dict:
        return self.get("/intelligent/api/stats")
