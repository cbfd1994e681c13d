"""The seam between the index and whoever knows where models live.

Inside ComfyUI, `nodes/` hands the index a provider backed by `folder_paths`; tests and the
CLI hand it a `StaticModelPaths`. The index never imports ComfyUI.
"""
from __future__ import annotations

import os
from typing import Iterable, Mapping, Protocol

from .records import FOLDER_KINDS


class ModelPaths(Protocol):
    def roots(self, kind: str) -> list[str]:
        """Absolute folders that hold models of `kind` (a key of FOLDER_KINDS)."""
        ...


class StaticModelPaths:
    """Model roots given explicitly: `{"checkpoint": ["/models/checkpoints"], ...}`."""

    def __init__(self, roots: Mapping[str, Iterable[str]]):
        unknown = set(roots) - set(FOLDER_KINDS)
        if unknown:
            raise ValueError(f"unknown model kinds: {sorted(unknown)}")
        self._roots = {k: [os.path.abspath(p) for p in v] for k, v in roots.items()}

    @classmethod
    def from_models_dir(cls, models_dir: str) -> "StaticModelPaths":
        """A folder laid out like ComfyUI's `models/` (checkpoints/, loras/, vae/, ...)."""
        roots: dict[str, list[str]] = {}
        for kind, folder in FOLDER_KINDS.items():
            roots[kind] = [os.path.join(models_dir, folder)]
        roots["text_encoder"].append(os.path.join(models_dir, "clip"))
        roots["diffusion_model"].append(os.path.join(models_dir, "unet"))
        return cls(roots)

    def roots(self, kind: str) -> list[str]:
        return list(self._roots.get(kind, []))

    def all_roots(self) -> list[str]:
        return [p for paths in self._roots.values() for p in paths]
