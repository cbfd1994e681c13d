"""Issue 6 on the real server: `GET models` (fields, filters, paging, bad queries), `GET preview` (only the preview
beside an indexed model), `POST models/flags` (the user's flags file; a flagged-excluded model is never planned)."""
from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from intelligent_pipeline.client.api import ComfyError

pytestmark = pytest.mark.integration

MODELS = "/intelligent/api/models"
FLAGS = "/intelligent/api/models/flags"
ITEM_KEYS = {"name", "type", "architecture", "family", "base_model", "tags", "trigger_words", "sha256", "size",
             "preview", "sources", "confidence", "excluded", "favorite", "problems"}
# The smallest valid PNG (1x1, transparent): a real image for the preview route to serve.
PNG_1X1 = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


def listing(client, **query) -> dict:
    return client.get(f"{MODELS}?{urllib.parse.urlencode(query)}")


def refused(fn, *args) -> ComfyError:
    with pytest.raises(ComfyError) as e:
        fn(*args)
    return e.value


def raw_get(client, path: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(client.base_url + path, timeout=60) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def flags_file(server) -> str:
    return os.path.join(server.state_dir, "user", "default", "intelligent-pipeline-flags.json")


def donor_lora(models: str) -> str:
    loras = os.path.join(models, "loras")
    return next(os.path.join(loras, f) for f in sorted(os.listdir(loras))
                if f.endswith(".safetensors") and "broken" not in f and "truncated" not in f)


# --- GET models ----------------------------------------------------------------------------------------------

def test_every_item_has_the_contract_fields_and_pages_are_slices_of_one_order(client):
    whole = listing(client, type="lora", limit=10000)
    assert whole["total"] == len(whole["items"]) >= 4
    for item in whole["items"]:
        assert set(item) == ITEM_KEYS, set(item) ^ ITEM_KEYS
        assert item["type"] == "lora" and isinstance(item["family"], str)
        assert isinstance(item["confidence"], (int, float)) and isinstance(item["favorite"], bool)
    page = listing(client, type="lora", offset=1, limit=2)
    assert page["total"] == whole["total"]
    assert [i["name"] for i in page["items"]] == [i["name"] for i in whole["items"][1:3]]
    assert listing(client, type="lora", offset=whole["total"], limit=5)["items"] == []
    assert listing(client, type="lora", limit=0) == {"total": whole["total"], "items": []}


def test_filters_split_the_library_and_combine(client):
    everything = listing(client, limit=10000)
    with_meta = listing(client, has_metadata="true", limit=10000)
    without = listing(client, has_metadata="false", limit=10000)
    assert with_meta["total"] + without["total"] == everything["total"]
    assert with_meta["total"] >= 1
    assert all(set(i["sources"]) - {"header", "pysssss"} for i in with_meta["items"])
    assert not any(set(i["sources"]) - {"header", "pysssss"} for i in without["items"])
    family = everything["items"][0]["family"]
    same = listing(client, family=family.upper(), limit=10000)  # case does not matter
    assert same["total"] >= 1 and all(i["family"] == family for i in same["items"])
    sd1 = listing(client, family="SD 1.x", limit=10000)  # as contracts.md writes families
    assert sd1["total"] >= 1 and {i["family"] for i in sd1["items"]} == {"SD 1.x"}
    assert listing(client, family="SD1", limit=10000) == sd1  # CivitAI's group id names it too
    assert {i["architecture"] for i in sd1["items"]} <= {"sd1"}
    loras_sd15 = listing(client, type="lora", base_model="SD 1.5", has_metadata="true", limit=10000)["items"]
    assert all(i["type"] == "lora" and i["base_model"] == "SD 1.5" and i["sources"] for i in loras_sd15)


@pytest.mark.parametrize(("query", "field"), [
    ("type=spaceship", "type"), ("limit=abc", "limit"), ("limit=-1", "limit"), ("limit=10001", "limit"),
    ("limit=1e3", "limit"), ("limit=%EF%BC%91", "limit"), ("offset=-3", "offset"), ("offset=x", "offset"),
    ("excluded=maybe", "excluded"), ("favorite=2", "favorite"), ("has_metadata=yes%00", "has_metadata"),
    ("q=" + "a" * 1001, "q"), ("family=" + "f" * 1001, "family"), ("base_model=" + "b" * 1001, "base_model"),
    ("family=Spaceship%20XL", "family"),
])
def test_bad_queries_are_400_naming_the_field(client, query, field):
    e = refused(client.get, f"{MODELS}?{query}")
    assert e.status == 400 and e.body.get("field") == field, e.body


# --- POST models/flags ---------------------------------------------------------------------------------------

def test_a_flagged_excluded_lora_is_listed_excluded_and_never_planned(client, server):
    prompt = "anime girl with pink hair"
    first = client.plan(prompt, overrides={"max_loras": 10})
    assert first["loras"], "the library must give this prompt a LoRA for the test to mean anything"
    name = first["loras"][0]["name"]
    try:
        item = client.post(FLAGS, {"type": "lora", "name": name, "excluded": True})
        assert set(item) == ITEM_KEYS and item["name"] == name and item["excluded"] is True
        with open(flags_file(server), encoding="utf-8") as f:
            assert json.load(f) == {"version": 1, "models": {"lora": {name: {"excluded": True}}}}
        assert name in [i["name"] for i in listing(client, type="lora", excluded="true", limit=10000)["items"]]
        assert name not in [i["name"] for i in listing(client, type="lora", excluded="false", limit=10000)["items"]]
        again = client.plan(prompt, overrides={"max_loras": 10})
        assert name not in [lora["name"] for lora in again["loras"]], again["loras"]
        fav = client.post(FLAGS, {"type": "lora", "name": name, "favorite": True})
        assert fav["favorite"] is True and fav["excluded"] is True  # one flag leaves the other as it is
        assert name in [i["name"] for i in listing(client, type="lora", favorite="true", limit=10000)["items"]]
    finally:
        client.post(FLAGS, {"type": "lora", "name": name, "excluded": False, "favorite": False})
    assert name not in [i["name"] for i in listing(client, type="lora", excluded="true", limit=10000)["items"]]
    with open(flags_file(server), encoding="utf-8") as f:
        assert json.load(f)["models"] == {}
    assert name in [lora["name"] for lora in client.plan(prompt, overrides={"max_loras": 10})["loras"]]


def test_a_flagged_excluded_checkpoint_is_not_chosen_unless_pinned(client):
    prompt = "photo of an old fisherman at dawn"
    chosen = client.plan(prompt)["checkpoint"]
    try:
        client.post(FLAGS, {"type": chosen["kind"], "name": chosen["name"], "excluded": True})
        assert client.plan(prompt)["checkpoint"]["name"] != chosen["name"]
        pinned = client.plan(prompt, overrides={"checkpoint": chosen["name"]})
        assert pinned["checkpoint"]["name"] == chosen["name"]  # a pin still wins, with a warning
        assert any(chosen["name"] in w and "exclude" in w for w in pinned["warnings"]), pinned["warnings"]
    finally:
        client.post(FLAGS, {"type": chosen["kind"], "name": chosen["name"], "excluded": False})
    assert client.plan(prompt)["checkpoint"]["name"] == chosen["name"]


def test_a_corrupt_flags_file_is_set_aside_not_overwritten(client, server):
    path = flags_file(server)
    folder = os.path.dirname(path)
    before = {f for f in os.listdir(folder) if ".corrupt-" in f}
    garbage = b'{"version": 1, "models": {"lora": {"half a fi'
    with open(path, "wb") as f:
        f.write(garbage)
    name = listing(client, type="checkpoint", limit=1)["items"][0]["name"]
    try:
        assert client.post(FLAGS, {"type": "checkpoint", "name": name, "favorite": True})["favorite"] is True
        aside = [f for f in os.listdir(folder) if ".corrupt-" in f and f not in before]
        assert len(aside) == 1, aside
        with open(os.path.join(folder, aside[0]), "rb") as f:
            assert f.read() == garbage
    finally:
        client.post(FLAGS, {"type": "checkpoint", "name": name, "favorite": False})
        for f in os.listdir(folder):
            if ".corrupt-" in f and f not in before:
                os.unlink(os.path.join(folder, f))


@pytest.mark.parametrize(("body", "field"), [
    ([], "body"), ("lora", "body"), ({"name": "x.safetensors"}, "type"),
    ({"type": "spaceship", "name": "x.safetensors"}, "type"), ({"type": "lora"}, "name"),
    ({"type": "lora", "name": ""}, "name"), ({"type": "lora", "name": 5}, "name"),
    ({"type": "lora", "name": "x" * 5000}, "name"), ({"type": "lora", "name": "x", "excluded": "true"}, "excluded"),
    ({"type": "lora", "name": "x", "favorite": None}, "favorite"), ({"type": "lora", "name": "x", "hidden": 1}, "hidden"),
])
def test_bad_flag_bodies_are_400_naming_the_field(client, server, body, field):
    e = refused(client.post, FLAGS, body)
    assert e.status == 400 and e.body.get("field") == field, e.body


@pytest.mark.parametrize("name", ["no_such_lora.safetensors", "../checkpoints/x.safetensors", "/etc/passwd"])
def test_flags_for_a_model_that_is_not_indexed_are_404(client, name):
    e = refused(client.post, FLAGS, {"type": "lora", "name": name, "excluded": True})
    assert e.status == 404 and e.body.get("field") == "name"


def test_a_flags_body_that_is_not_json_is_400(client):
    req = urllib.request.Request(client.base_url + FLAGS, data=b"{not json", method="POST",
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=60)
    assert e.value.code == 400


# --- GET preview ---------------------------------------------------------------------------------------------

@pytest.fixture()
def previewed(server_env, tmp_path):
    """Two LoRAs of our own: one with a real PNG preview, one whose preview is a link to a file outside every
    model root (it must never be served)."""
    loras = os.path.join(server_env["models"], "loras")
    stem = f"previewed_{uuid.uuid4().hex[:6]}"
    sneaky = f"sneaky_{uuid.uuid4().hex[:6]}"
    donor = os.path.realpath(donor_lora(server_env["models"]))
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG_1X1 + b"secret")
    made = [os.path.join(loras, stem + ".safetensors"), os.path.join(loras, stem + ".preview.png"),
            os.path.join(loras, sneaky + ".safetensors"), os.path.join(loras, sneaky + ".png")]
    shutil.copyfile(donor, made[0])
    with open(made[1], "wb") as f:
        f.write(PNG_1X1)
    shutil.copyfile(donor, made[2])
    os.symlink(str(secret), made[3])
    try:
        yield {"good": stem + ".safetensors", "sneaky": sneaky + ".safetensors"}
    finally:
        for path in made:
            os.unlink(path)


def test_the_preview_beside_an_indexed_model_is_served_with_its_type(client, previewed, h):
    item = h.models_by_name(client, "lora")[previewed["good"]]
    query = urllib.parse.urlencode({"type": "lora", "name": previewed["good"]})
    assert item["preview"] == f"/intelligent/api/preview?{query}"
    status, content_type, body = raw_get(client, item["preview"])
    assert (status, content_type, body) == (200, "image/png", PNG_1X1)


def test_a_preview_linking_outside_the_model_roots_is_404(client, previewed, h):
    item = h.models_by_name(client, "lora")[previewed["sneaky"]]
    assert item["preview"]  # the index saw it; the route must still refuse it
    status, _, body = raw_get(client, item["preview"])
    assert status == 404 and b"secret" not in body


@pytest.mark.parametrize(("query", "status"), [
    ({"type": "lora", "name": "no_such.safetensors"}, 404),
    ({"type": "lora", "name": "../../../../etc/passwd"}, 404),
    ({"type": "lora", "name": "/etc/passwd"}, 404),
    ({"type": "lora", "name": "broken_sidecar_lora.metadata.json"}, 404),
    ({"type": "lora", "name": "a\x00b.safetensors"}, 404),
    ({"type": "lora", "name": "\u202emodel.safetensors"}, 404),
    ({"type": "spaceship", "name": "x"}, 400),
    ({"type": "lora"}, 400),
    ({"type": "lora", "name": "x" * 5000}, 400),
])
def test_anything_but_an_indexed_models_preview_is_refused(client, query, status):
    code, content_type, body = raw_get(client, f"/intelligent/api/preview?{urllib.parse.urlencode(query)}")
    assert code == status and content_type.startswith("application/json"), body[:200]


def test_a_model_without_a_preview_has_none_and_its_preview_is_404(client, h):
    name, item = next((n, i) for n, i in h.models_by_name(client, "checkpoint").items() if i["preview"] is None)
    code, _, _ = raw_get(client, f"/intelligent/api/preview?{urllib.parse.urlencode({'type': 'checkpoint', 'name': name})}")
    assert code == 404
