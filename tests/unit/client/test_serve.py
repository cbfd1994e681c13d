"""`make serve` (issue 5, defect 5): every server gets its own state folder, so two servers with
different ports or model libraries never overwrite each other's models link, settings or index cache."""
from __future__ import annotations

import os

from intelligent_pipeline.client import serve


def test_each_port_gets_its_own_state_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(serve, "PACK_DIR", str(tmp_path))
    a_models, b_models = tmp_path / "lib-a", tmp_path / "lib-b"
    a_models.mkdir()
    b_models.mkdir()
    a = serve.server_from_args(["--port", "8188", "--models", str(a_models)])
    b = serve.server_from_args(["--port", "8189", "--models", str(b_models)])
    assert a.state_dir != b.state_dir
    assert a.state_dir == os.path.join(str(tmp_path), ".runtime", "serve-8188")
    a._prepare()
    b._prepare()
    a._prepare()  # a restart of the first keeps its own library
    assert os.path.realpath(os.path.join(a.state_dir, "models")) == str(a_models)
    assert os.path.realpath(os.path.join(b.state_dir, "models")) == str(b_models)


def test_state_folder_can_be_named(tmp_path):
    s = serve.server_from_args(["--port", "8188", "--state", str(tmp_path / "mine")])
    assert s.state_dir == str(tmp_path / "mine")
