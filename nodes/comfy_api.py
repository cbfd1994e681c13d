"""The one place that names ComfyUI's node API version: a future version is a one-line change."""
from comfy_api.latest import ComfyExtension, io  # noqa: F401

PLAN_TYPE = "INTELLIGENT_PLAN"
LORA_STACK_TYPE = "LORA_STACK"
CATEGORY = "intelligent"
