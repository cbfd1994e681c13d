"""Command line: `intelligent-pipeline generate "a sunset"` and `intelligent-pipeline plan "a sunset"`."""
from __future__ import annotations

import argparse
import json
import os
import sys

from ..selector.planner import plan_summary
from .api import ComfyClient, ComfyError
from .generate import generate


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="intelligent-pipeline")
    ap.add_argument("--server", default=os.environ.get("COMFYUI_URL", "http://127.0.0.1:8188"))
    sub = ap.add_subparsers(dest="command", required=True)
    for name in ("generate", "plan"):
        p = sub.add_parser(name)
        p.add_argument("prompt")
        p.add_argument("--negative", default="")
        p.add_argument("--style", default="auto")
        p.add_argument("--quality", default="balanced")
        if name == "generate":
            p.add_argument("--seed", type=int, default=0)
            p.add_argument("--out", default=".", help="folder for the PNGs")
        else:
            p.add_argument("--json", action="store_true", help="print the whole plan as JSON")
    args = ap.parse_args(argv)
    try:
        if args.command == "plan":
            body = {"prompt": args.prompt, "style": args.style, "quality": args.quality}
            if args.negative:
                body["negative_prompt"] = args.negative
            plan = ComfyClient(args.server).post("/intelligent/api/plan", body)
            print(json.dumps(plan, indent=2) if args.json else plan_summary(plan))
            return 0
        images = generate(args.prompt, server=args.server, negative_prompt=args.negative, style=args.style,
                          quality=args.quality, seed=args.seed)
    except ComfyError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for image in images:
        path = image.save(os.path.join(args.out, image.filename))
        if image.plan:
            print(plan_summary(image.plan))
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
