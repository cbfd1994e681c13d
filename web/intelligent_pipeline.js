// Shows each Intelligent node's report (what it chose and why) on the node after it runs.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const OUR_NODES = new Set([
  "IntelligentPromptAnalyzer",
  "IntelligentAutoModelPicker",
  "IntelligentAutoLoraStack",
  "IntelligentMemoryAwareSampler",
]);
const REPORT_WIDGET = "intelligent_report";
const LINE_HEIGHT = 13; // canvas units per line at the editor's textarea font size
const MIN_LINES = 6; // long reports scroll inside the box
const MAX_LINES = 16;

function reportHeight(text) {
  const lines = Math.min(Math.max(text.split("\n").length, MIN_LINES), MAX_LINES);
  return lines * LINE_HEIGHT + 8;
}

function addReportWidget(node) {
  const el = document.createElement("textarea");
  el.className = "comfy-multiline-input"; // the editor's own textarea look
  el.readOnly = true;
  el.spellcheck = false;
  el.style.opacity = 0.85;
  const widget = node.addDOMWidget(REPORT_WIDGET, "intelligent_report", el, {
    getValue: () => el.value,
    setValue: (v) => { el.value = v; },
    getMinHeight: () => reportHeight(el.value),
    serialize: false, // output, never an input: not sent with the prompt
  });
  widget.serialize = false; // ... nor saved in the workflow's widgets_values
  return widget;
}

function showReport(node, text) {
  let widget = node.widgets?.find((w) => w.name === REPORT_WIDGET);
  const grow = widget ? 0 : reportHeight(text); // a new box adds its height instead of squeezing the others
  widget ??= addReportWidget(node);
  widget.value = text;
  const min = node.computeSize();
  node.setSize([Math.max(node.size[0], min[0]), Math.max(node.size[1] + grow, min[1])]);
  node.setDirtyCanvas(true, true);
}

// The pack's websocket events. The latest plan is kept where other extensions can read it; a library
// scan that read files ends with a short notice, so a first scan of a big library is not silent.
export const intelligentPipeline = { lastPlan: null };

function onPlan({ detail }) {
  intelligentPipeline.lastPlan = detail?.plan ?? null;
}

function onProgress({ detail }) {
  if (!detail || detail.task !== "index" || !detail.total || detail.done < detail.total) return;
  app.extensionManager?.toast?.add({
    severity: "info",
    summary: "Intelligent Pipeline",
    detail: detail.message || `Indexed ${detail.total} models`,
    life: 4000,
  });
}

app.registerExtension({
  name: "intelligent.pipeline.reports",
  async setup() {
    api.addEventListener("intelligent.plan", onPlan);
    api.addEventListener("intelligent.progress", onProgress);
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!OUR_NODES.has(nodeData.name)) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const text = message?.text;
      if (text?.length) showReport(this, Array.isArray(text) ? text.join("\n") : String(text));
    };
  },
});
