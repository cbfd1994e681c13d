"""Intelligent Pipeline: a ComfyUI node pack that turns a prompt into a whole, explained plan.

Entry only. ComfyUI imports this module at start; everything heavy (torch, the index, the
nodes) is imported lazily by `comfy_entrypoint`, so the pack adds little to ComfyUI's start and
`intelligent_pipeline.selector` / `.metadata` / `.client` import without ComfyUI.
"""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    from .nodes.extension import make_extension

    return make_extension()
