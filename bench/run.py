"""Benchmarks: each prints its figure and a ratio against a baseline measured in the same run.

    .venv/bin/python bench/run.py [--sparse N] [--only index,plan,latency,prompts,import,store,hash]

- index:  first scan and no-change rescan of a sparse N-model library (header-only files with
          mixed sidecars), against a bare os.walk + stat of the same tree (the floor for a walk).
- plan:   POST /intelligent/api/plan on a real server over the synthetic library, against
          GET /system_stats on the same server (what any request costs there); also the planner
          alone over the sparse library.
- latency: the planner's words path through the index over N sparse LoRAs and 300 checkpoints (LoRAs
          retrieved by their words, never every record walked): median and p95 over 20 prompts,
          against the same over 1,000 LoRAs and 300 checkpoints; beside it, the same plans walking
          every record.
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
import sqlite3
import statistics
import string
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import orjson

from intelligent_pipeline.client.server import PACK_DIR, ComfyServer, find_comfyui
from intelligent_pipeline.metadata import ModelIndex, StaticModelPaths, jsonio
from intelligent_pipeline.metadata.atomic import atomic_write_bytes
from intelligent_pipeline.metadata.cache import freeze, record_from_dict, record_to_dict
from intelligent_pipeline.metadata.store import IndexStore
from intelligent_pipeline.selector import meaning as M
from intelligent_pipeline.selector import planner
from intelligent_pipeline.selector.analysis import analyze_keywords as analyze_prompt
from intelligent_pipeline.selector.scoring import build_query, warm_profiles

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


def _parse_floor(root: str) -> float:
    """The issue's floor for a first index: one thread walking the tree and parsing every sidecar
    (orjson.loads) and every safetensors header (the 8-byte length, then orjson.loads) once."""
    t = time.perf_counter()
    for dirpath, _dirs, files in os.walk(root, followlinks=True):
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                if name.endswith(".safetensors"):
                    with open(path, "rb") as f:
                        orjson.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
                elif name.endswith((".json", ".info")):
                    with open(path, "rb") as f:
                        orjson.loads(f.read())
            except (OSError, ValueError, struct.error):
                pass
    return time.perf_counter() - t


def _drop_caches() -> bool:
    """Empty the page cache (root only): what a cold first scan meets."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


_RSS_PROBE = """
import json, sys, time
def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024
from intelligent_pipeline.metadata import ModelIndex, StaticModelPaths
from intelligent_pipeline.selector.scoring import warm_profiles
base = rss()
t = time.perf_counter()
index = ModelIndex(StaticModelPaths.from_models_dir(sys.argv[1]), cache_path=sys.argv[2])
load_s = time.perf_counter() - t
loaded = rss()
index.prepare_search()  # the full-text index in memory, as the runtime reads it after loading
searchable = rss()
warm_profiles(r for kind in ("checkpoint", "diffusion_model") for r in index.records(kind))  # as the runtime
planned = rss()
warm_profiles(index.records())  # what the runtime warmed before plans retrieved their LoRAs
print(json.dumps({"base_mb": base, "index_mb": loaded - base, "search_mb": searchable - loaded,
                  "with_profiles_mb": planned - base, "with_all_profiles_mb": rss() - base, "load_s": load_s}))
"""


def _lookup_ms(search, prompt: str) -> float:
    """The candidate lookup a plan makes: the prompt's concepts, LoRAs of one family, best 200."""
    analysis = analyze_prompt(prompt)
    text = " ".join(build_query(analysis, prompt).concept_texts)
    return _median_ms(lambda: search(text, kind="lora", family="SDXL", limit=200), 30)


def _lookups(index: ModelIndex, store_path: str | None) -> tuple[float, float, float]:
    """(ms with the postings in memory, ms of the same query ranked by FTS5 in SQLite, seconds the
    postings took to read). The SQLite figure is the same-run baseline: same rows, same scores."""
    t = time.perf_counter()
    index.prepare_search()
    read_s = time.perf_counter() - t
    fast = _lookup_ms(index.search, LOOKUP_PROMPT)
    if store_path is None:
        store = index._store  # an in-memory store: the same connection, postings switched off
        assert store is not None
        store._use_postings = False
        try:
            slow = _lookup_ms(store.search, LOOKUP_PROMPT)
        finally:
            store._use_postings = True
    else:
        store = IndexStore(store_path, postings=False)
        try:
            slow = _lookup_ms(store.search, LOOKUP_PROMPT)
        finally:
            store.close()
    return fast, slow, read_s


LOOKUP_PROMPT = "anime girl with pink hair in a cyberpunk city at night, neon lights, rain, detailed portrait"


def bench_index(sparse: int, workdir: str, cold: bool = False) -> dict:
    lib = os.path.join(workdir, f"sparse{sparse}")
    if not os.path.isdir(lib):
        subprocess.run([sys.executable, SYNTHLIB, "--sparse-library", str(sparse), "--out", lib], check=True,
                       stdout=subprocess.DEVNULL)
    t = time.perf_counter()
    files = _walk_stat(lib)
    walk_s = time.perf_counter() - t
    cold = cold and _drop_caches()
    floor_s = _parse_floor(lib)
    cache = os.path.join(workdir, "index-store.sqlite3")
    for leftover in (cache, cache + "-wal", cache + "-shm"):
        if os.path.exists(leftover):
            os.unlink(leftover)  # the first scan must read every header, as on a new install
    if cold:
        _drop_caches()
    index = ModelIndex(StaticModelPaths.from_models_dir(lib), cache_path=cache)
    first = index.scan()
    t = time.perf_counter()
    again = index.scan()
    rescan_s = time.perf_counter() - t
    t = time.perf_counter()
    index.recheck_if_due(0, quick=True)
    quick_s = time.perf_counter() - t  # the queue-time re-check: one stat per folder whose mtime is unchanged
    # 100 sidecars changed (a new mtime and content), then the rescan that finds them
    sidecars = sorted(os.path.join(d, f) for d, _, fs in os.walk(lib) for f in fs if f.endswith(".metadata.json"))
    for path in random.Random(6).sample(sidecars, min(100, len(sidecars))):
        with open(path, "rb") as f:
            data = orjson.loads(f.read())
        data["model_name"] = f"{data.get('model_name', '')} (edited)"
        atomic_write_bytes(path, orjson.dumps(data))
    t = time.perf_counter()
    changed = index.scan()
    changed_s = time.perf_counter() - t
    t = time.perf_counter()
    _walk_stat(lib)
    walk2_s = time.perf_counter() - t  # the walk again, as the 100-changed rescan saw the tree
    t = time.perf_counter()
    ModelIndex(StaticModelPaths.from_models_dir(lib), cache_path=cache).close()
    cache_load_s = time.perf_counter() - t
    records = index.records()
    warm_profiles(records)
    request = planner.parse_request({"prompt": "anime girl with pink hair, cherry blossoms"})
    plan_ms = _median_ms(lambda: planner.build_plan(request, records), 5)
    lookup_ms, lookup_sql_ms, postings_s = _lookups(index, cache)
    small = os.path.join(workdir, "sparse1000")
    if not os.path.isdir(small):
        subprocess.run([sys.executable, SYNTHLIB, "--sparse-library", "1000", "--out", small], check=True,
                       stdout=subprocess.DEVNULL)
    small_index = ModelIndex(StaticModelPaths.from_models_dir(small), cache_path=None)
    small_index.scan()
    lookup_1k_ms, lookup_1k_sql_ms, _ = _lookups(small_index, None)
    rss = json.loads(subprocess.run([sys.executable, "-c", _RSS_PROBE, lib, cache], check=True, capture_output=True,
                                    text=True).stdout)
    out = {"models": first.total, "files_walked": files, "cold_cache": cold, "walk_stat_s": round(walk_s, 3),
           "parse_floor_s": round(floor_s, 2), "first_scan_s": round(first.seconds, 2),
           "first_scan_vs_floor": round(first.seconds / floor_s, 2),
           "rescan_s": round(rescan_s, 3), "rescan_changed": again.changed, "quick_recheck_s": round(quick_s, 3), "rescan_vs_walk": round(rescan_s / walk_s, 2),
           "rescan_100_changed_s": round(changed_s, 3), "rescan_100_changed_found": changed.changed,
           "rescan_100_minus_walk_s": round(changed_s - walk2_s, 3),
           "store_load_s": round(cache_load_s, 2), "plan_ms_over_library": round(plan_ms, 1),
           "lookup_ms_50k": round(lookup_ms, 2), "lookup_ms_1k": round(lookup_1k_ms, 2),
           "lookup_sqlite_ms_50k": round(lookup_sql_ms, 2), "lookup_sqlite_ms_1k": round(lookup_1k_sql_ms, 2),
           "postings_read_s": round(postings_s, 2), "rss_search_mb": round(rss["search_mb"]),
           "rss_index_mb": round(rss["index_mb"]), "rss_with_profiles_mb": round(rss["with_profiles_mb"]),
           "rss_with_all_profiles_mb": round(rss["with_all_profiles_mb"])}
    print(f"index ({first.total} models, {files} files, {'cold' if cold else 'warm'} cache): first scan "
          f"{first.seconds:.2f} s vs the parse floor {floor_s:.2f} s -> {out['first_scan_vs_floor']}x (target 1.5x); "
          f"no-change rescan {rescan_s:.3f} s vs bare walk+stat {walk_s:.3f} s -> {out['rescan_vs_walk']}x (target "
          f"1.5x); queue-time quick re-check {quick_s:.3f} s; 100 sidecars changed: rescan {changed_s:.3f} s = the walk {walk2_s:.3f} s + "
          f"{changed_s - walk2_s:.3f} s (target +0.2 s; {changed.changed} found); store load {cache_load_s:.2f} s; "
          f"plan over the whole library {plan_ms:.1f} ms; candidate lookup {lookup_ms:.2f} ms at {first.total} "
          f"vs {lookup_1k_ms:.2f} ms at {small_index.counts()['lora'] + small_index.counts()['checkpoint']} (target "
          f"< 5 ms; ranked by FTS5 in SQLite: {lookup_sql_ms:.2f} ms vs {lookup_1k_sql_ms:.2f} ms; postings read in "
          f"{postings_s:.2f} s); RSS +{rss['index_mb']:.0f} MB for the index, +{rss['search_mb']:.0f} MB for its "
          f"postings, +{rss['with_profiles_mb']:.0f} MB in all with the checkpoints' scoring profiles (target 150 MB; "
          f"+{rss['with_all_profiles_mb']:.0f} MB with every record's, as before plans retrieved their LoRAs)", flush=True)
    return out


def _stored_rows(path: str) -> int:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT count(*) FROM models").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def bench_restart(sparse: int, workdir: str) -> dict:
    """ComfyUI restarted over a warm store of the sparse library: the first POST plan as soon as the
    server answers, against the plans after it (a normal plan's latency), on one real server."""
    lib = os.path.join(workdir, f"sparse{sparse}")
    if not os.path.isdir(lib):
        subprocess.run([sys.executable, SYNTHLIB, "--sparse-library", str(sparse), "--out", lib], check=True,
                       stdout=subprocess.DEVNULL)
    store_dir = os.path.join(workdir, "restart-store")  # shared by both servers: the env variable, as a
    os.environ["INTELLIGENT_PIPELINE_INDEX_CACHE_DIR"] = store_dir  # setting must be inside one user folder
    for leftover in ("", "-wal", "-shm"):
        path = os.path.join(store_dir, "intelligent-pipeline-index.sqlite3" + leftover)
        if os.path.exists(path):
            os.unlink(path)
    settings = {"civitai.enabled": False, "ollama.enabled": False}
    # words only: embedding 50k LoRA texts would take both cores for a quarter of an hour meanwhile
    os.environ["INTELLIGENT_PIPELINE_MEANING"] = "off"
    body = json.dumps({"prompt": "anime girl with pink hair"}).encode()

    def plan(url: str) -> dict:
        req = urllib.request.Request(url + "/intelligent/api/plan", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read())

    def total(url: str) -> int:
        with urllib.request.urlopen(url + "/intelligent/api/models?limit=1", timeout=60) as r:
            return int(json.loads(r.read())["total"])

    with ComfyServer(find_comfyui(), os.path.join(workdir, "restart-1"), models_dir=lib, settings=settings) as server:
        deadline = time.monotonic() + 600
        while total(server.url) < sparse and time.monotonic() < deadline:  # the first scan ends...
            time.sleep(1)
        store = os.path.join(store_dir, "intelligent-pipeline-index.sqlite3")
        while _stored_rows(store) < sparse and time.monotonic() < deadline:  # ... and its rows are written
            time.sleep(1)
        plan(server.url)
    with ComfyServer(find_comfyui(), os.path.join(workdir, "restart-2"), models_dir=lib, settings=settings) as server:
        t = time.perf_counter()
        first = plan(server.url)
        first_ms = (time.perf_counter() - t) * 1000
        normal_ms = _median_ms(lambda: plan(server.url), 5)
    out = {"first_plan_ms": round(first_ms, 1), "normal_plan_ms": round(normal_ms, 1),
           "restart_overhead_ms": round(first_ms - normal_ms, 1), "first_plan_warnings": first.get("warnings", [])}
    print(f"restart over a warm store of {sparse} models: first POST plan {first_ms:.0f} ms, a normal plan "
          f"{normal_ms:.0f} ms -> {first_ms - normal_ms:.0f} ms more (target 500 ms)", flush=True)
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


# Prompts of every shape a user writes (none of them from the selection evaluation): a few words,
# a sentence, a tag list, a character, a style, a long description, one naming nothing.
LATENCY_PROMPTS = (
    "anime girl with pink hair",
    "a portrait photo of an old fisherman, 85mm, natural light",
    "masterpiece, best quality, 1girl, solo, long hair, blue eyes, school uniform, cherry blossoms, outdoors",
    "watercolor painting of a fox in a snowy forest",
    "cyberpunk city street at night, neon signs, rain, reflections, cinematic",
    "a knight in ornate armor standing on a cliff, dramatic lighting, fantasy art",
    "pixel art of a small house by a lake",
    "product shot of a perfume bottle on a marble table, studio lighting",
    "a cat",
    "ink sketch, samurai under a cherry tree, ukiyo-e style",
    "a cozy living room interior with plants, warm afternoon light, photorealistic, wide angle",
    "chibi character with big eyes, sticker design, white background",
    "an astronaut riding a horse on the moon, digital art",
    "close-up of a dragon's eye, highly detailed scales, macro",
    "1990s retro anime screenshot, a girl with short hair waiting at a train platform at dusk, cel shading",
    "a lighthouse on a rocky coast at dusk",
    "steampunk airship over a victorian city, clouds, golden hour",
    "minimalist logo of a mountain, flat vector",
    "a woman in a red dress walking through paris at night, film grain, 35mm photo",
    "low poly 3d render of a forest island floating in the sky",
)


def _latency_index(lib: str, store: str) -> ModelIndex:
    index = ModelIndex(StaticModelPaths.from_models_dir(lib), cache_path=store)
    index.scan()
    index.prepare_search()  # what the runtime does in the background after a scan
    warm_profiles(r for kind in ("checkpoint", "diffusion_model") for r in index.records(kind))  # (runtime._warm)
    return index


def _plan_times(source, rounds: int, meaning_index=None, embedder=None, llm=None) -> list[float]:
    """ms per plan; with `meaning_index`, by words and meaning (a fresh Meaning per plan, so every
    plan embeds its prompt as a new prompt is); with `llm`, asking it (an OllamaAnalyst)."""
    times = []
    for _ in range(rounds):
        for prompt in LATENCY_PROMPTS:
            request = planner.parse_request({"prompt": prompt})
            t = time.perf_counter()
            meaning = M.Meaning(embedder, meaning_index) if meaning_index is not None else None
            planner.build_plan(request, source, meaning=meaning, llm=llm)
            times.append((time.perf_counter() - t) * 1000)
    return times


def _random_meaning(index: ModelIndex, dim: int) -> "M.MeaningIndex":
    """Vectors for every LoRA of `index`: random unit rows (what a search costs does not depend on
    them; embedding 50k texts on this CPU takes a quarter of an hour, so the bench does not)."""
    loras = index.records("lora")
    rng = np.random.default_rng(7)
    matrix = rng.standard_normal((len(loras), dim)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return M.MeaningIndex("random", index.generation, [(r.kind, r.name) for r in loras], matrix,
                          [r.architecture or "unknown" for r in loras])


def _p95(times: list[float]) -> float:
    return sorted(times)[max(0, int(round(0.95 * len(times))) - 1)]


LATENCY_CHECKPOINTS = 300  # beside the LoRAs of the latency libraries (what issue 6 measured with)


def _llm_overhead(index: ModelIndex) -> tuple[float, float, float]:
    """(median, p95 ms of plans asking Ollama, ms of one bare chat call): the fake server of the tests,
    which answers at once, so what is left is the LLM path's own cost."""
    spec = importlib.util.spec_from_file_location("_ip_fake_ollama", os.path.join(PACK_DIR, "tests", "fixtures",
                                                                                  "fake_ollama.py"))
    fake = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("_ip_fake_ollama", fake)
    spec.loader.exec_module(fake)
    from intelligent_pipeline.selector.llm import Digest, OllamaAnalyst

    with fake.FakeOllama() as server:
        server.answer = lambda ids, body: {"style": "anime", "key_concepts": [], "checkpoint": None,
                                           "loras": [i for i in ids.values() if i.startswith("L")][:1]}
        analyst = OllamaAnalyst(server.url, "llama3.2", 20)
        empty = Digest("", {}, {})
        analyst.analyse("warm up", empty)
        answer_ms = _median_ms(lambda: analyst.analyse("a cat", empty), 20)
        _plan_times(index, 1, llm=analyst)
        times = _plan_times(index, 3, llm=analyst)
    return statistics.median(times), _p95(times), answer_ms


def bench_latency(sparse: int, workdir: str) -> dict:
    """The planner's words path (analysis, checkpoint, LoRA retrieval and scoring; no LLM, no
    embeddings) over `sparse` sparse LoRAs and 300 checkpoints through the index, against the same
    over 1,000 LoRAs and 300 checkpoints (the baseline), each with the search postings and the scoring profiles
    warm as the runtime keeps them; also one round of the same plans walking every record of the big
    library (what a plan cost before retrieval)."""
    figures = {}
    meaning_figures: dict[int, tuple[float, float]] = {}
    embedder = M.MiniLM() if M.unavailable() is None else None
    for n in (1000, sparse):
        lib = os.path.join(workdir, f"loras{n}")
        if not os.path.isdir(lib):
            subprocess.run([sys.executable, SYNTHLIB, "--sparse-library", str(n + LATENCY_CHECKPOINTS),
                            "--sparse-checkpoints", str(LATENCY_CHECKPOINTS), "--out", lib], check=True,
                           stdout=subprocess.DEVNULL)
        index = _latency_index(lib, os.path.join(workdir, f"latency-store-{n}.sqlite3"))
        _plan_times(index, 1)  # warm-up round
        times = _plan_times(index, 5)
        figures[n] = (statistics.median(times), _p95(times), len(index.records("lora")), index)
    # (after the words path of both: torch's threads, once started, take CPU from what runs beside them)
    for n in (1000, sparse) if embedder is not None else ():
        index = figures[n][3]
        vectors = _random_meaning(index, embedder.dim)
        _plan_times(index, 1, vectors, embedder)
        meant = _plan_times(index, 5, vectors, embedder)
        meaning_figures[n] = (statistics.median(meant), _p95(meant))
    med, p95, loras, big = figures[sparse]
    base_med, base_p95, base_loras, _ = figures[1000]
    walk = statistics.median(_plan_times(big.records(), 1))
    llm_med, llm_p95, answer_ms = _llm_overhead(big)
    out = {"models": sparse, "loras": loras, "median_ms": round(med, 1), "p95_ms": round(p95, 1),
           "baseline_loras": base_loras, "baseline_median_ms": round(base_med, 1),
           "baseline_p95_ms": round(base_p95, 1), "ratio_median": round(med / base_med, 2),
           "ratio_p95": round(p95 / base_p95, 2), "walk_every_record_median_ms": round(walk, 1)}
    print(f"plan latency (words path) over {loras} LoRAs and {LATENCY_CHECKPOINTS} checkpoints: median {med:.1f} ms, p95 {p95:.1f} ms "
          f"(targets 20 / 50 ms); over {base_loras} LoRAs: median {base_med:.1f} ms, p95 {base_p95:.1f} ms "
          f"-> {med / base_med:.2f}x / {p95 / base_p95:.2f}x; walking all {loras} LoRAs instead: median "
          f"{walk:.0f} ms", flush=True)
    out.update({"llm_median_ms": round(llm_med, 1), "llm_p95_ms": round(llm_p95, 1),
                "fake_answer_ms": round(answer_ms, 2), "llm_adds_median_ms": round(llm_med - med - answer_ms, 1)})
    print(f"plan latency with Ollama (a local fake server that answers at once, {answer_ms:.2f} ms a call): median "
          f"{llm_med:.1f} ms, p95 {llm_p95:.1f} ms -> the LLM path adds {llm_med - med - answer_ms:.1f} ms beside "
          f"the model's answer time (target 5 ms)", flush=True)
    if embedder is not None:
        m_med, m_p95 = meaning_figures[sparse]
        b_med, b_p95 = meaning_figures[1000]
        out.update({"meaning_median_ms": round(m_med, 1), "meaning_p95_ms": round(m_p95, 1),
                    "meaning_adds_median_ms": round(m_med - med, 1), "baseline_meaning_median_ms": round(b_med, 1)})
        print(f"plan latency, words + meaning (the prompt and its parts embedded by {embedder.model_id} on the "
              f"CPU, {loras} vectors searched): median {m_med:.1f} ms, p95 {m_p95:.1f} ms -> meaning adds "
              f"{m_med - med:.1f} ms (target 10 ms); over {base_loras} LoRAs: median {b_med:.1f} ms, "
              f"p95 {b_p95:.1f} ms", flush=True)
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
    ap.add_argument("--cold", action="store_true", help="index: empty the page cache first (needs root)")
    ap.add_argument("--workdir", default=None, help="keep the sparse library here between runs")
    args = ap.parse_args(argv)
    wanted = set(args.only.split(","))
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="ip-bench-") as tmp:
        workdir = args.workdir or tmp
        os.makedirs(workdir, exist_ok=True)
        if "index" in wanted:
            results["index"] = bench_index(args.sparse, workdir, cold=args.cold)
        if "restart" in wanted:
            results["restart"] = bench_restart(args.sparse, workdir)
        if "plan" in wanted:
            results["plan"] = bench_plan(os.path.join(tmp, "plan"))
        if "latency" in wanted:
            results["latency"] = bench_latency(args.sparse, workdir)
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
