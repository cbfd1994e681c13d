"""Path handling with Windows names (ntpath) as well as POSIX ones (posixpath): model roots, the
`exclude_folders` setting and paths inside a root (Lora-Manager's `preview_url`)."""
from __future__ import annotations

import ntpath
import posixpath

import pytest

from intelligent_pipeline.metadata.index import _Excludes
from intelligent_pipeline.metadata.paths import StaticModelPaths, inside_root

WIN_ROOT = "C:\\ComfyUI\\models\\loras"


@pytest.mark.parametrize(("path", "expected"), [
    ("C:\\ComfyUI\\models\\loras\\previews\\b.jpg", "previews/b.jpg"),
    ("C:/ComfyUI/models/loras/sub/b.png", "sub/b.png"),  # forward slashes are separators too
    ("c:\\comfyui\\MODELS\\Loras\\x.png", "x.png"),  # Windows paths are case-insensitive
    ("C:\\ComfyUI\\models\\loras\\a\\..\\b.png", "b.png"),
    ("D:\\ComfyUI\\models\\loras\\b.png", None),  # another drive: commonpath raises ValueError
    ("C:\\ComfyUI\\models\\lorasX\\b.png", None),  # a sibling that shares the prefix
    ("C:\\ComfyUI\\models\\loras\\..\\secret.png", None),
    ("C:\\ComfyUI\\models\\loras", None),  # the root itself is no file in it
    ("previews\\b.jpg", None),  # relative: not trusted
    ("\\\\nas\\share\\b.png", None),
    ("", None),
])
def test_inside_root_with_windows_paths(path: str, expected: str | None) -> None:
    assert inside_root(WIN_ROOT, path, ntpath) == expected


@pytest.mark.parametrize(("root", "path", "expected"), [
    ("\\\\nas\\share\\loras", "\\\\nas\\share\\loras\\a\\b.png", "a/b.png"),  # UNC
    ("\\\\nas\\share\\loras", "\\\\NAS\\Share\\loras\\b.png", "b.png"),
    ("\\\\nas\\share\\loras", "\\\\nas\\other\\loras\\b.png", None),  # another share
    ("\\\\nas\\share\\loras", "C:\\loras\\b.png", None),
    ("D:\\", "D:\\x\\y.png", "x/y.png"),  # a drive root as the model folder
    ("C:/ComfyUI/models/loras/", "C:\\ComfyUI\\models\\loras\\z.webp", "z.webp"),
])
def test_inside_root_with_unc_and_drive_roots(root: str, path: str, expected: str | None) -> None:
    assert inside_root(root, path, ntpath) == expected


@pytest.mark.parametrize(("path", "expected"), [
    ("/m/loras/p/b.jpg", "p/b.jpg"),
    ("/m/loras//p/./b.jpg", "p/b.jpg"),
    ("/m/lorasX/b.jpg", None),
    ("/m/loras/../x.jpg", None),
    ("/M/loras/x.jpg", None),  # POSIX paths are case-sensitive
    ("/m/loras", None),
    ("p/b.jpg", None),
    ("/m/loras/a\\b.png", "a\\b.png"),  # a backslash is part of a POSIX name, not a separator
])
def test_inside_root_with_posix_paths(path: str, expected: str | None) -> None:
    assert inside_root("/m/loras", path, posixpath) == expected


def test_model_roots_from_a_windows_models_folder() -> None:
    paths = StaticModelPaths.from_models_dir("C:/ComfyUI/models", pathmod=ntpath)
    assert paths.roots("lora") == ["C:\\ComfyUI\\models\\loras"]
    assert paths.roots("text_encoder") == ["C:\\ComfyUI\\models\\text_encoders", "C:\\ComfyUI\\models\\clip"]
    unc = StaticModelPaths.from_models_dir("\\\\nas\\share\\models", pathmod=ntpath)
    assert unc.roots("checkpoint") == ["\\\\nas\\share\\models\\checkpoints"]
    explicit = StaticModelPaths({"lora": ["D:\\Loras\\..\\More Loras\\"]}, pathmod=ntpath)
    assert explicit.roots("lora") == ["D:\\More Loras"]


def test_model_roots_from_a_posix_models_folder() -> None:
    paths = StaticModelPaths.from_models_dir("/srv/comfy/models/", pathmod=posixpath)
    assert paths.roots("lora") == ["/srv/comfy/models/loras"]
    assert paths.roots("diffusion_model") == ["/srv/comfy/models/diffusion_models", "/srv/comfy/models/unet"]
    assert "/srv/comfy/models/vae" in paths.all_roots()
    with pytest.raises(ValueError, match="unknown model kinds"):
        StaticModelPaths({"loras": ["/x"]}, pathmod=posixpath)


def test_exclude_folders_with_windows_paths() -> None:
    ex = _Excludes.parse(["Archive", "D:\\Models\\old", "nested/skip", "deep\\er", "C:/Models/Other", "  "],
                         pathmod=ntpath)
    assert ex.matches("C:\\Models\\loras\\archive", "archive")  # names: case-insensitive on Windows
    assert ex.matches("C:\\Models\\loras\\x\\ARCHIVE", "x/ARCHIVE")
    assert ex.matches("d:\\models\\OLD", "OLD")  # absolute: normalised case and separators
    assert ex.matches("C:\\Models\\Other", "")
    assert ex.matches("C:\\Models\\loras\\nested\\skip", "nested/skip")
    assert ex.matches("C:\\Models\\loras\\Nested\\Skip", "Nested/Skip")
    assert ex.matches("C:\\Models\\loras\\deep\\er", "deep/er")  # a backslash in the setting is a separator
    assert not ex.matches("C:\\Models\\loras\\keep", "keep")
    assert not ex.matches("E:\\Models\\old", "old")  # same folder name, another drive
    assert not ex.matches("C:\\Models\\loras\\x\\nested\\skip", "x/nested/skip")  # relative to a root only


def test_exclude_folders_with_posix_paths() -> None:
    ex = _Excludes.parse(["archive", "/m/old", "nested/skip/", "a\\b"], pathmod=posixpath)
    assert ex.matches("/m/loras/archive", "archive")
    assert not ex.matches("/m/loras/Archive", "Archive")  # case-sensitive
    assert ex.matches("/m/old", "old") and not ex.matches("/m/OLD", "OLD")
    assert ex.matches("/m/loras/nested/skip", "nested/skip")
    assert ex.matches("/m/loras/a\\b", "a\\b")  # a folder whose name has a backslash
    assert not ex.matches("/m/loras/a/b", "a/b")


def test_exclude_lists_compare_equal_by_content() -> None:
    assert _Excludes.parse(["a", "/x"], pathmod=posixpath) == _Excludes.parse(["/x", "a"], pathmod=posixpath)
    assert _Excludes.parse(["a"]) != _Excludes.parse(["b"])
