// Shows each Intelligent node's report (what it chose and why) on the node after it runs.
import { app } from "../../scripts/app.js";
import { ComfyWidgets } from "../../scripts/widgets.js";

const OUR_NODES = new Set([
  "IntelligentPromptAnalyzer",
  "IntelligentAutoModelPicker",
  "IntelligentAutoLoraStack",
  "IntelligentMemoryAwareSampler",
]);
const REPORT_WIDGET = "intelligent_report";

function showReport(node, text) {
  let widget = node.widgets?.find((w) => w.name === REPORT_WIDGET);
  if (!widget) {
    widget = ComfyWidgets["STRING"](node, REPORT_WIDGET, ["STRING", { multiline: true }], app).widget;
    const el = widget.element ?? widget.inputEl; // `inputEl` is deprecated in newer frontends
    el.readOnly = true;
    el.style.opacity = 0.85;
    widget.serialize = false; // a report is output, never part of the saved workflow's inputs
  }
  widget.value = text;
  requestAnimationFrame(() => {
    const size = node.computeSize();
    node.setSize([Math.max(node.size[0], size[0]), Math.max(node.size[1], size[1])]);
    app.graph.setDirtyCanvas(true, false);
  });
}

app.registerExtension({
  name: "intelligent.pipeline.reports",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!OUR_NODES.has(nodeData.name)) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const text = message?.text;
      if (text && text.length) showReport(this, Array.isArray(text) ? text.join("\n") : String(text));
    };
  },
});
