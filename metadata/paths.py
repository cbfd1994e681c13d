"""The seam between the index and whoever knows where models live.

Inside ComfyUI, `nodes/` hands the index a provider backed by `folder_paths`; tests and the
CLI hand it a `StaticModelPaths`. The index never imports ComfyUI.
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, Protocol

from .records import FOLDER_KINDS


class ModelPaths(Protocol):
    def roots(self, kind: str) -> list[str]:
        """Absolute folders that hold models of `kind` (a key of FOLDER_KINDS)."""
        ...


class StaticModelPaths:
    """Model roots given explicitly: `{"checkpoint": ["/models/checkpoints"], ...}`.

    `pathmod` is the path module the roots are written for (os.path; ntpath or posixpath in
    tests of the other platform's names)."""

    def __init__(self, roots: Mapping[str, Iterable[str]], pathmod: Any = os.path):
        unknown = set(roots) - set(FOLDER_KINDS)
        if unknown:
            raise ValueError(f"unknown model kinds: {sorted(unknown)}")
        self._roots = {k: [pathmod.abspath(p) for p in v] for k, v in roots.items()}

    @classmethod
    def from_models_dir(cls, models_dir: str, pathmod: Any = os.path) -> "StaticModelPaths":
        """A folder laid out like ComfyUI's `models/` (checkpoints/, loras/, vae/, ...)."""
        roots: dict[str, list[str]] = {}
        for kind, folder in FOLDER_KINDS.items():
            roots[kind] = [pathmod.join(models_dir, folder)]
        roots["text_encoder"].append(pathmod.join(models_dir, "clip"))
        roots["diffusion_model"].append(pathmod.join(models_dir, "unet"))
        return cls(roots, pathmod)

    def roots(self, kind: str) -> list[str]:
        return list(self._roots.get(kind, []))

    def all_roots(self) -> list[str]:
        return [p for paths in self._roots.values() for p in paths]


def inside_root(root: str, path: str, pathmod: Any = os.path) -> str | None:
    """`path` relative to `root` with "/" separators (a loader-style name) when the absolute
    `path` lies strictly inside `root`, else None. Pure: it looks at no file.

    Written for either platform's names through `pathmod`: on Windows, paths on another drive or
    share are outside (commonpath raises ValueError) and case does not matter."""
    if not path or not pathmod.isabs(path):
        return None
    root, path = pathmod.abspath(root), pathmod.abspath(path)
    try:
        if pathmod.normcase(pathmod.commonpath([root, path])) != pathmod.normcase(root):
            return None
        rel = pathmod.relpath(path, root)
    except ValueError:  # another drive or share
        return None
    if rel == pathmod.curdir:
        return None
    return rel.replace(pathmod.sep, "/")
