"""`make serve` (issue 5, defect 5): every server gets its own state folder, so two servers with
different ports or model libraries never overwrite each other's models link, settings or index cache."""
from __future__ import annotations

import os
import socket

import pytest

from intelligent_pipeline.client import serve
from intelligent_pipeline.client.server import PortInUse, free_port


def test_each_port_gets_its_own_state_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(serve, "PACK_DIR", str(tmp_path))
    a_models, b_models = tmp_path / "lib-a", tmp_path / "lib-b"
    a_models.mkdir()
    b_models.mkdir()
    port_a, port_b = free_port(), free_port()
    a = serve.server_from_args(["--port", str(port_a), "--models", str(a_models)])
    b = serve.server_from_args(["--port", str(port_b), "--models", str(b_models)])
    assert a.state_dir != b.state_dir
    assert a.state_dir == os.path.join(str(tmp_path), ".runtime", f"serve-{port_a}")
    a._prepare()
    b._prepare()
    a._prepare()  # a restart of the first keeps its own library
    assert os.path.realpath(os.path.join(a.state_dir, "models")) == str(a_models)
    assert os.path.realpath(os.path.join(b.state_dir, "models")) == str(b_models)


def test_state_folder_can_be_named(tmp_path):
    s = serve.server_from_args(["--port", "8188", "--state", str(tmp_path / "mine")])
    assert s.state_dir == str(tmp_path / "mine")


def test_a_second_server_on_a_busy_port_changes_nothing_of_the_first(tmp_path, monkeypatch):
    """`make serve MODELS_DIR=other` while a server runs on the port must not relink that server's
    library (same port, so the same state folder) before finding the port taken."""
    monkeypatch.setattr(serve, "PACK_DIR", str(tmp_path))
    first_models, other_models = tmp_path / "mine", tmp_path / "other"
    first_models.mkdir()
    other_models.mkdir()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as running:
        running.bind(("127.0.0.1", 0))
        running.listen()
        port = running.getsockname()[1]
        first = serve.server_from_args(["--port", str(port), "--models", str(first_models)])
        first.port = 0  # prepared as the running server once was (before it bound the port)
        first._prepare()
        first.port = port
        second = serve.server_from_args(["--port", str(port), "--models", str(other_models)])
        assert second.state_dir == first.state_dir
        with pytest.raises(PortInUse, match=str(port)):
            second._prepare()
    assert os.path.realpath(os.path.join(first.state_dir, "models")) == str(first_models)
