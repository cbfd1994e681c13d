"""`generate("a sunset")`: drive a running ComfyUI server through the pack's shipped workflow."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .api import ComfyClient
from .graphs import plan_from_png, prompt_to_image_graph


@dataclass(frozen=True)
class GeneratedImage:
    filename: str
    subfolder: str
    png: bytes
    plan: dict | None

    def save(self, path: str) -> str:
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(self.png)
        os.replace(tmp, path)
        return path


def generate(prompt: str, *, server: str = "http://127.0.0.1:8188", negative_prompt: str = "", style: str = "auto",
             quality: str = "balanced", seed: int = 0, timeout: float = 900.0, **widgets: Any) -> list[GeneratedImage]:
    """Queue the prompt-to-image workflow on `server`, wait, and return the saved PNGs with their plans."""
    client = ComfyClient(server)
    graph = prompt_to_image_graph(prompt, negative_prompt=negative_prompt, style=style, quality=quality, seed=seed,
                                  **widgets)
    entry = client.run(graph, extra_pnginfo={}, timeout=timeout)
    out = []
    for image in client.images(entry):
        data = client.image_bytes(image)
        out.append(GeneratedImage(image.filename, image.subfolder, data, plan_from_png(data)))
    return out
