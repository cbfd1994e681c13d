"""Benchmarks: each prints its figure and a ratio against a baseline measured in the same run.

    .venv/bin/python bench/run.py [--sparse N] [--only index,plan,import]

- index:  first scan and no-change rescan of a sparse N-model library (header-only files with
          mixed sidecars), against a bare os.walk + stat of the same tree (the floor for a walk).
- plan:   POST /intelligent/api/plan on a real server over the synthetic library, against
          GET /system_stats on the same server (what any request costs there); also the planner
          alone over the sparse library.
- prompts: the planner over the sparse library with 100,000-character prompts of each adversarial
          shape (issue 5), against a plain 100,000-character prompt in the same run.
- import: what importing the pack adds to ComfyUI's start, against ComfyUI importing its own
          execution/server/nodes modules, each in a fresh interpreter.
"""
from __future__ import annotations

import argparse
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
from intelligent_pipeline.metadata import ModelIndex, StaticModelPaths
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
    cache = os.path.join(workdir, "index-cache.json")
    if os.path.exists(cache):
        os.unlink(cache)  # the first scan must read every header, as on a new install
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
    index = ModelIndex(StaticModelPaths.from_models_dir(lib), cache_path=os.path.join(workdir, "index-cache.json"))
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
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
