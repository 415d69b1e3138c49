/* inkproof web UI: plain ES2020 modules, no dependencies, no build step; talks to the JSON API under /api/v1.
 * One module per page (enroll, writers, verify, identify, review, pair, document); shared code in
 * core.js and dom.js, the evidence view in evidence.js; this entry module starts the UI.
 *
 * Every protected request carries the API key (kept in localStorage) as X-API-Key. Images that
 * need the key (reference and review images) are fetched with fetch() and shown as blob URLs,
 * since <img src> cannot send headers. Every API error is shown in the message area.
 */
import { $ } from "./dom.js";
import { TABS, api, hooks, notify, onTabShown, openKeyDialog, setKeyState, showError, showTab, state } from "./core.js";
import { loadWriters } from "./writers.js";
import { renderEnrollPreviews } from "./enroll.js";
import { loadReviews, refreshReviewCount } from "./review.js";
// The pages without anything the start-up calls: imported for their event handlers.
import "./verify.js";
import "./identify.js";
import "./pair.js";
import "./document.js";

// --- start-up ------------------------------------------------------------------------------

async function loadHealth() {
  const pill = $("#service-status");
  try {
    const health = await api("/health", { key: "", authCheck: false });
    pill.textContent = health.status === "ok" ? `Service ready · ${health.model}` : `Service degraded · ${health.model}`;
    pill.dataset.status = health.status;
    if (!health.store_consistent) {
      notify("error", "The store's embeddings do not match the running model; an administrator must reindex the store.", {
        title: "Service degraded:",
        context: "health",
      });
    }
  } catch (error) {
    pill.textContent = "Service unreachable";
    pill.dataset.status = "down";
    showError("Service unreachable", error, "health");
  }
}

async function loadModel() {
  try {
    const model = await api("/model");
    const size = Array.isArray(model.input_size) ? model.input_size.join("×") : "";
    $("#model-info").textContent = `Model ${model.name}${size ? ` · input ${size}` : ""} · accept rule ${model.accept_rule}, reject rule ${model.reject_rule}`;
    setKeyState("ok");
    return true;
  } catch (error) {
    if (error.status !== 401) showError("Could not load the model information", error, "model");
    return false;
  }
}

async function refreshAll() {
  if (!(await loadModel())) return;
  loadWriters();
  refreshReviewCount();
  onTabShown(document.body.dataset.tab);
}

function start() {
  const initial = window.location.hash.slice(1);
  showTab(TABS.includes(initial) ? initial : "enroll", { updateHash: false });
  window.addEventListener("hashchange", () => showTab(window.location.hash.slice(1), { updateHash: false }));
  renderEnrollPreviews();
  loadHealth();
  if (state.key) {
    setKeyState("unknown");
    refreshAll();
  } else {
    setKeyState("missing");
    openKeyDialog();
  }
  document.body.dataset.ready = "true";
}

hooks.refreshAll = refreshAll;
hooks.loadWriters = loadWriters;
hooks.loadReviews = loadReviews;

start();
