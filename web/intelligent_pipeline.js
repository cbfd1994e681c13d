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

// The pack's settings in ComfyUI's settings dialog, built from the settings schema route (settings.py's SCHEMA):
// only keys marked `in_dialog` are shown, so a feature switches its keys on in one place. The pack's file (the
// settings route) is the source of truth: on setup the dialog takes the route's values; a change in the dialog
// POSTs that one key; a rejected value is shown in a toast and put back. Typing fires onChange on every key, so a
// change waits for a pause first.
const SETTINGS_ROUTE = "/intelligent/api/settings";
const SCHEMA_ROUTE = "/intelligent/api/settings/schema";
const SETTING_PREFIX = "IntelligentPipeline.";
const POST_DELAY_MS = 600;
const AS_IS = { toDialog: (v) => v, toServer: (v) => v };
const CHOICE = (options) => ({
  toDialog: (v) => String(v),
  toServer: (v) => options.find((o) => String(o) === v) ?? v,
});
const LIST = {
  toDialog: (v) => (v ?? []).join(", "),
  toServer: (v) => String(v).split(",").map((x) => x.trim()).filter(Boolean),
};
const TEXT = { toDialog: (v) => v ?? "", toServer: (v) => (v === "" ? null : v) };

// One schema entry -> the dialog's entry: its widget type, its attributes and how values convert.
function dialogEntry(key, spec) {
  const entry = { key, section: spec.section, name: spec.label, tooltip: spec.tooltip };
  switch (spec.type) {
    case "boolean":
      return { ...entry, type: "boolean", defaultValue: spec.default, map: AS_IS };
    case "integer":
    case "number":
      return { ...entry, type: "number", defaultValue: spec.default, map: AS_IS,
        attrs: { min: spec.min, max: spec.max, step: Number.isInteger(spec.default) ? 1 : 0.1 } };
    case "choice": {
      const map = CHOICE(spec.options);
      return { ...entry, type: "combo", options: spec.options.map(String), defaultValue: map.toDialog(spec.default), map };
    }
    case "string_list":
    case "url_list":
      return { ...entry, type: "text", defaultValue: LIST.toDialog(spec.default), map: LIST };
    default:
      return { ...entry, type: "text", defaultValue: TEXT.toDialog(spec.default), map: TEXT };
  }
}

async function loadSchema() {
  try {
    const res = await api.fetchApi(SCHEMA_ROUTE);
    if (!res.ok) throw new Error(`${SCHEMA_ROUTE}: ${res.status}`);
    const schema = await res.json();
    return Object.entries(schema).filter(([, spec]) => spec.in_dialog).map(([key, spec]) => dialogEntry(key, spec));
  } catch (e) {
    console.warn("Intelligent Pipeline: settings schema not loaded, the dialog shows no pack settings:", e);
    return [];
  }
}

// The extension registers after this module has loaded: the dialog's entries are known by then.
const PACK_SETTINGS = await loadSchema();

let serverSettings = null; // the route's last answer; null until the first sync, so registration posts nothing
const postTimers = {};
const settingsApi = () => app.extensionManager.setting;
const toDialog = (s, values) => (s.map ?? AS_IS).toDialog(values[s.key]);
const showInDialog = (s, values) => settingsApi().set(SETTING_PREFIX + s.key, toDialog(s, values));

async function loadPackSettings() {
  const res = await api.fetchApi(SETTINGS_ROUTE);
  if (!res.ok) throw new Error(`${SETTINGS_ROUTE}: ${res.status}`);
  serverSettings = await res.json();
  for (const s of PACK_SETTINGS) await showInDialog(s, serverSettings); // its onChange sees the server's value
}

function onDialogChange(s, value) {
  if (!serverSettings || value === toDialog(s, serverSettings)) return; // registration, our own sync, a revert
  clearTimeout(postTimers[s.key]);
  postTimers[s.key] = setTimeout(() => postPackSetting(s, value), POST_DELAY_MS);
}

async function postPackSetting(s, value) {
  const res = await api.fetchApi(SETTINGS_ROUTE, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ [s.key]: (s.map ?? AS_IS).toServer(value) }),
  });
  const body = await res.json().catch(() => ({}));
  if (res.ok) {
    serverSettings = body;
    return;
  }
  app.extensionManager.toast.add({
    severity: "error",
    summary: `Intelligent Pipeline: ${s.name}`,
    detail: body.error ?? `the server answered ${res.status}`,
    life: 6000,
  });
  // Put the server's value back, once the user has left the field (not under their cursor while typing).
  const id = SETTING_PREFIX + s.key;
  const revert = () => settingsApi().get(id) === value && showInDialog(s, serverSettings);
  const field = document.getElementById(id);
  if (field?.contains(document.activeElement)) field.addEventListener("focusout", revert, { once: true });
  else revert();
}

const frontendSettings = PACK_SETTINGS.map((s) => ({
  id: SETTING_PREFIX + s.key,
  category: ["Intelligent Pipeline", s.section, s.name],
  name: s.name,
  type: s.type,
  defaultValue: s.defaultValue,
  ...(s.attrs && { attrs: s.attrs }),
  ...(s.options && { options: s.options }),
  ...(s.tooltip && { tooltip: s.tooltip }),
  onChange: (value) => onDialogChange(s, value),
}));

app.registerExtension({
  name: "intelligent.pipeline.reports",
  settings: frontendSettings,
  async setup() {
    api.addEventListener("intelligent.plan", onPlan);
    api.addEventListener("intelligent.progress", onProgress);
    await loadPackSettings().catch((e) => console.warn("Intelligent Pipeline: settings not loaded:", e));
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
