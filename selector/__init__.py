"""Model selection: prompt analysis, checkpoint/LoRA scoring and the plan the nodes share.

Pure Python (no ComfyUI, no torch). Entry points live in `planner` (parse_request, start_plan,
choose_checkpoint, choose_loras, build_plan, plan_summary) and `analysis` (analyze_keywords).
"""
