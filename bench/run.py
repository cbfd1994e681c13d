"""Benchmarks: each prints its figure and a ratio against a baseline measured in the same run.

    .venv/bin/python bench/run.py [--sparse N] [--only index,plan,prompts,import,store,hash]

- index:  first scan and no-change rescan of a sparse N-model library (header-only files with
          mixed sidecars), against a bare os.walk + stat of the same tree (the floor for a walk).
- plan:   POST /intelligent/api/plan on a real server over the synthetic library, against
          GET /system_stats on the same server (what any request costs there); also the planner
          alone over the sparse library.
- prompts: the planner over the sparse library with 100,000-character prompts of each adversarial
          shape (issue 5), against a plain 100,000-character prompt in the same run.
- import: what importing the pack adds to ComfyUI's start, against ComfyUI importing its own
          execution/server/nodes modules, each in a fresh interpreter.
- store:  the SQLite index store on N sparse LoRAs (write_sparse_safetensors, a few real key sets,
          a Lora-Manager `.metadata.json` on most): writing the first index (one transaction and
          batches), a no-change rescan, a rescan after 100 sidecars changed, loading after a restart,
          the file's size and a search; each beside the JSON cache it replaces (one file rewritten
          whole), measured on the same records in the same run.
- hash:   SHA256 of one 1 GiB file against `openssl dgst -sha256` on the same file, and a bulk job
          (8 x 128 MiB) on every core against one thread (needs 2 GiB of free disk in the workdir).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
import urllib.request

from intelligent_pipeline.client.server import PACK_DIR, ComfyServer, find_comfyui
from intelligent_pipeline.metadata import ModelIndex, StaticModelPaths, jsonio
from intelligent_pipeline.metadata.atomic import atomic_write_bytes
from intelligent_pipeline.metadata.cache import freeze, record_from_dict, record_to_dict
from intelligent_pipeline.metadata.store import IndexStore
from intelligent_pipeline.selector import planner
from intelligent_pipeline.selector.scoring import warm_profiles

SYNTHLIB = os.path.join(PACK_DIR, "tests", "fixtures", "synthlib.py")
LIBRARY = os.environ.get("SYNTH_LIBRARY") or os.path.join(PACK_DIR, ".runtime", "models")


def _median_ms(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def _walk_stat(root: str) -> int:
    n = 0
    for dirpath, _dirs, files in os.walk(root, followlinks=True):
        for f in files:
            os.stat(os.path.join(dirpath, f))
            n += 1
    return n


def bench_index(sparse: int, workdir: str) -> dict:
    lib = os.path.join(workdir, f"sparse{sparse}")
    if not os.path.isdir(lib):
        subprocess.run([sys.executable, SYNTHLIB, "--sparse-library", str(sparse), "--out", lib], check=True,
                       stdout=subprocess.DEVNULL)
    t = time.perf_counter()
    files = _walk_stat(lib)
    walk_s = time.perf_counter() - t
    cache = os.path.join(workdir, "index-store.sqlite3")
    for leftover in (cache, cache + "-wal", cache + "-shm"):
        if os.path.exists(leftover):
            os.unlink(leftover)  # the first scan must read every header, as on a new install
    index = ModelIndex(StaticModelPaths.from_models_dir(lib), cache_path=cache)
    first = index.scan()
    t = time.perf_counter()
    again = index.scan()
    rescan_s = time.perf_counter() - t
    t = time.perf_counter()
    ModelIndex(StaticModelPaths.from_models_dir(lib), cache_path=cache)
    cache_load_s = time.perf_counter() - t
    records = index.records()
    warm_profiles(records)
    request = planner.parse_request({"prompt": "anime girl with pink hair, cherry blossoms"})
    plan_ms = _median_ms(lambda: planner.build_plan(request, records), 5)
    out = {"models": first.total, "files_walked": files, "walk_stat_s": round(walk_s, 3),
           "first_scan_s": round(first.seconds, 2), "rescan_s": round(rescan_s, 3), "rescan_changed": again.changed,
           "cache_load_s": round(cache_load_s, 2), "plan_ms_over_library": round(plan_ms, 1),
           "rescan_vs_walk": round(rescan_s / walk_s, 2), "first_scan_vs_walk": round(first.seconds / walk_s, 1)}
    print(f"index ({first.total} models, {files} files): first scan {first.seconds:.2f} s, no-change rescan "
          f"{rescan_s:.3f} s; bare walk+stat {walk_s:.3f} s -> rescan/walk {out['rescan_vs_walk']}x, "
          f"first/walk {out['first_scan_vs_walk']}x; cache load {cache_load_s:.2f} s; "
          f"plan over the whole library {plan_ms:.1f} ms", flush=True)
    return out


def _sparse_records(sparse: int, workdir: str) -> list:
    lib = os.path.join(workdir, f"sparse{sparse}")
    if not os.path.isdir(lib):
        subprocess.run([sys.executable, SYNTHLIB, "--sparse-library", str(sparse), "--out", lib], check=True,
                       stdout=subprocess.DEVNULL)
    index = ModelIndex(StaticModelPaths.from_models_dir(lib), cache_path=os.path.join(workdir, "index-store.sqlite3"))
    index.scan()
    records = index.records()
    warm_profiles(records)
    return records


def prompt_shapes(n: int) -> dict[str, str]:
    """A plain prompt first, then the shapes built to hurt a prompt parser: a prefix, then repeats of
    what a pattern's quantifiers take."""
    def fill(prefix: str, unit: str) -> str:
        return (prefix + unit * n)[:n]
    rnd = random.Random(5)
    unique = ", ".join("".join(rnd.choice(string.ascii_lowercase) for _ in range(rnd.randint(3, 9)))
                       + rnd.choice(("", " hair", " eyes")) for _ in range(n // 6))[:n]
    return {
        "plain": fill("", "a girl with pink hair in a garden at sunset, "),
        "<lora: + spaces": fill("a cat <lora:", " "),
        "<lora: tags": fill("", "<lora:a:0.5>"),
        "unknown <lora:> pins": "".join(f"<lora:missing{i}> " for i in range(n // 12))[:n],
        "<": fill("", "<"),
        "(cat: + digits": fill("(cat:", "1"),
        ", + spaces": fill("<x> cat", ", "),
        "newlines": fill("cat", "\n"),
        "backslashes": fill("", "\\"),
        "unique words and '<x> hair'": unique,
    }


def bench_prompts(sparse: int, workdir: str) -> dict:
    records = _sparse_records(sparse, workdir)
    out: dict = {}
    base_ms = 0.0
    for shape, prompt in prompt_shapes(100_000).items():
        request = planner.parse_request({"prompt": prompt})
        ms = _median_ms(lambda r=request: planner.build_plan(r, records), 3)
        base_ms = base_ms or ms
        out[shape] = {"ms": round(ms, 1), "vs_plain": round(ms / base_ms, 2)}
        print(f"100 KB prompt, {shape!r}: {ms:.0f} ms over {len(records)} models "
              f"-> {ms / base_ms:.2f}x the plain 100 KB prompt ({base_ms:.0f} ms)", flush=True)
    return out


def bench_plan(workdir: str) -> dict:
    server = ComfyServer(find_comfyui(), os.path.join(workdir, "server"), models_dir=LIBRARY,
                         settings={"index.cache_dir": os.path.join(workdir, "server", "user", "idx"), "civitai.enabled": False,
                                   "ollama.enabled": False})
    with server:
        body = json.dumps({"prompt": "anime girl with pink hair"}).encode()

        def plan() -> None:
            req = urllib.request.Request(server.url + "/intelligent/api/plan", data=body,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req) as r:
                r.read()

        def stats() -> None:
            with urllib.request.urlopen(server.url + "/system_stats") as r:
                r.read()

        plan()  # the first request waits for the first scan
        plan_ms, base_ms = _median_ms(plan, 30), _median_ms(stats, 30)
    print(f"plan route: median {plan_ms:.1f} ms (target < 50 ms); GET /system_stats {base_ms:.1f} ms "
          f"-> ratio {plan_ms / base_ms:.1f}x", flush=True)
    return {"plan_route_ms": round(plan_ms, 1), "system_stats_ms": round(base_ms, 1),
            "ratio": round(plan_ms / base_ms, 1)}


_IMPORT_PROBE = """
import importlib.util, os, sys, time
sys.argv = [sys.argv[0], "--cpu"]
sys.path.insert(0, {comfy!r})
os.chdir({comfy!r})
import utils.install_util  # main.py imports the `utils` package first; later code shadows it otherwise
import comfy.options
comfy.options.enable_args_parsing()
t = time.perf_counter()
import execution, server, nodes  # what main.py imports before it loads custom nodes
base = time.perf_counter() - t
spec = importlib.util.spec_from_file_location("intelligent_pipeline", os.path.join({pack!r}, "__init__.py"),
                                              submodule_search_locations=[{pack!r}])
module = importlib.util.module_from_spec(spec)
sys.modules["intelligent_pipeline"] = module
t = time.perf_counter()
spec.loader.exec_module(module)
import asyncio
ext = asyncio.run(module.comfy_entrypoint())
asyncio.run(ext.get_node_list())
pack = time.perf_counter() - t
print(base, pack)
"""


def bench_import(workdir: str) -> dict:
    comfy = find_comfyui()
    code = _IMPORT_PROBE.format(comfy=comfy, pack=PACK_DIR)
    env = dict(os.environ)
    samples = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=workdir)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        base, pack = map(float, out.stdout.strip().splitlines()[-1].split())
        samples.append((base, pack))
    base = statistics.median(s[0] for s in samples)
    pack = statistics.median(s[1] for s in samples)
    print(f"import: the pack adds {pack:.3f} s (target < 0.3 s); ComfyUI's own execution/server/nodes imports {base:.2f} s "
          f"-> ratio {pack / base:.3f}", flush=True)
    return {"pack_import_s": round(pack, 3), "comfy_nodes_import_s": round(base, 2), "ratio": round(pack / base, 3)}


def _fixture_writer():
    path = os.path.join(PACK_DIR, "tests", "fixtures", "safetensors_files.py")
    spec = importlib.util.spec_from_file_location("_bench_safetensors_files", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_sparse_safetensors


def _lora_key_sets() -> dict[str, dict]:
    """Small real LoRA key sets (kohya SD1.5 / SDXL / Flux, diffusers PEFT SDXL) at a given rank."""
    def kohya(prefix: str, pairs, rank: int, dtype: str) -> dict:
        keys = {}
        for module, (out_dim, in_dim) in pairs:
            keys[f"{prefix}{module}.lora_down.weight"] = (dtype, (rank, in_dim))
            keys[f"{prefix}{module}.lora_up.weight"] = (dtype, (out_dim, rank))
            keys[f"{prefix}{module}.alpha"] = (dtype, ())
        return keys
    sd1 = [("down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", (320, 320)),
           ("down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", (320, 768)),
           ("mid_block_attentions_0_transformer_blocks_0_attn2_to_v", (1280, 768))]
    sdxl = [("input_blocks_4_1_transformer_blocks_0_attn1_to_q", (640, 640)),
            ("input_blocks_4_1_transformer_blocks_0_attn2_to_k", (640, 2048)),
            ("middle_block_1_transformer_blocks_0_attn2_to_v", (1280, 2048))]
    flux = [("double_blocks_0_img_attn_qkv", (9216, 3072)), ("double_blocks_0_img_mod_lin", (18432, 3072)),
            ("single_blocks_37_linear2", (3072, 15360))]
    sets = {}
    for rank in (8, 16, 32):
        sets[f"SD 1.5/{rank}"] = {**kohya("lora_unet_", sd1, rank, "F16"),
                                  **kohya("lora_te_", [("text_model_encoder_layers_0_self_attn_k_proj", (768, 768))],
                                          rank, "F16")}
        sets[f"SDXL 1.0/{rank}"] = {**kohya("lora_unet_", sdxl, rank, "F16"),
                                    **kohya("lora_te2_", [("text_model_encoder_layers_0_self_attn_k_proj",
                                                           (1280, 1280))], rank, "F16")}
        sets[f"Flux.1 D/{rank}"] = kohya("lora_unet_", flux, rank, "BF16")
        sets[f"Pony/{rank}"] = {
            f"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn2.{m}.lora_{ab}.weight":
                ("F32", (rank, 2048) if ab == "A" else (640, rank)) for m in ("to_k", "to_v") for ab in "AB"}
    return sets


def build_store_library(root: str, n: int, seed: int = 6) -> str:
    """`n` sparse LoRAs under root/loras, a Lora-Manager sidecar on 85% of them (kept between runs)."""
    loras = os.path.join(root, "loras")
    marker = os.path.join(root, f".built-{n}-{seed}")
    if os.path.exists(marker):
        return root
    write = _fixture_writer()
    sets = _lora_key_sets()
    names = sorted(sets)
    rnd = random.Random(seed)
    words = ["anime", "portrait", "cyberpunk", "watercolor", "pink hair", "armor", "sunset", "pixel art", "neon",
             "forest", "castle", "kimono", "robot", "film grain", "oil painting", "chibi", "samurai", "dragon"]
    for i in range(n):
        key_set = names[i % len(names)]
        base = key_set.split("/")[0]
        folder = os.path.join(loras, base.replace(" ", "_").replace(".", ""), f"g{i % 50:02d}")
        stem = f"{rnd.choice(words).replace(' ', '_')}_{i:05d}"
        path = os.path.join(folder, stem + ".safetensors")
        tags = rnd.sample(words, 3)
        write(path, sets[key_set], {"ss_output_name": stem, "ss_network_dim": key_set.split("/")[1]})
        if rnd.random() < 0.85:
            title = f"{tags[0].title()} {tags[1].title()} {i}"
            sidecar = {"file_name": stem, "model_name": title, "file_path": path, "size": os.path.getsize(path),
                       "modified": 1700000000.0, "sha256": "", "base_model": base, "preview_url": "", "notes": "",
                       "from_civitai": True, "tags": tags, "modelDescription": f"<p>{title}: {', '.join(tags)}.</p>",
                       "usage_tips": json.dumps({"strength": 0.8}), "favorite": False, "exclude": False,
                       "civitai": {"id": 300000 + i, "modelId": 100000 + i, "name": "v1.0", "baseModel": base,
                                   "trainedWords": [f"{stem}_style", tags[0]],
                                   "model": {"name": title, "type": "LORA", "tags": tags},
                                   "stats": {"downloadCount": rnd.randint(0, 50000)},
                                   "images": [{"url": f"https://image.civitai.com/x/{i}.jpeg", "nsfwLevel": 1,
                                               "meta": {"prompt": f"{tags[0]}, {tags[1]}", "steps": 25,
                                                        "cfgScale": 6.5, "sampler": "Euler a", "Size": "832x1216"}}]}}
            with open(os.path.join(folder, stem + ".metadata.json"), "wb") as f:
                f.write(jsonio.dumps(sidecar))
    with open(marker, "w", encoding="utf-8") as f:
        f.write("ok\n")
    return root


def _json_cache_save(path: str, entries) -> None:
    """The JSON cache this store replaces, as it was written: one document, rewritten whole."""
    items = [{"fingerprint": list(fp), "record": record_to_dict(rec)} for fp, rec in entries]
    atomic_write_bytes(path, jsonio.dumps({"format": "intelligent-pipeline/model-index", "version": 1,
                                           "entries": items}))


def _json_cache_load(path: str) -> dict:
    with open(path, "rb") as f:
        doc = jsonio.loads(f.read())
    out = {}
    for item in doc["entries"]:
        record = record_from_dict(item["record"])
        out[(record.kind, record.name)] = (freeze(item["fingerprint"]), record)
    return out


def _store_bytes(path: str) -> int:
    return sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))


def bench_store(n: int, workdir: str) -> dict:
    root = build_store_library(os.path.join(workdir, f"store-lib{n}"), n)
    paths = StaticModelPaths.from_models_dir(root)
    t = time.perf_counter()
    files = _walk_stat(root)
    walk_s = time.perf_counter() - t
    db = os.path.join(workdir, "bench-index.sqlite3")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.unlink(db + suffix)
    index = ModelIndex(paths, cache_path=db)
    first = index.scan()
    state = index._snapshot()
    entries = [(state.fingerprints[k], r) for k, r in state.records.items()]
    out: dict = {"models": first.total, "files": files, "walk_stat_s": round(walk_s, 3),
                 "first_scan_with_store_s": round(first.seconds, 2)}

    # writing the whole first index: the store (one transaction, batches) against the JSON cache
    js = os.path.join(workdir, "bench-index.json")
    t = time.perf_counter()
    _json_cache_save(js, entries)
    out["json_write_s"] = round(time.perf_counter() - t, 3)
    for batch in (len(entries), 5000, 1000):
        other = os.path.join(workdir, f"bench-write-{batch}.sqlite3")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(other + suffix):
                os.unlink(other + suffix)
        store = IndexStore(other)
        store.open()
        t = time.perf_counter()
        store.apply(entries, [], batch_rows=batch)
        out[f"store_write_s_batch_{batch}"] = round(time.perf_counter() - t, 3)
        out[f"store_wal_bytes_batch_{batch}"] = os.path.getsize(other + "-wal") if os.path.exists(other + "-wal") else 0
        store.close()

    # no-change rescan (no row written) and a rescan after 100 sidecars changed (100 rows written)
    before = index._store.rows_written if index._store else 0
    t = time.perf_counter()
    index.scan()
    rescan_s = time.perf_counter() - t
    written = index._store.rows_written if index._store else 0
    sidecars = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if f.endswith(".metadata.json"))
    for p in random.Random(1).sample(sidecars, 100):
        with open(p, "rb") as f:
            doc = jsonio.loads(f.read())
        doc["notes"] = f"edited {time.time()}"
        with open(p, "wb") as f:
            f.write(jsonio.dumps(doc))
        st = os.stat(p)
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    t = time.perf_counter()
    changed = index.scan()
    rescan100_s = time.perf_counter() - t
    rows100 = (index._store.rows_written if index._store else 0) - written
    state = index._snapshot()
    entries = [(state.fingerprints[k], r) for k, r in state.records.items()]
    t = time.perf_counter()
    _json_cache_save(js, entries)  # what the JSON cache did after those 100 changes
    json_rewrite_s = time.perf_counter() - t
    out.update({"no_change_rescan_s": round(rescan_s, 3), "no_change_rows_written": written - before,
                "rescan_100_changed_s": round(rescan100_s, 3), "rescan_100_rows_written": rows100,
                "rescan_100_changed": changed.changed, "json_rewrite_after_100_s": round(json_rewrite_s, 3)})
    index.close()

    # restart: a new index loading its snapshot from the store, against loading the JSON cache
    def restart_store() -> None:
        ModelIndex(paths, cache_path=db).close()

    def load_store() -> None:
        s = IndexStore(db)
        s.open()
        s.load()
        s.close()

    load_json_s = statistics.median(_timed(lambda: _json_cache_load(js)) for _ in range(3))
    load_store_s = statistics.median(_timed(load_store) for _ in range(3))
    restart_s = statistics.median(_timed(restart_store) for _ in range(3))
    index = ModelIndex(paths, cache_path=db)
    query = "anime girl with pink hair, cyberpunk neon portrait"
    search_ms = _median_ms(lambda: index.search(query), 20)
    search_kind_ms = _median_ms(lambda: index.search(query, kind="lora", family="sdxl"), 20)
    index.close()
    out.update({"json_load_s": round(load_json_s, 3), "store_load_s": round(load_store_s, 3),
                "restart_index_s": round(restart_s, 3), "store_bytes": _store_bytes(db),
                "json_bytes": os.path.getsize(js), "search_ms": round(search_ms, 2),
                "search_filtered_ms": round(search_kind_ms, 2)})
    print(f"store ({out['models']} models, {files} files; bare walk+stat {walk_s:.3f} s):\n"
          f"  first index written: store {out['store_write_s_batch_5000']:.2f} s in batches of 5000, "
          f"{out[f'store_write_s_batch_{len(entries)}']:.2f} s in one transaction, "
          f"{out['store_write_s_batch_1000']:.2f} s in batches of 1000; JSON cache {out['json_write_s']:.2f} s "
          f"(first scan with the store {first.seconds:.2f} s)\n"
          f"  no-change rescan {rescan_s:.3f} s, 0 rows written (walk {walk_s:.3f} s -> {rescan_s / walk_s:.2f}x)\n"
          f"  100 sidecars changed: rescan {rescan100_s:.3f} s writing {rows100} rows; the JSON cache rewrote "
          f"{out['json_bytes'] / 1e6:.1f} MB in {json_rewrite_s:.2f} s\n"
          f"  restart: store load {load_store_s:.2f} s, whole index ready {restart_s:.2f} s; JSON cache load "
          f"{load_json_s:.2f} s -> {load_store_s / load_json_s:.2f}x\n"
          f"  size: store {out['store_bytes'] / 1e6:.1f} MB, JSON {out['json_bytes'] / 1e6:.1f} MB; search "
          f"{search_ms:.2f} ms, filtered by kind and family {search_kind_ms:.2f} ms", flush=True)
    return out


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _best_s(fn, n: int = 3) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_hash(workdir: str) -> dict:
    """Lazy hashing (issue 6): one 1 GiB file against `openssl dgst -sha256` on the same file (warm
    page cache, best of 3), and a bulk job over every core against one thread."""
    import shutil

    from intelligent_pipeline.metadata.hashing import Hasher, MemoryHashCache, sha256_file

    big = os.path.join(workdir, "hash-1g.bin")
    if not os.path.exists(big) or os.path.getsize(big) != 1 << 30:
        with open(big, "wb") as f:
            for _ in range(64):
                f.write(os.urandom(16 << 20))
    sha256_file(big)  # warm the page cache
    ours = _best_s(lambda: sha256_file(big))
    openssl = shutil.which("openssl")
    base = _best_s(lambda: subprocess.run([openssl, "dgst", "-sha256", big], check=True, stdout=subprocess.DEVNULL)) \
        if openssl else None
    files = []
    for i in range(8):
        path = os.path.join(workdir, f"hash-part{i}.bin")
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(os.urandom(128 << 20))
        files.append(path)
    one_thread = _best_s(lambda: [sha256_file(p) for p in files], 2)

    def bulk() -> None:
        job = Hasher(MemoryHashCache()).start(files)
        job.wait()
    every_core = _best_s(bulk, 2)
    out = {"one_file_s": round(ours, 3), "openssl_s": round(base, 3) if base else None,
           "speed_vs_openssl": round(base / ours, 2) if base else None, "cores": os.cpu_count(),
           "bulk_1g_one_thread_s": round(one_thread, 3), "bulk_1g_every_core_s": round(every_core, 3),
           "bulk_speedup": round(one_thread / every_core, 2)}
    print(f"hash: 1 GiB in {ours:.2f} s, openssl dgst -sha256 {base or float('nan'):.2f} s -> "
          f"{out['speed_vs_openssl']}x its speed; 8 x 128 MiB on one thread {one_thread:.2f} s, "
          f"on {os.cpu_count()} cores {every_core:.2f} s ({out['bulk_speedup']}x)", flush=True)
    for path in (big, *files):
        os.unlink(path)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sparse", type=int, default=10000, help="models in the sparse library (10k-50k)")
    ap.add_argument("--only", default="index,plan,prompts,import")
    ap.add_argument("--workdir", default=None, help="keep the sparse library here between runs")
    args = ap.parse_args(argv)
    wanted = set(args.only.split(","))
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="ip-bench-") as tmp:
        workdir = args.workdir or tmp
        os.makedirs(workdir, exist_ok=True)
        if "index" in wanted:
            results["index"] = bench_index(args.sparse, workdir)
        if "plan" in wanted:
            results["plan"] = bench_plan(os.path.join(tmp, "plan"))
        if "prompts" in wanted:
            results["prompts"] = bench_prompts(args.sparse, workdir)
        if "import" in wanted:
            results["import"] = bench_import(tmp)
        if "store" in wanted:
            results["store"] = bench_store(args.sparse, workdir)
        if "hash" in wanted:
            results["hash"] = bench_hash(workdir)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
