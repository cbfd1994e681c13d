"""`make serve`: the runtime ComfyUI with the pack and a model library, in the foreground."""
from __future__ import annotations

import argparse
import os
import sys

from .server import PACK_DIR, ComfyServer, find_comfyui


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="intelligent-pipeline-serve", description=__doc__)
    ap.add_argument("--comfyui", default=None)
    ap.add_argument("--models", default=os.path.join(PACK_DIR, ".runtime", "models"))
    ap.add_argument("--port", type=int, default=8188)
    ap.add_argument("--state", default=os.path.join(PACK_DIR, ".runtime", "serve"))
    ap.add_argument("comfy_args", nargs="*", help="extra main.py arguments (after --)")
    args = ap.parse_args(argv)
    server = ComfyServer(comfyui_path=find_comfyui(args.comfyui), state_dir=args.state, models_dir=args.models,
                         port=args.port, extra_args=[a for a in args.comfy_args if a])
    server.start()
    print(f"ComfyUI with Intelligent Pipeline on {server.url} (log: {server.log_file}); Ctrl+C stops it", flush=True)
    try:
        assert server.process is not None
        return server.process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
