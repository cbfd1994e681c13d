"""The editor end to end: the real ComfyUI frontend, in headless chromium, loads the shipped workflow the way the
templates browser does, queues it like a user, and shows each Intelligent node's report on the node
(`web/intelligent_pipeline.js`); the saved PNG carries the plan and the editor's workflow.

Screenshots go to pytest's temp folder (`screenshots*/`): the loaded workflow, the graph after the run, and the
picker and LoRA stack at 100 % with their reports.
"""
from __future__ import annotations

import json
import os
import urllib.request

import pytest

from intelligent_pipeline.client.graphs import PROMPT_TO_IMAGE, png_text_chunks

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(300)]

NODE_TYPES = {
    "IntelligentPromptAnalyzer": "Intelligent Prompt Analyzer",
    "IntelligentAutoModelPicker": "Auto Model Picker",
    "IntelligentAutoLoraStack": "Auto LoRA Stack",
    "IntelligentMemoryAwareSampler": "Memory-Aware Sampler",
}
PACK = "intelligent_pipeline"  # the pack's folder under custom_nodes: its templates are listed under this name
PROMPT = "anime girl with pink hair"
REPORT = "intelligent_report"  # the extension's widget name
REPORTED = ["IntelligentAutoModelPicker", "IntelligentAutoLoraStack"]  # the reports the test reads
RUN_TIMEOUT = 90  # a 64x64, 3-step run takes seconds on the CPU
MIN_LINES_SHOWN = 6  # a report box shows at least this many lines before it scrolls

# In the page: a node by type; its report widget as the user sees it; a view of the graph at 100 %.
JS_HELPERS = """
window.__ipTest = {
  node: (type) => app.graph.nodes.find((n) => n.type === type),
  report(type) {
    const node = this.node(type);
    const widgets = node?.widgets?.filter((x) => x.name === '%s') ?? [];
    if (!widgets.length) return null;
    const w = widgets[0], el = w.element ?? w.inputEl, box = el.getBoundingClientRect();
    return {value: w.value, text: el.value, readOnly: el.readOnly, count: widgets.length,
            serialize: w.serialize, serializeToPrompt: w.options?.serialize,
            visible: el.isConnected && getComputedStyle(el).display !== 'none' && box.width > 0 && box.height > 0,
            nodeSize: [...node.size], minSize: [...node.computeSize()], layout: this.layout(node, el)};
  },
  // The report's box on screen: inside its node, clear of the node's other DOM widgets, how many lines it shows.
  layout(node, el) {
    const ds = app.canvas.ds, c = app.canvas.canvas.getBoundingClientRect();
    const left = c.left + (node.pos[0] + ds.offset[0]) * ds.scale, top = c.top + (node.pos[1] + ds.offset[1]) * ds.scale;
    const n = {left, top, right: left + node.size[0] * ds.scale, bottom: top + node.size[1] * ds.scale};
    const r = el.getBoundingClientRect(), slack = 2, style = getComputedStyle(el);
    const lineHeight = parseFloat(style.lineHeight) || 1.2 * parseFloat(style.fontSize);
    const others = node.widgets.filter((w) => w.element && w.element !== el).map((w) => w.element.getBoundingClientRect());
    return {
      insideNode: r.left >= n.left - slack && r.right <= n.right + slack && r.top >= n.top - slack && r.bottom <= n.bottom + slack,
      overlaps: others.filter((o) => o.height > 0 && r.left < o.right && o.left < r.right && r.top < o.bottom && o.top < r.bottom).length,
      linesShown: r.height / ds.scale / lineHeight,
    };
  },
  // The graph from a node's top-left corner at 100 %%, once the next two frames are drawn (DOM widgets follow the draw).
  async focus(type) {
    const node = this.node(type), ds = app.canvas.ds;
    ds.scale = 1;
    ds.offset = [120 - node.pos[0], 200 - node.pos[1]];
    app.canvas.setDirty(true, true);
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return true;
  },
};
// What the server tells the editor about a queued prompt.
window.__ipRun = {done: null, executed: [], cached: []};
(() => {
  const api = window.comfyAPI.api.api, on = (type, f) => api.addEventListener(type, (e) => f(e.detail));
  on('executed', (d) => __ipRun.executed.push(String(d.display_node ?? d.node)));
  on('execution_cached', (d) => __ipRun.cached.push(...d.nodes.map(String)));
  on('execution_success', (d) => { __ipRun.done = {ok: true, prompt_id: d.prompt_id}; });
  on('execution_error', (d) => { __ipRun.done = {ok: false, error: d}; });
  on('execution_interrupted', () => { __ipRun.done = {ok: false, error: 'interrupted'}; });
})();
true
""" % REPORT


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def queue_and_wait(editor, server) -> dict:
    """Queue the graph as the Run button does and wait for the server to finish it; its history entry."""
    editor.js("Object.assign(__ipRun, {done: null, executed: [], cached: []}), true")
    # (queuePrompt's return value is no success flag on frontend 1.32: it is `!{}` for the server's empty node_errors)
    node_errors = editor.js("(async () => { await app.queuePrompt(0, 1); return app.lastNodeErrors ?? null; })()")
    assert not node_errors, f"the server refused the prompt: {node_errors}"
    done = editor.wait_for("__ipRun.done", RUN_TIMEOUT, "the queued workflow to finish")
    assert done["ok"], f"execution failed: {done}\nserver log tail:\n{server.log_text()[-3000:]}"
    entry = get_json(f"{server.url}/history/{done['prompt_id']}")[done["prompt_id"]]
    return {"history": entry, "executed": editor.js("__ipRun.executed"), "cached": editor.js("__ipRun.cached")}


def saved_png(server, history: dict) -> str:
    images = [img for out in history["outputs"].values() for img in out.get("images", []) if img["type"] == "output"]
    assert len(images) == 1, history["outputs"]
    return os.path.join(server.state_dir, "output", images[0]["subfolder"], images[0]["filename"])


def node_reports(editor) -> dict:
    """Once both report widgets are filled and their nodes have grown to fit: picker and LoRA stack reports."""
    reports = editor.wait_for(f"""(() => {{
        const r = {json.dumps(REPORTED)}.map((t) => __ipTest.report(t));
        return r.every((x) => x && x.value && x.nodeSize[1] >= x.minSize[1]) ? r : null;
      }})()""", 10, "the report widgets, with their nodes grown to fit them")
    return dict(zip(("picker", "lora"), reports, strict=True))


def test_the_four_nodes_are_registered_with_their_names(editor):
    registered = editor.js(f"""(() => {{
        const types = {json.dumps(list(NODE_TYPES))};
        return Object.fromEntries(types.map((t) => {{
          const cls = LiteGraph.registered_node_types[t];
          return [t, cls ? {{title: cls.title, display_name: cls.nodeData?.display_name,
                             category: cls.category ?? cls.nodeData?.category}} : null];
        }}));
      }})()""")
    for node_type, name in NODE_TYPES.items():
        assert registered[node_type], f"{node_type} is not registered in LiteGraph"
        assert registered[node_type]["title"] == name
        assert registered[node_type]["display_name"] == name
        assert registered[node_type]["category"] == "intelligent"


@pytest.fixture(scope="module")
def run(editor, server, tmp_path_factory):
    """The shipped workflow, loaded from the templates route, set to the test prompt and a tiny size, queued."""
    shots = tmp_path_factory.mktemp("screenshots")
    templates = get_json(server.url + "/api/workflow_templates")
    assert PROMPT_TO_IMAGE in templates.get(PACK, []), templates
    editor.js(JS_HELPERS)
    loaded = editor.js(f"""(async () => {{
        const r = await fetch('api/workflow_templates/{PACK}/{PROMPT_TO_IMAGE}.json');
        if (!r.ok) throw new Error('template fetch: ' + r.status);
        await app.loadGraphData(await r.json(), true, true, '{PROMPT_TO_IMAGE}');
        return app.graph.nodes.map((n) => n.type);
      }})()""")
    assert set(NODE_TYPES) <= set(loaded), loaded
    editor.js(f"""(() => {{
        const set = (type, name, value) => {{
          const w = __ipTest.node(type).widgets.find((x) => x.name === name);
          w.value = value;
          w.callback?.(value);
        }};
        set('IntelligentPromptAnalyzer', 'prompt', {json.dumps(PROMPT)});
        set('IntelligentAutoModelPicker', 'width', 64);
        set('IntelligentAutoModelPicker', 'height', 64);
        set('IntelligentAutoModelPicker', 'steps', 3);
        app.canvas.setDirty(true, true);
        return true;
      }})()""")
    editor.screenshot(str(shots / "1_loaded.png"))
    first = queue_and_wait(editor, server)
    reports = node_reports(editor)
    editor.screenshot(str(shots / "2_after_run.png"))
    editor.js("__ipTest.focus('IntelligentAutoModelPicker')")
    editor.screenshot(str(shots / "3_reports_at_100_percent.png"))
    layout = editor.js(f"{json.dumps(REPORTED)}.map((t) => __ipTest.report(t).layout)")
    return {"first": first, "reports": reports, "layout": dict(zip(("picker", "lora"), layout, strict=True)),
            "shots": shots}


def test_reports_are_shown_on_the_nodes(run, server, editor):
    picker, lora = run["reports"]["picker"], run["reports"]["lora"]
    with open(saved_png(server, run["first"]["history"]), "rb") as f:
        plan = json.loads(png_text_chunks(f.read())["intelligent_plan"])
    assert f"Checkpoint: {plan['checkpoint']['name']}" in picker["value"], picker["value"]
    assert "pnkhr" in lora["value"], lora["value"]
    for name, report in run["reports"].items():
        assert report["count"] == 1, f"{name}: one report widget"
        assert report["text"] == report["value"], f"{name}: the textarea shows the report"
        assert report["visible"], f"{name}: the report is on screen"
        assert report["readOnly"], f"{name}: a report is read-only"
        layout = run["layout"][name]
        assert layout["insideNode"] and not layout["overlaps"], f"{name}: the report box is laid out badly: {layout}"
        assert layout["linesShown"] >= MIN_LINES_SHOWN, f"{name}: the report box is too small: {layout}"
    ours = [e for e in editor.errors() if "intelligent" in e.lower()]
    assert not ours, ours
    assert not [t for _k, t in editor.console if "scripts/widgets.js" in t], "the extension imports an internal module"
    unhandled = [t for _k, t in editor.console if "Unhandled message" in t and "intelligent." in t]
    assert not unhandled, "the pack's websocket events have no listener in the frontend"


def test_reports_are_output_only_and_rerunning_reuses_them(run, server, editor):
    """A report is neither sent with the prompt nor saved as a widget value: queueing again hits the cache."""
    prompt = editor.js("(async () => (await app.graphToPrompt()).output)()")
    for node in prompt.values():
        assert REPORT not in node["inputs"], node
    workflow = editor.js("app.graph.serialize()")
    for node in workflow["nodes"]:
        assert not any(isinstance(v, str) and v.startswith("Prompt read as") for v in node.get("widgets_values", []))
    second = queue_and_wait(editor, server)
    ours = {str(n["id"]) for n in workflow["nodes"] if n["type"] in NODE_TYPES}
    assert ours <= set(second["cached"]), f"unchanged nodes re-ran: cached {second['cached']}"
    assert node_reports(editor)["lora"]["count"] == 1


def test_the_png_carries_the_plan_and_the_editor_workflow(run, server):
    with open(saved_png(server, run["first"]["history"]), "rb") as f:
        chunks = png_text_chunks(f.read())
    plan = json.loads(chunks["intelligent_plan"])
    assert any("pnkhr" in lora["trigger_words"] for lora in plan["loras"]), plan["loras"]
    assert plan["settings"]["steps"] == 3 and plan["settings"]["width"] == 64 and plan["settings"]["height"] == 64
    workflow = json.loads(chunks["workflow"])
    assert {n["type"] for n in workflow["nodes"]} >= set(NODE_TYPES)
    analyzer = next(n for n in workflow["nodes"] if n["type"] == "IntelligentPromptAnalyzer")
    assert analyzer["widgets_values"][0] == PROMPT, "the editor's workflow, as the user edited it"
    assert json.loads(chunks["prompt"])  # and the API prompt ComfyUI always saves


# The pack's settings in ComfyUI's settings dialog (the extension's `settings`): the pack's file is the source of truth.
MAX_LORAS = "selection.max_loras"
MAX_LORAS_ID = "IntelligentPipeline." + MAX_LORAS
DIALOG_VALUE = f"app.extensionManager.setting.get({json.dumps(MAX_LORAS_ID)})"


def pack_settings_file(server) -> str:
    return os.path.join(server.state_dir, "user", "default", "intelligent-pipeline.json")


def post_settings(server, changes: dict) -> dict:
    request = urllib.request.Request(server.url + "/intelligent/api/settings", data=json.dumps(changes).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as r:
        return json.load(r)


def reload_editor(editor) -> None:
    editor.js("window.__ipBeforeReload = true")
    editor.call("Page.reload")
    editor.wait_for("!window.__ipBeforeReload && !!(window.app && window.app.graph && window.app.extensionManager"
                    " && LiteGraph.registered_node_types['IntelligentAutoModelPicker'])", 60, "the reloaded editor")


def test_settings_dialog_shows_the_pack_settings(editor, server):
    route = get_json(server.url + "/intelligent/api/settings")
    editor.wait_for(f"{DIALOG_VALUE} === {json.dumps(route[MAX_LORAS])}", 10, "the dialog to take the route's value")
    registered = editor.js("Object.keys(app.extensionManager.setting.settings)"
                           ".filter((id) => id.startsWith('IntelligentPipeline.'))")
    # built from the schema route: exactly the keys whose code works (`in_dialog`), nothing that is not used yet
    schema = get_json(server.url + "/intelligent/api/settings/schema")
    assert sorted(registered) == sorted("IntelligentPipeline." + k for k, v in schema.items() if v["in_dialog"])
    assert not [k for k in registered if ".civitai." in k], registered
    assert "IntelligentPipeline.ollama.host" in registered  # (Ollama's settings have code behind them now)


def test_a_change_in_the_settings_dialog_reaches_the_pack_file(editor, server, tmp_path_factory, poll):
    before = get_json(server.url + "/intelligent/api/settings")[MAX_LORAS]
    new = 2 if before != 2 else 1
    try:
        editor.js(f"app.extensionManager.setting.set({json.dumps(MAX_LORAS_ID)}, {new}), true")
        poll(lambda: get_json(server.url + "/intelligent/api/settings")[MAX_LORAS] == new, 10,
                   "the route to return the dialog's value")
        with open(pack_settings_file(server)) as f:
            assert json.load(f)[MAX_LORAS] == new
        # a value the route refuses: a toast says why and the dialog shows the server's value again
        editor.js(f"app.extensionManager.setting.set({json.dumps(MAX_LORAS_ID)}, 99), true")
        editor.wait_for(f"[...document.querySelectorAll('.p-toast-message')].some((t) => /whole number/.test("
                        f"t.textContent)) && {DIALOG_VALUE} === {new}", 10, "the error toast and the value put back")
        assert get_json(server.url + "/intelligent/api/settings")[MAX_LORAS] == new
        # the settings dialog, open at the pack's section
        editor.js("app.extensionManager.command.execute('Comfy.ShowSettingsDialog'), true")
        editor.wait_for("!!document.querySelector('.settings-container, .p-dialog')", 10, "the settings dialog")
        editor.js("""(() => {
            const item = [...document.querySelectorAll('.p-listbox-option, [role=option], li')]
              .find((e) => e.textContent.trim() === 'Intelligent Pipeline');
            item?.click();
            return true;
          })()""")
        editor.wait_for("!!document.getElementById(" + json.dumps(MAX_LORAS_ID) + ")", 10, "the pack's settings panel")
        shots = tmp_path_factory.mktemp("screenshots_settings")
        editor.screenshot(str(shots / "settings_dialog.png"))
        editor.js("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'})), true")
    finally:
        post_settings(server, {MAX_LORAS: before})


def test_loading_the_editor_posts_no_settings(editor, server):
    """The dialog's stored value (ComfyUI's own file) differs from the pack's file: a reload shows the pack's value
    and writes nothing to the pack's file."""
    before = get_json(server.url + "/intelligent/api/settings")[MAX_LORAS]
    other = 4 if before != 4 else 5
    try:
        post_settings(server, {MAX_LORAS: other})  # behind the editor's back
        path = pack_settings_file(server)
        stat, content = os.stat(path).st_mtime_ns, open(path).read()
        reload_editor(editor)
        editor.wait_for(f"{DIALOG_VALUE} === {other}", 10, "the dialog to take the pack file's value")
        editor.js("new Promise((r) => setTimeout(() => r(true), 1500))")  # longer than the extension's POST delay
        assert os.stat(path).st_mtime_ns == stat and open(path).read() == content, "loading the editor wrote settings"
        assert get_json(server.url + "/intelligent/api/settings")[MAX_LORAS] == other
    finally:
        post_settings(server, {MAX_LORAS: before})
