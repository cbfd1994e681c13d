"""The one place that names ComfyUI's node API version: a future version is a one-line change."""
from comfy_api.latest import ComfyExtension, io  # noqa: F401

PLAN_TYPE = "INTELLIGENT_PLAN"
LORA_STACK_TYPE = "LORA_STACK"
CATEGORY = "intelligent"


class ChoiceOutput(io.Combo.Output):
    """A combo output typed by its option list, so it plugs into old-style combo inputs (KSampler's
    sampler_name/scheduler). ComfyUI 0.3.75 types combo outputs this way; newer versions type them
    plain "COMBO", which those list-typed inputs refuse."""

    @property
    def io_type(self):  # type: ignore[override]
        return self.options
