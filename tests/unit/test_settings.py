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


# --- issue 5: the schema, path settings over HTTP, atomic writes that keep the mode, stale temp files ----------

import ntpath  # noqa: E402
import posixpath  # noqa: E402
import stat  # noqa: E402
import time  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import settings as hyp_settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from intelligent_pipeline import settings as settings_mod  # noqa: E402

CONTRACT_DEFAULTS = {
    "ollama.enabled": "auto", "ollama.host": "http://127.0.0.1:11434", "ollama.model": "llama3.2",
    "ollama.timeout_s": 20, "civitai.enabled": True, "civitai.base_url": "https://civitai.com/api/v1",
    "civitai.extra_base_urls": [], "civitai.min_interval_s": 1.0, "civitai.timeout_s": 15, "civitai.ttl_h": 24,
    "cache.dir": "~/.ml_lib/metadata_cache", "index.cache_dir": None, "index.exclude_folders": [],
    "index.recheck_s": 10, "selection.max_loras": 3, "selection.max_nsfw_level": 2, "monitor.interval_s": 1.0,
    "web.resource_panel": True, "civitai.remote_previews": False,
}
POSIX_ONLY = pytest.mark.skipif(os.name == "nt", reason="symlinks, modes and the umask as POSIX has them")


def keys_read_by_code() -> set[str]:
    """Setting keys that appear as a string in the pack's code outside settings.py (and tests)."""
    import ast

    pack = os.path.dirname(os.path.abspath(settings_mod.__file__))
    found: set[str] = set()
    for folder in ("nodes", "selector", "metadata", "monitor", "client"):
        for dirpath, _dirs, names in os.walk(os.path.join(pack, folder)):
            for name in names:
                if name.endswith(".py"):
                    with open(os.path.join(dirpath, name), encoding="utf-8") as f:
                        tree = ast.parse(f.read())
                    found |= {n.value for n in ast.walk(tree)
                              if isinstance(n, ast.Constant) and n.value in CONTRACT_DEFAULTS}
    return found


def test_every_contract_key_is_accepted_and_served_with_its_default(tmp_path):
    s = Settings.in_user_dir(str(tmp_path))
    assert s.as_dict() == CONTRACT_DEFAULTS
    for key, value in CONTRACT_DEFAULTS.items():
        assert s.update({key: value})[key] == value


def test_the_schema_describes_every_key_in_the_contract_shape():
    schema = settings_mod.schema()
    assert set(schema) == set(CONTRACT_DEFAULTS)
    for key, entry in schema.items():
        assert entry["default"] == CONTRACT_DEFAULTS[key], key
        assert {"type", "default", "section", "label", "tooltip", "in_dialog"} <= set(entry), key
        assert set(entry) <= {"type", "default", "min", "max", "options", "section", "label", "tooltip", "in_dialog"}
        assert isinstance(entry["in_dialog"], bool) and entry["label"] and entry["section"] and entry["tooltip"]
    json.dumps(schema)  # served as JSON as it is


def test_the_dialog_shows_only_keys_whose_code_works():
    shown = {k for k, e in settings_mod.schema().items() if e["in_dialog"]}
    read = keys_read_by_code()
    assert {"selection.max_loras", "index.recheck_s"} <= read  # the search finds the code's reads
    assert shown <= read, f"shown in the dialog but read by no code: {sorted(shown - read)}"
    assert not {k for k in shown if k.startswith(("civitai.", "cache.", "monitor.", "web."))}
    assert {"selection.max_loras", "selection.max_nsfw_level", "index.recheck_s", "index.exclude_folders",
            "ollama.enabled", "ollama.host", "ollama.model", "ollama.timeout_s"} <= shown


def test_validation_uses_the_schema_bounds_and_options(tmp_path):
    s = Settings(str(tmp_path / "s.json"))
    for key, entry in settings_mod.schema().items():
        if "max" in entry:
            assert s.update({key: entry["max"]})[key] == entry["max"]
            assert s.update({key: entry["min"]})[key] == entry["min"]
            for bad in (entry["max"] + 1, entry["min"] - 1, float("nan"), float("inf")):
                with pytest.raises(SettingsError) as e:
                    s.update({key: bad})
                assert e.value.field == key
        if "options" in entry:
            for option in entry["options"]:
                assert s.update({key: option})[key] == option
            with pytest.raises(SettingsError):
                s.update({key: 1})  # 1 == True in Python: still not an option


def _user_dir(tmp_path):
    user = tmp_path / "user"
    (user / "default").mkdir(parents=True)
    return user


@POSIX_ONLY
@pytest.mark.parametrize("key", ["index.cache_dir", "cache.dir"])
def test_a_path_setting_over_the_route_stays_inside_the_user_directory(tmp_path, key):
    user = _user_dir(tmp_path)
    s = Settings.in_user_dir(str(user))
    inside = str(user / "caches" / "index")
    assert s.update({key: inside})[key] == inside
    assert s.update({key: CONTRACT_DEFAULTS[key]})[key] == CONTRACT_DEFAULTS[key]
    (tmp_path / "elsewhere").mkdir()
    os.symlink(str(tmp_path / "elsewhere"), str(user / "escape"))
    for bad in ("/etc", str(tmp_path / "elsewhere"), str(user / ".." / "elsewhere"), str(user / "escape" / "x"),
                "relative/folder", "C:\\x", "\\\\server\\share", str(user) + "\x00", str(user / "a\nb"),
                "~/.ssh"):
        with pytest.raises(SettingsError) as e:
            s.update({key: bad})
        assert e.value.field == key, bad
    assert s.get(key) == CONTRACT_DEFAULTS[key]


def test_text_that_cannot_be_written_as_utf8_is_refused(tmp_path):
    s = Settings(str(tmp_path / "s.json"))
    for key, value in (("ollama.model", "a\ud800b"), ("index.exclude_folders", ["\udfff"])):
        with pytest.raises(SettingsError) as e:
            s.update({key: value})
        assert e.value.field == key
    assert not (tmp_path / "s.json").exists()


def test_a_path_setting_without_a_user_directory_takes_only_its_default(tmp_path):
    s = Settings(str(tmp_path / "s.json"))
    with pytest.raises(SettingsError):
        s.update({"index.cache_dir": str(tmp_path / "x")})
    assert s.update({"index.cache_dir": None})["index.cache_dir"] is None


@pytest.mark.parametrize("pathmod,root,inside,outside", [
    (posixpath, "/srv/comfy/user", ["/srv/comfy/user", "/srv/comfy/user/a/b", "/srv/comfy/user/./a/../b"],
     ["/srv/comfy", "/srv/comfy/user2", "/srv/comfy/user/../x", "/etc/passwd", "relative", "C:\\x", ""]),
    (ntpath, "C:\\ComfyUI\\user", ["C:\\ComfyUI\\user\\cache", "c:\\comfyui\\USER\\cache", "C:/ComfyUI/user/a/b"],
     ["C:\\ComfyUI", "C:\\ComfyUI\\user\\..\\x", "D:\\ComfyUI\\user\\cache", "\\\\server\\share\\user",
      "C:relative", "\\x", "C:\\ComfyUI\\user2"]),
])
def test_folder_inside_handles_posix_and_windows_names(pathmod, root, inside, outside):
    for path in inside:
        assert settings_mod.folder_inside(path, root, pathmod=pathmod), path
    for path in outside:
        assert not settings_mod.folder_inside(path, root, pathmod=pathmod), path


def test_a_path_outside_the_user_directory_comes_only_from_the_environment(tmp_path, caplog):
    user = _user_dir(tmp_path)
    path = user / "default" / settings_mod.FILE_NAME
    path.write_text(json.dumps({"index.cache_dir": str(tmp_path / "outside")}))  # e.g. through /userdata
    s = Settings.in_user_dir(str(user))
    default_dir = str(user / "default")
    assert s.path_setting("index.cache_dir", default_dir, environ={}) == default_dir
    assert "index.cache_dir" in caplog.text
    assert json.loads(path.read_text())["index.cache_dir"] == str(tmp_path / "outside"), "the file is left alone"
    env = {settings_mod.PATH_ENV["index.cache_dir"]: str(tmp_path / "from_env")}
    assert s.path_setting("index.cache_dir", default_dir, environ=env) == str(tmp_path / "from_env")
    s.update({"selection.max_loras": 4})
    assert json.loads(path.read_text())["index.cache_dir"] == str(tmp_path / "outside"), "a rewrite keeps it"
    inside = str(user / "idx")
    s.update({"index.cache_dir": inside})
    assert s.path_setting("index.cache_dir", default_dir, environ={}) == inside


@POSIX_ONLY
def test_a_rewrite_keeps_the_file_mode(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{}")
    os.chmod(path, 0o644)
    Settings(str(path)).update({"selection.max_loras": 4})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    os.chmod(path, 0o640)
    Settings(str(path)).update({"selection.max_loras": 5})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640


@POSIX_ONLY
def test_a_new_file_gets_the_umask_default(tmp_path):
    old = os.umask(0o022)
    try:
        Settings(str(tmp_path / "new.json")).update({"selection.max_loras": 4})
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.json").st_mode) == 0o644


@POSIX_ONLY
def test_a_symlinked_settings_file_stays_a_link(tmp_path):
    real = tmp_path / "dotfiles" / "ip.json"
    real.parent.mkdir()
    real.write_text("{}")
    link = tmp_path / "s.json"
    os.symlink(str(real), str(link))
    Settings(str(link)).update({"selection.max_loras": 4})
    assert os.path.islink(link) and json.loads(real.read_text())["selection.max_loras"] == 4


def _age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_stale_temp_files_of_our_own_are_cleaned_and_nothing_else(tmp_path):
    folder = tmp_path / "default"
    folder.mkdir()
    ours_old = folder / ".intelligent-pipeline.json.0123456789abcdef.tmp"
    ours_new = folder / ".intelligent-pipeline.json.fedcba9876543210.tmp"
    index_old = folder / "intelligent-pipeline-index.json.4242.tmp"
    legacy_ours = folder / ".tmp-ab12cd34.json"  # the old writer's name, holding our settings
    legacy_other = folder / ".tmp-zz99yy88.json"  # same shape, someone else's
    user_files = [folder / "notes.tmp", folder / ".intelligent-pipeline.json.tmp", folder / "comfy.settings.json",
                  folder / ".intelligent-pipeline.json.0123456789abcdeg.tmp", folder / "intelligent-pipeline.json"]
    for p in (ours_old, ours_new, index_old):
        p.write_text("{")
    legacy_ours.write_text('{\n  "selection.max_loras": 3,\n  "ollama.mo')
    legacy_other.write_text('{"their": "data"}')
    for p in user_files:
        p.write_text("keep me")
    os.mkdir(folder / ".intelligent-pipeline.json.aaaaaaaaaaaaaaaa.tmp")  # a folder is never ours
    for p in [ours_old, index_old, legacy_ours, legacy_other, *user_files]:
        _age(p, 3600)
    removed = settings_mod.clean_stale_temp_files(str(folder))
    assert sorted(removed) == sorted(str(p) for p in (ours_old, index_old, legacy_ours))
    for p in [ours_new, legacy_other, *user_files]:
        assert p.exists(), p
    assert (folder / ".intelligent-pipeline.json.aaaaaaaaaaaaaaaa.tmp").is_dir()
    assert settings_mod.clean_stale_temp_files(str(tmp_path / "missing")) == []


def test_a_write_interrupted_before_the_rename_keeps_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    user = _user_dir(tmp_path)
    s = Settings.in_user_dir(str(user))
    s.update({"selection.max_loras": 2})

    def killed(*_a, **_k):
        raise KeyboardInterrupt  # as close to kill -9 between write and rename as a test gets

    monkeypatch.setattr(settings_mod.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        s.update({"selection.max_loras": 4})
    monkeypatch.undo()
    assert Settings.in_user_dir(str(user)).get("selection.max_loras") == 2
    assert [n for n in os.listdir(user / "default") if n.endswith(".tmp")] == []


def test_settings_log_lines_escape_names(tmp_path, caplog):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"selection.max_loras": "x\nERROR forged line"}))
    Settings(str(path)).get("selection.max_loras")
    assert all("\n" not in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    bad = tmp_path / "x\nERROR fake.json"
    bad.write_text("{not json")
    Settings(str(bad)).get("selection.max_loras")
    assert all("\n" not in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                    max_leaves=12)
KEY = st.sampled_from(sorted(CONTRACT_DEFAULTS)) | st.text(max_size=20)


@hyp_settings(derandomize=True, max_examples=200, deadline=None)
@given(changes=st.dictionaries(KEY, JSON, max_size=4) | JSON)
def test_update_with_arbitrary_json_returns_or_raises_settings_error(tmp_path_factory, changes):
    user = tmp_path_factory.mktemp("fuzz")
    (user / "default").mkdir()
    s = Settings.in_user_dir(str(user))
    try:
        out = s.update(changes)
    except SettingsError as e:
        assert isinstance(e.field, str) and str(e).startswith(e.field)
        return
    assert set(out) == set(CONTRACT_DEFAULTS)
    assert Settings.in_user_dir(str(user)).as_dict() == out


def test_the_ollama_client_is_a_dependency_in_both_lists_and_the_code_uses_it():
    import tomllib

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "pyproject.toml"), "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    with open(os.path.join(root, "requirements.txt"), encoding="utf-8") as f:
        reqs = [line.split("#")[0].strip() for line in f if line.split("#")[0].strip()]
    assert [d for d in deps if d.lower().startswith("ollama")] == [r for r in reqs if r.lower().startswith("ollama")]
    assert any(d.lower().startswith("ollama") for d in deps)
    with open(os.path.join(root, "selector", "llm.py"), encoding="utf-8") as f:
        assert "import ollama" in f.read()
