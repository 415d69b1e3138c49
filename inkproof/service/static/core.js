/* The UI's shared code: API calls with the key, messages, the key dialog, tabs, drop zones, the
 * gauge, reference grids and the evidence loader. Imports no page module. */

import { $, el, fmt, fmtBytes, svg } from "./dom.js";
import { evidencePanel } from "./evidence.js";

// Pages register what the shared code calls back: core imports no page module, so no cycles.
export const hooks = { refreshAll: () => {}, loadWriters: () => {}, loadReviews: () => {} };

export const API = "/api/v1";
export const KEY_STORAGE = "inkproof.apiKey";
export const REVIEWER_STORAGE = "inkproof.reviewer";
export const TABS = ["enroll", "verify", "identify", "review", "pair", "document"];

// --- small helpers -------------------------------------------------------------------------

export function storageGet(name) {
  try {
    return window.localStorage.getItem(name) || "";
  } catch {
    return "";
  }
}

export function storageSet(name, value) {
  try {
    if (value) window.localStorage.setItem(name, value);
    else window.localStorage.removeItem(name);
  } catch {
    /* storage disabled: the value lives for this page only */
  }
}

export const enc = encodeURIComponent;

// --- API -----------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = type;
  }
}

export const state = {
  key: storageGet(KEY_STORAGE),
  keyState: "unknown", // unknown | ok | refused | missing
  writers: [],
  imageCache: new Map(), // "writer/refId" or "review/logId" -> Promise<blob URL>
  enrollFiles: [], // {file, url}
  verifyFile: null,
  identifyFile: null,
  pairReference: null,
  pairQuery: null,
  documentFile: null,
  verifyUrl: null,
  identifyUrl: null,
  reviews: [],
};

/**
 * Call the API. Returns parsed JSON (or a Blob with {blob: true}, or null for 204).
 * Throws ApiError with the service's error type and message.
 */
export async function api(path, options = {}) {
  const { method = "GET", form, json, blob = false, key = state.key, authCheck = true } = options;
  const headers = { Accept: blob ? "image/*" : "application/json" };
  if (key) headers["X-API-Key"] = key;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  let response;
  try {
    response = await fetch(API + path, { method, headers, body, cache: "no-store" });
  } catch (error) {
    throw new ApiError(0, "network_error", `Cannot reach the inkproof service (${error.message || error}).`);
  }
  if (!response.ok) {
    let type = "http_error";
    let message = `${response.status} ${response.statusText || "error"}`;
    try {
      const payload = await response.json();
      if (payload && payload.error) {
        type = payload.error.type || type;
        message = payload.error.message || message;
      } else if (payload && payload.detail) {
        message = typeof payload.detail === "string" ? payload.detail : JSON.stringify(payload.detail);
      }
    } catch {
      /* not JSON: keep the status line */
    }
    const error = new ApiError(response.status, type, message);
    if (response.status === 401 && authCheck) keyRefused(error);
    throw error;
  }
  if (response.status === 204) return null;
  return blob ? response.blob() : response.json();
}

/** A blob URL for an image behind the API key (cached per page). */
export function protectedImage(cacheKey, path) {
  if (!state.imageCache.has(cacheKey)) {
    const promise = api(path, { blob: true }).then((data) => URL.createObjectURL(data));
    promise.catch(() => state.imageCache.delete(cacheKey));
    state.imageCache.set(cacheKey, promise);
  }
  return state.imageCache.get(cacheKey);
}

export function referenceImage(writer, referenceId) {
  return protectedImage(`${writer}/${referenceId}`, `/writers/${enc(writer)}/references/${referenceId}/image`);
}

export function forgetWriterImages(writer) {
  for (const [cacheKey, promise] of state.imageCache) {
    if (cacheKey.startsWith(`${writer}/`)) {
      promise.then((url) => URL.revokeObjectURL(url)).catch(() => {});
      state.imageCache.delete(cacheKey);
    }
  }
}

/** Fill an <img> from a protected image; on failure show why instead of a broken image. */
export function loadInto(img, urlPromise, label) {
  const frame = img.parentElement;
  frame.classList.add("loading");
  urlPromise
    .then((url) => {
      img.src = url;
    })
    .catch((error) => {
      img.hidden = true;
      frame.classList.add("unavailable");
      frame.append(el("span", { className: "unavailable-text", text: `${label} unavailable: ${error.message}` }));
    })
    .finally(() => frame.classList.remove("loading"));
}

// --- messages ------------------------------------------------------------------------------

export const messages = $("#messages");
export const messageTemplate = $("#message-template");

/**
 * Show a message. kind: "error" | "success" | "info". context: messages with the same
 * context replace each other (a later success clears an earlier error of the same action).
 */
export function notify(kind, text, { title = "", context = "", detail = "", action = null, timeout } = {}) {
  if (context) clearMessages(context);
  if (kind !== "error") {
    // One passing note at a time; errors stay until dismissed or resolved.
    for (const old of messages.querySelectorAll('[data-kind="success"], [data-kind="info"]')) old.remove();
  }
  const node = messageTemplate.content.firstElementChild.cloneNode(true);
  node.classList.add(`message-${kind}`);
  node.dataset.kind = kind;
  if (context) node.dataset.context = context;
  node.setAttribute("role", kind === "error" ? "alert" : "status");
  const body = $(".message-text", node);
  if (title) body.append(el("strong", { className: "message-title", text: title }), " ");
  body.append(el("span", { className: "message-body", text }));
  if (detail) body.append(" ", el("span", { className: "message-detail", text: detail }));
  if (action) {
    body.append(" ", el("button", { type: "button", className: "link-button", text: action.label, onclick: action.run }));
  }
  $(".message-close", node).addEventListener("click", () => node.remove());
  messages.prepend(node);
  while (messages.children.length > 5) messages.lastElementChild.remove();
  const delay = timeout === undefined ? (kind === "error" ? 0 : 6000) : timeout;
  if (delay) setTimeout(() => node.remove(), delay);
  return node;
}

export function clearMessages(context) {
  for (const node of messages.querySelectorAll(`[data-context="${CSS.escape(context)}"]`)) node.remove();
}

export function showError(title, error, context) {
  if (error instanceof ApiError && error.status === 401) return; // keyRefused has said it
  const detail = error instanceof ApiError && error.status ? `(${error.status} · ${error.type})` : "";
  notify("error", error.message || String(error), { title: `${title}:`, context, detail });
}

// --- API key -------------------------------------------------------------------------------

export const keyDialog = $("#key-dialog");
export const keyInput = $("#api-key-input");
export const keyError = $("#key-error");
export const keyButton = $("#api-key-button");

export function setKeyState(value) {
  state.keyState = value;
  keyButton.dataset.state = value;
  const labels = {
    ok: "API key ✓",
    refused: "API key refused",
    missing: "Set API key",
    unknown: state.key ? "API key" : "Set API key",
  };
  $("#api-key-label").textContent = labels[value];
  keyButton.title = value === "refused" ? "The service refused the stored key: enter another" : "Change the API key";
}

export function openKeyDialog(errorText = "") {
  keyInput.value = state.key;
  keyError.hidden = !errorText;
  keyError.textContent = errorText;
  if (!keyDialog.open) keyDialog.showModal();
  keyInput.focus();
  keyInput.select();
}

export function keyRefused(error) {
  setKeyState("refused");
  notify("error", `The service refused the API key (401): ${error.message}.`, {
    title: "API key refused:",
    context: "auth",
    action: { label: "Enter a valid key", run: () => openKeyDialog() },
  });
}

export async function saveKey(event) {
  event.preventDefault();
  const candidate = keyInput.value.trim();
  if (!candidate) {
    keyError.textContent = "Enter an API key.";
    keyError.hidden = false;
    keyInput.focus();
    return;
  }
  const save = $("#api-key-save");
  save.disabled = true;
  save.textContent = "Checking…";
  try {
    await api("/model", { key: candidate, authCheck: false });
  } catch (error) {
    keyError.textContent =
      error.status === 401
        ? `The service refused this key (401): ${error.message}.`
        : `The key could not be checked: ${error.message}`;
    keyError.hidden = false;
    keyInput.focus();
    keyInput.select();
    return;
  } finally {
    save.disabled = false;
    save.textContent = "Save";
  }
  state.key = candidate;
  storageSet(KEY_STORAGE, candidate);
  keyDialog.close();
  clearMessages("auth");
  setKeyState("ok");
  notify("success", "API key accepted and saved in this browser.", { context: "auth" });
  hooks.refreshAll();
}

keyButton.addEventListener("click", () => openKeyDialog());
$("#key-form").addEventListener("submit", saveKey);
$("#api-key-cancel").addEventListener("click", () => keyDialog.close());
$("#api-key-show").addEventListener("change", (event) => {
  keyInput.type = event.target.checked ? "text" : "password";
});
$("#api-key-forget").addEventListener("click", () => {
  state.key = "";
  storageSet(KEY_STORAGE, "");
  keyInput.value = "";
  setKeyState("missing");
  notify("info", "The API key was removed from this browser.", { context: "auth" });
  keyInput.focus();
});

// --- tabs ----------------------------------------------------------------------------------

export const tabButtons = TABS.map((name) => $(`#tab-${name}`));

export function showTab(name, { focus = false, updateHash = true } = {}) {
  if (!TABS.includes(name)) name = "enroll";
  for (const button of tabButtons) {
    const selected = button.dataset.tab === name;
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    $(`#panel-${button.dataset.tab}`).hidden = !selected;
    if (selected && focus) button.focus();
  }
  document.body.dataset.tab = name;
  if (updateHash && window.location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (state.keyState === "ok") onTabShown(name);
}

export function onTabShown(name) {
  if (name === "verify" || name === "document") hooks.loadWriters();
  if (name === "review") hooks.loadReviews();
}

for (const button of tabButtons) {
  button.addEventListener("click", () => showTab(button.dataset.tab));
  button.addEventListener("keydown", (event) => {
    const index = tabButtons.indexOf(button);
    let next = null;
    if (event.key === "ArrowRight") next = (index + 1) % tabButtons.length;
    else if (event.key === "ArrowLeft") next = (index - 1 + tabButtons.length) % tabButtons.length;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = tabButtons.length - 1;
    if (next !== null) {
      event.preventDefault();
      showTab(tabButtons[next].dataset.tab, { focus: true });
    }
  });
}

// --- drop zones ----------------------------------------------------------------------------

export const isImage = (file) => !file.type || file.type.startsWith("image/");
export const IMAGES = { test: isImage, refusal: "Not an image file:" };

/**
 * Wire a drop zone: drag-and-drop plus its (visually hidden, focusable) file input. ``kind``
 * says which files it takes (``test``) and how a refused one is announced (``refusal``).
 */
export function dropZone(zone, input, onFiles, kind = IMAGES) {
  const accept = (files) => {
    const list = Array.from(files || []);
    const refused = list.filter((file) => !kind.test(file));
    if (refused.length) {
      notify("error", refused.map((file) => `${file.name} (${file.type})`).join(", "), {
        title: kind.refusal,
        context: `drop-${zone.id}`,
      });
    }
    const taken = list.filter(kind.test);
    if (taken.length) onFiles(taken);
  };
  ["dragenter", "dragover"].forEach((type) =>
    zone.addEventListener(type, (event) => {
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
      zone.classList.add("dragover");
    }),
  );
  zone.addEventListener("dragleave", (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove("dragover");
  });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("dragover");
    accept(event.dataTransfer && event.dataTransfer.files);
  });
  input.addEventListener("change", () => {
    accept(input.files);
    input.value = "";
  });
}

/**
 * A single-file drop zone showing a preview of its file; returns a setter. ``canPreview``
 * says whether the browser can show a file in an <img> (not PDFs or TIFFs).
 */
export function singleZone(zoneId, inputId, onChange, { kind = IMAGES, canPreview = () => true } = {}) {
  const zone = $(`#${zoneId}`);
  const input = $(`#${inputId}`);
  const preview = $(".dz-preview", zone);
  const text = $(".dropzone-label span", zone);
  const original = text.innerHTML;
  let url = null;
  preview.addEventListener("error", () => {
    if (!url) return;
    preview.hidden = true;
    text.append(el("br"), el("span", { className: "dz-warning", text: "This browser cannot display the file; it may not be an image." }));
  });
  const set = (file) => {
    if (url) URL.revokeObjectURL(url);
    url = file && canPreview(file) ? URL.createObjectURL(file) : null;
    preview.hidden = !url;
    if (url) preview.src = url;
    else preview.removeAttribute("src");
    zone.classList.toggle("has-file", Boolean(file));
    if (file) {
      text.replaceChildren(el("strong", { text: file.name }), el("br"), `${fmtBytes(file.size)} · click or drop to replace`);
    } else {
      text.innerHTML = original;
    }
    onChange(file);
  };
  dropZone(zone, input, (files) => set(files[0]), kind);
  return set;
}

// Dropping a file outside a zone must not navigate away from the page.
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());

export function busy(button, label) {
  const original = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = label;
  return () => {
    button.removeAttribute("aria-busy");
    button.textContent = original;
  };
}

// --- gauge ---------------------------------------------------------------------------------

/**
 * An inline SVG semicircle: the score's needle over red (reject), amber (review band) and
 * green (accept) zones, with both thresholds marked. The scale zooms on the values shown.
 */
export function renderGauge(container, { score, accept, reject, caption = "Score" }) {
  const values = [score, accept, reject].filter(Number.isFinite);
  const min = Math.min(...values);
  const max = Math.max(...values);
  const pad = Math.max(0.1, (max - min) * 0.6);
  let lo = Math.floor((min - pad) * 10) / 10;
  let hi = Math.ceil((max + pad) * 10) / 10;
  if (min >= 0) lo = Math.max(lo, 0);
  if (min >= -1) lo = Math.max(lo, -1);
  if (max <= 1) hi = Math.min(hi, 1);
  if (hi - lo < 1e-6) hi = lo + 1;

  const cx = 150;
  const cy = 142;
  const r = 108;
  const width = 22;
  const clamp = (v) => Math.min(hi, Math.max(lo, v));
  const angle = (v) => Math.PI * (1 - (clamp(v) - lo) / (hi - lo));
  const point = (v, radius = r) => [cx + radius * Math.cos(angle(v)), cy - radius * Math.sin(angle(v))];
  const arc = (from, to, radius = r) => {
    const [x1, y1] = point(from, radius);
    const [x2, y2] = point(to, radius);
    return `M ${x1.toFixed(2)} ${y1.toFixed(2)} A ${radius} ${radius} 0 0 1 ${x2.toFixed(2)} ${y2.toFixed(2)}`;
  };

  const band = reject < accept;
  const root = svg("svg", {
    viewBox: "-28 4 356 186",
    role: "img",
    class: "gauge-svg",
    "aria-label":
      `${caption} ${fmt(score)}; ` +
      (band
        ? `rejected below ${fmt(reject)}, accepted at ${fmt(accept)} or above, review in between`
        : `accepted at ${fmt(accept)} or above`),
  });
  const defs = svg("defs");
  const hatch = svg("pattern", {
    id: `hatch-${container.id}`,
    width: 6,
    height: 6,
    patternUnits: "userSpaceOnUse",
    patternTransform: "rotate(45)",
  });
  hatch.append(svg("rect", { width: 6, height: 6, class: "g-band-fill" }), svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: "g-band-hatch" }));
  defs.append(hatch);
  root.append(defs);

  root.append(svg("path", { d: arc(lo, hi), class: "g-track", "stroke-width": width + 4 }));
  root.append(svg("path", { d: arc(lo, reject), class: "g-zone g-reject", "stroke-width": width, "data-testid": "gauge-reject-zone" }));
  if (band) {
    root.append(
      svg("path", {
        d: arc(reject, accept),
        class: "g-zone g-band",
        stroke: `url(#hatch-${container.id})`,
        "stroke-width": width,
        "data-testid": "gauge-band",
      }),
    );
  }
  root.append(svg("path", { d: arc(accept, hi), class: "g-zone g-accept", "stroke-width": width, "data-testid": "gauge-accept-zone" }));

  // Threshold marks: a tick across the arc and the value outside it.
  const marks = band
    ? [
        { value: reject, name: "reject", anchor: "end" },
        { value: accept, name: "accept", anchor: "start" },
      ]
    : [{ value: accept, name: "accept", anchor: "middle" }];
  const far = band && Math.abs(angle(reject) - angle(accept)) > 0.5;
  for (const mark of marks) {
    const [x1, y1] = point(mark.value, r - width / 2 - 5);
    const [x2, y2] = point(mark.value, r + width / 2 + 7);
    root.append(svg("line", { x1, y1, x2, y2, class: `g-tick g-tick-${mark.name}`, "data-testid": `gauge-${mark.name}` }));
    const [tx, ty] = point(mark.value, r + width / 2 + 13);
    const anchor = far || !band ? (tx < cx - 8 ? "end" : tx > cx + 8 ? "start" : "middle") : mark.anchor;
    root.append(
      svg("text", { x: tx, y: ty, "text-anchor": anchor, class: `g-tick-label g-tick-label-${mark.name}` }, fmt(mark.value, 2)),
    );
  }

  // End labels and the needle.
  const nearMark = (v) => marks.some((mark) => Math.abs(mark.value - v) < (hi - lo) * 0.06);
  if (!nearMark(lo)) root.append(svg("text", { x: cx - r, y: cy + 18, "text-anchor": "middle", class: "g-end" }, fmt(lo, 1)));
  if (!nearMark(hi)) root.append(svg("text", { x: cx + r, y: cy + 18, "text-anchor": "middle", class: "g-end" }, fmt(hi, 1)));
  const [nx, ny] = point(score, r - 4);
  const needle = svg("g", { class: "g-needle", "data-testid": "gauge-needle" });
  needle.append(svg("line", { x1: cx, y1: cy, x2: nx, y2: ny }), svg("circle", { cx, cy, r: 7 }));
  root.append(needle);
  root.append(svg("text", { x: cx, y: cy - 30, "text-anchor": "middle", class: "g-score", "data-testid": "gauge-score" }, fmt(score)));
  root.append(svg("text", { x: cx, y: cy - 58, "text-anchor": "middle", class: "g-caption" }, caption));

  const legend = el(
    "ul",
    { className: "gauge-legend" },
    el("li", { className: "lg-reject" }, el("span", { className: "swatch" }), band ? `Forgery < ${fmt(reject, 2)}` : `Forgery < ${fmt(accept, 2)}`),
    band ? el("li", { className: "lg-band" }, el("span", { className: "swatch" }), `Review ${fmt(reject, 2)}–${fmt(accept, 2)}`) : null,
    el("li", { className: "lg-accept" }, el("span", { className: "swatch" }), `Genuine ≥ ${fmt(accept, 2)}`),
  );
  container.dataset.score = String(score);
  container.dataset.accept = String(accept);
  container.dataset.reject = String(reject);
  container.replaceChildren(root, legend);
}

export const DECISIONS = {
  genuine: { text: "GENUINE", className: "decision-genuine" },
  forgery: { text: "FORGERY", className: "decision-forgery" },
  review: { text: "SENT TO REVIEW", className: "decision-review" },
};

export function showDecision(node, decision) {
  const info = DECISIONS[decision] || { text: String(decision).toUpperCase(), className: "" };
  node.textContent = info.text;
  node.className = `decision ${info.className}`;
  node.dataset.decision = decision;
}

export function describeSource(source) {
  if (!source) return "";
  if (source === "custom") return "custom (service setting)";
  if (source === "writer") return "writer-specific";
  if (source.startsWith("global:")) return `global · ${source.slice(7)} rule`;
  if (source.startsWith("calibrated:")) return `validation writers · ${source.split(":")[1]}`;
  return source;
}

export const POINT_NAMES = {
  "far-skilled-1": "strict (FAR on skilled forgeries 1 %)",
  "far-skilled-5": "standard (FAR on skilled forgeries 5 %)",
  eer: "balanced (equal error rate)",
};

export const METHOD_NAMES = {
  "svm-rbf": "writer RBF SVM",
  "svm-linear": "writer linear SVM",
  logreg: "writer logistic regression",
};

export const SOURCE_HELP = {
  calibrated: "Thresholds of the operating point, calibrated on validation writers for this number of references.",
  custom: "Thresholds fixed in the service's configuration.",
  writer: "Accept threshold derived from this writer's own references (leave-one-out scores).",
  global: "Thresholds calibrated on validation writers when the model was built.",
};

// --- evidence (the view itself is evidence.js) ---------------------------------------------

/** Fetch a claim's evidence into ``container``; a later request for the container wins. */
export async function loadEvidence(container, logId, context) {
  container.dataset.logId = String(logId);
  container.hidden = false;
  container.replaceChildren(el("p", { className: "muted", text: "Building the evidence (overlays, sensitivity)…", dataset: { testid: "evidence-loading" } }));
  try {
    const evidence = await api(`/claims/${logId}/evidence`);
    if (container.dataset.logId !== String(logId)) return;
    container.replaceChildren(evidencePanel(evidence, { onDownload: () => downloadEvidence(logId, context) }));
  } catch (error) {
    if (container.dataset.logId !== String(logId)) return;
    container.replaceChildren(el("p", { className: "unavailable-text", dataset: { testid: "evidence-error" }, text: `Evidence unavailable: ${error.message}` }));
  }
}

/** Save the self-contained HTML evidence page (fetched with the API key, then downloaded). */
export async function downloadEvidence(logId, context) {
  try {
    const page = await api(`/claims/${logId}/evidence?format=html`, { blob: true });
    const url = URL.createObjectURL(page);
    const link = el("a", { href: url, download: `inkproof-claim-${logId}-evidence.html` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (error) {
    showError(`Could not download the evidence of claim #${logId}`, error, context);
  }
}

/** Reference images of a writer with their scores, best first. */
export function renderReferenceGrid(list, writer, scores, accept, reject = accept) {
  const sorted = scores.slice().sort((a, b) => b.score - a.score);
  list.replaceChildren(
    ...sorted.map((entry, index) => {
      const img = el("img", {
        className: "ref-img",
        alt: `Reference #${entry.reference_id} of ${writer}`,
        dataset: { testid: "reference-image", referenceId: String(entry.reference_id) },
      });
      const frame = el("div", { className: "sig-frame" }, img);
      loadInto(img, referenceImage(writer, entry.reference_id), `Reference #${entry.reference_id}`);
      const band = entry.score >= accept ? "score-pass" : entry.score < reject ? "score-fail" : "score-band";
      const unused = entry.used === false; // flagged at enrollment: unlike the writer's other references
      return el(
        "li",
        { className: `ref${index === 0 ? " ref-best" : ""}`, dataset: { testid: "reference", referenceId: String(entry.reference_id) } },
        frame,
        el(
          "div",
          { className: "ref-meta" },
          el("span", { className: "muted", text: `#${entry.reference_id}` }),
          index === 0 ? el("span", { className: "chip chip-info", text: "best" }) : null,
          unused ? el("span", { className: "chip chip-warn", text: "flagged, not used", dataset: { testid: "reference-flagged" } }) : null,
          el("span", { className: `ref-score ${band}`, dataset: { testid: "reference-score" }, text: fmt(entry.score) }),
        ),
      );
    }),
  );
}
