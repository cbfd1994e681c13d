import json
import os

import pytest

from intelligent_pipeline.settings import KEYS, Settings, SettingsError, defaults


def test_defaults_follow_the_contract(tmp_path):
    s = Settings.in_user_dir(str(tmp_path))
    values = s.as_dict()
    assert values == defaults()
    assert values["ollama.host"] == "http://127.0.0.1:11434"
    assert values["selection.max_loras"] == 3
    assert values["index.recheck_s"] == 10
    assert not os.path.exists(s.path), "reading defaults must not create the file"


def test_update_persists_atomically_and_keeps_unknown_keys(tmp_path):
    path = tmp_path / "default" / "intelligent-pipeline.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"future.key": {"x": 1}, "ollama.model": "qwen2.5"}))
    s = Settings(str(path))
    assert s.get("ollama.model") == "qwen2.5"
    out = s.update({"selection.max_loras": 5, "civitai.enabled": False})
    assert out["selection.max_loras"] == 5 and out["civitai.enabled"] is False
    on_disk = json.loads(path.read_text())
    assert on_disk["future.key"] == {"x": 1}
    assert on_disk["selection.max_loras"] == 5
    assert [p for p in os.listdir(path.parent) if p.startswith(".tmp")] == []
    assert Settings(str(path)).get("civitai.enabled") is False


@pytest.mark.parametrize("key,value", [
    ("selection.max_loras", "3"), ("selection.max_loras", True), ("selection.max_loras", 99),
    ("ollama.enabled", "sometimes"), ("ollama.host", "ftp://x"), ("civitai.extra_base_urls", ["nope"]),
    ("index.exclude_folders", "a,b"), ("monitor.interval_s", -1), ("no.such.key", 1),
])
def test_invalid_values_are_refused_with_the_field(tmp_path, key, value):
    s = Settings(str(tmp_path / "s.json"))
    with pytest.raises(SettingsError) as e:
        s.update({key: value})
    assert e.value.field == key
    assert not (tmp_path / "s.json").exists(), "a refused change writes nothing"


def test_external_edits_are_picked_up_without_restart(tmp_path):
    path = tmp_path / "s.json"
    s = Settings(str(path))
    assert s.get("ollama.timeout_s") == 20
    path.write_text(json.dumps({"ollama.timeout_s": 5}))
    os.utime(path, ns=(1, 10**18))  # make sure the mtime differs from "missing"
    assert s.get("ollama.timeout_s") == 5


def test_broken_file_falls_back_to_defaults_and_is_left_alone(tmp_path, caplog):
    path = tmp_path / "s.json"
    path.write_text("{not json")
    s = Settings(str(path))
    assert s.get("selection.max_loras") == 3
    assert "unreadable" in caplog.text
    assert path.read_text() == "{not json"


def test_invalid_value_in_file_is_ignored_per_key(tmp_path, caplog):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"selection.max_loras": "lots", "ollama.model": "mistral"}))
    s = Settings(str(path))
    assert s.get("selection.max_loras") == 3
    assert s.get("ollama.model") == "mistral"
    assert "selection.max_loras" in caplog.text


def test_every_key_has_a_valid_default():
    for key, spec in KEYS.items():
        assert spec.check(spec.default) is None or spec.default is None, key
