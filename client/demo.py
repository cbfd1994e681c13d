"""`make demo`: start ComfyUI with the pack on the synthetic library, generate one image, explain it."""
from __future__ import annotations

import argparse
import os
import sys
import time

from ..selector.planner import plan_summary
from .api import ComfyClient, ComfyError
from .graphs import plan_from_png, prompt_to_image_graph
from .server import PACK_DIR, ComfyServer, find_comfyui

DEFAULT_PROMPT = "anime girl with pink hair, cherry blossoms"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="intelligent-pipeline-demo", description=__doc__)
    ap.add_argument("--comfyui", default=None, help="ComfyUI folder (default: COMFYUI_PATH or .runtime/ComfyUI)")
    ap.add_argument("--models", default=os.path.join(PACK_DIR, ".runtime", "models"), help="models folder")
    ap.add_argument("--prompt", default=DEFAULT_PROMPT)
    ap.add_argument("--seed", type=int, default=7)
    # The synthetic checkpoints run on the CPU: a small image and few steps keep the demo to seconds.
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--height", type=int, default=192)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--state", default=os.path.join(PACK_DIR, ".runtime", "demo"), help="server state folder")
    args = ap.parse_args(argv)

    server = ComfyServer(comfyui_path=find_comfyui(args.comfyui), state_dir=args.state, models_dir=args.models)
    print(f"Starting ComfyUI ({server.comfyui_path}) with the pack on models {args.models} ...", flush=True)
    t0 = time.perf_counter()
    with server:
        print(f"ComfyUI is up on {server.url} after {time.perf_counter() - t0:.1f} s", flush=True)
        client = ComfyClient(server.url, timeout=120)
        graph = prompt_to_image_graph(args.prompt, seed=args.seed, filename_prefix="demo/intelligent",
                                      width=args.width, height=args.height, steps=args.steps)
        t1 = time.perf_counter()
        try:
            entry = client.run(graph, extra_pnginfo={}, timeout=900)
        except ComfyError as e:
            print(f"Generation failed: {e}\nServer log: {server.log_file}", file=sys.stderr)
            return 1
        images = client.images(entry)
        if not images:
            print("The workflow finished without saving an image", file=sys.stderr)
            return 1
        image = images[0]
        path = os.path.join(args.state, "output", image.subfolder, image.filename)
        with open(path, "rb") as f:
            plan = plan_from_png(f.read())
        print(f"\nPrompt: {args.prompt}  (generated in {time.perf_counter() - t1:.1f} s)\n")
        print(plan_summary(plan) if plan else "(the PNG carries no plan)")
        print(f"\nPNG: {os.path.abspath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
