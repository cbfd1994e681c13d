"""Intelligent Prompt Analyzer: prompt text -> the plan's analysis (style, concepts, LoRA tags)."""
from __future__ import annotations

from ..selector import planner
from .comfy_api import CATEGORY, PLAN_TYPE, io
from .common import QUALITIES, STYLES, check_choices, library_fingerprint, new_plan, publish, settings_fingerprint
from .inputs import first_problem, prompt_problem
from .runtime import get_runtime

OLLAMA_CHOICES = ["auto", "on", "off"]
EMPTY_PROMPT = "Intelligent Prompt Analyzer: the prompt is empty. Type what you want to see."


class IntelligentPromptAnalyzer(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="IntelligentPromptAnalyzer",
            display_name="Intelligent Prompt Analyzer",
            category=CATEGORY,
            description="Reads the prompt: style, subject, key concepts and the LoRA tags worth looking for. "
                        "Starts the plan the other Intelligent nodes complete.",
            inputs=[
                io.String.Input("prompt", multiline=True, default="",
                                tooltip="What you want to see, in your own words."),
                io.String.Input("negative_prompt", multiline=True, default="",
                                tooltip="What to avoid. Leave empty for the chosen model family's usual negative."),
                io.Combo.Input("style", options=STYLES, default="auto",
                               tooltip="A hint for model choice; auto reads it from the prompt."),
                io.Combo.Input("quality", options=QUALITIES, default="balanced",
                               tooltip="fast: fewer steps; ultra: the most steps and the largest size that fits."),
                io.Combo.Input("use_ollama", options=OLLAMA_CHOICES, default="auto",
                               tooltip="on: ask the Ollama model (settings ollama.host, ollama.model) to analyse the "
                                       "prompt and choose among the models retrieved for it; off: keywords only; "
                                       "auto: as the setting ollama.enabled says (auto: when a server answers)."),
            ],
            outputs=[
                io.Custom(PLAN_TYPE).Output(display_name="plan", tooltip="The plan so far: feed it to Auto Model Picker."),
                io.String.Output(display_name="positive"),
                io.String.Output(display_name="negative"),
            ],
            hidden=[io.Hidden.unique_id, io.Hidden.prompt, io.Hidden.extra_pnginfo],
        )

    @classmethod
    def validate_inputs(cls, prompt: str = "", negative_prompt: str = "", style: str = "auto",
                        quality: str = "balanced", use_ollama: str = "auto") -> bool | str:
        # ComfyUI 0.3.75 does not check V3 combo values itself, so the combos are checked here too.
        # A linked input arrives as None (its value is not known yet): it is checked in execute.
        if isinstance(prompt, str) and not prompt.strip():
            return EMPTY_PROMPT
        problem = first_problem(prompt_problem("prompt", prompt), prompt_problem("negative_prompt", negative_prompt))
        if problem:
            return f"Intelligent Prompt Analyzer: {problem}"
        return check_choices("Intelligent Prompt Analyzer", style=(style, STYLES), quality=(quality, QUALITIES),
                             use_ollama=(use_ollama, OLLAMA_CHOICES))

    @classmethod
    def fingerprint_inputs(cls, **_) -> tuple:
        return settings_fingerprint("ollama."), library_fingerprint()  # (the LLM reads the library's candidates)

    @classmethod
    def execute(cls, prompt: str, negative_prompt: str, style: str, quality: str, use_ollama: str) -> io.NodeOutput:
        if not prompt or not prompt.strip():
            raise ValueError(EMPTY_PROMPT)
        try:
            plan = new_plan(prompt, negative_prompt, style, quality)
        except planner.PlanRequestError as e:
            raise ValueError(f"Intelligent Prompt Analyzer: {e}") from None
        rt = get_runtime()
        analyst = rt.analyst(use_ollama)
        if analyst is not None:  # the LLM's analysis and picks, among what the library has for the prompt
            plan = planner.consult_llm(plan, rt.ready_index(), analyst, meaning=rt.plan_meaning(),
                                       max_nsfw_level=int(rt.settings.get("selection.max_nsfw_level")))
        publish(cls, 1, plan)
        return io.NodeOutput(plan, plan["prompt"]["positive"], plan["prompt"]["negative"],
                             ui={"text": [planner.plan_summary(plan)]})
