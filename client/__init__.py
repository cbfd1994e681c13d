"""Python client and CLI over a ComfyUI server's `/prompt` API (no ComfyUI import needed)."""
from .api import ComfyClient, ComfyError
from .generate import GeneratedImage, generate

__all__ = ["ComfyClient", "ComfyError", "GeneratedImage", "generate"]
