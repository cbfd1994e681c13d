"""`make serve`: the runtime ComfyUI with the pack and a model library, in the foreground.

Each server gets a state folder of its own (its models link, settings, index cache, temp and output
folders): `.runtime/serve-<port>` unless `--state` (`STATE_DIR` in `make serve`) names one, so two
servers with different ports or `MODELS_DIR`s never overwrite each other's.
"""
from __future__ import annotations

import argparse
import os
import sys

from .server import PACK_DIR, ComfyServer, find_comfyui


def state_dir_for(port: int) -> str:
    return os.path.join(PACK_DIR, ".runtime", f"serve-{port}")


def server_from_args(argv: list[str] | None = None) -> ComfyServer:
    ap = argparse.ArgumentParser(prog="intelligent-pipeline-serve", description=__doc__)
    ap.add_argument("--comfyui", default=None)
    ap.add_argument("--models", default=os.path.join(PACK_DIR, ".runtime", "models"))
    ap.add_argument("--port", type=int, default=8188)
    ap.add_argument("--state", default="", help="state folder (default: .runtime/serve-<port>)")
    ap.add_argument("comfy_args", nargs="*", help="extra main.py arguments (after --)")
    args = ap.parse_args(argv)
    return ComfyServer(comfyui_path=find_comfyui(args.comfyui), state_dir=args.state or state_dir_for(args.port),
                       models_dir=args.models, port=args.port, extra_args=[a for a in args.comfy_args if a])


def main(argv: list[str] | None = None) -> int:
    server = server_from_args(argv)
    server.start()
    print(f"ComfyUI with Intelligent Pipeline on {server.url} (state: {server.state_dir}, log: {server.log_file}); "
          "Ctrl+C stops it", flush=True)
    try:
        assert server.process is not None
        return server.process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
