"""What the pack knows about the user's model files: the index, its records, and the readers
behind them (safetensors headers, sidecars of other tools, architecture detection).

Pure Python: importable without ComfyUI or torch.
"""
from __future__ import annotations

from .events import PROGRESS_EVENT, EventSink
from .index import ModelIndex, ScanResult
from .paths import ModelPaths, StaticModelPaths
from .records import ARCHITECTURES, FOLDER_KINDS, ExampleParams, ModelRecord
from .safetensors_header import HeaderError, SafetensorsHeader, read_header
from .store import IndexStore

__all__ = [
    "ARCHITECTURES",
    "EventSink",
    "ExampleParams",
    "FOLDER_KINDS",
    "HeaderError",
    "IndexStore",
    "ModelIndex",
    "ModelPaths",
    "ModelRecord",
    "PROGRESS_EVENT",
    "SafetensorsHeader",
    "ScanResult",
    "StaticModelPaths",
    "read_header",
]
