"""The pack's V3 extension: the four nodes, the routes and the on-prompt hook."""
from __future__ import annotations

import logging

from .comfy_api import ComfyExtension, io

log = logging.getLogger(__name__)
_routes_registered = False


def _register_server_parts() -> None:
    """Routes and the on-prompt hook, once per process (no-op when no server runs, as in scripts)."""
    global _routes_registered
    if _routes_registered:
        return
    from server import PromptServer

    instance = getattr(PromptServer, "instance", None)
    if instance is None:
        return
    from . import pnginfo, routes

    routes.register(instance.routes)
    instance.add_on_prompt_handler(pnginfo.on_prompt)
    _routes_registered = True


class IntelligentPipelineExtension(ComfyExtension):
    async def on_load(self) -> None:
        """Newer ComfyUI calls this; 0.3.75 does not, so make_extension starts the scan too."""
        from .runtime import get_runtime

        get_runtime().start_first_scan()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        from .analyzer import IntelligentPromptAnalyzer
        from .lora_stack import IntelligentAutoLoraStack
        from .picker import IntelligentAutoModelPicker
        from .sampler import IntelligentMemoryAwareSampler

        return [IntelligentPromptAnalyzer, IntelligentAutoModelPicker, IntelligentAutoLoraStack,
                IntelligentMemoryAwareSampler]


def make_extension() -> IntelligentPipelineExtension:
    """Called by ComfyUI at start; ComfyUI 0.3.75 never calls `on_load`, so the scan starts here."""
    from .runtime import get_runtime

    _register_server_parts()
    get_runtime().start_first_scan()
    return IntelligentPipelineExtension()
