/* inkproof web UI: plain ES2020 modules, no dependencies, no build step; talks to the JSON API under /api/v1.
 * Shared helpers live in dom.js, the evidence view in evidence.js; this file wires the pages.
 *
 * Every protected request carries the API key (kept in localStorage) as X-API-Key. Images that
 * need the key (reference and review images) are fetched with fetch() and shown as blob URLs,
 * since <img src> cannot send headers. Every API error is shown in the message area.
 */
import { $, el, fmt, fmtBytes, fmtDate, fmtDay, svg } from "./dom.js";
import { evidencePanel } from "./evidence.js";

(() => {
  const API = "/api/v1";
  const KEY_STORAGE = "inkproof.apiKey";
  const REVIEWER_STORAGE = "inkproof.reviewer";
  const TABS = ["enroll", "verify", "identify", "review", "pair", "document"];

  // --- small helpers -------------------------------------------------------------------------

  function storageGet(name) {
    try {
      return window.localStorage.getItem(name) || "";
    } catch {
      return "";
    }
  }

  function storageSet(name, value) {
    try {
      if (value) window.localStorage.setItem(name, value);
      else window.localStorage.removeItem(name);
    } catch {
      /* storage disabled: the value lives for this page only */
    }
  }

  const enc = encodeURIComponent;

  // --- API -----------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, type, message) {
      super(message);
      this.name = "ApiError";
      this.status = status;
      this.type = type;
    }
  }

  const state = {
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
  async function api(path, options = {}) {
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
  function protectedImage(cacheKey, path) {
    if (!state.imageCache.has(cacheKey)) {
      const promise = api(path, { blob: true }).then((data) => URL.createObjectURL(data));
      promise.catch(() => state.imageCache.delete(cacheKey));
      state.imageCache.set(cacheKey, promise);
    }
    return state.imageCache.get(cacheKey);
  }

  function referenceImage(writer, referenceId) {
    return protectedImage(`${writer}/${referenceId}`, `/writers/${enc(writer)}/references/${referenceId}/image`);
  }

  function forgetWriterImages(writer) {
    for (const [cacheKey, promise] of state.imageCache) {
      if (cacheKey.startsWith(`${writer}/`)) {
        promise.then((url) => URL.revokeObjectURL(url)).catch(() => {});
        state.imageCache.delete(cacheKey);
      }
    }
  }

  /** Fill an <img> from a protected image; on failure show why instead of a broken image. */
  function loadInto(img, urlPromise, label) {
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

  const messages = $("#messages");
  const messageTemplate = $("#message-template");

  /**
   * Show a message. kind: "error" | "success" | "info". context: messages with the same
   * context replace each other (a later success clears an earlier error of the same action).
   */
  function notify(kind, text, { title = "", context = "", detail = "", action = null, timeout } = {}) {
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

  function clearMessages(context) {
    for (const node of messages.querySelectorAll(`[data-context="${CSS.escape(context)}"]`)) node.remove();
  }

  function showError(title, error, context) {
    if (error instanceof ApiError && error.status === 401) return; // keyRefused has said it
    const detail = error instanceof ApiError && error.status ? `(${error.status} · ${error.type})` : "";
    notify("error", error.message || String(error), { title: `${title}:`, context, detail });
  }

  // --- API key -------------------------------------------------------------------------------

  const keyDialog = $("#key-dialog");
  const keyInput = $("#api-key-input");
  const keyError = $("#key-error");
  const keyButton = $("#api-key-button");

  function setKeyState(value) {
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

  function openKeyDialog(errorText = "") {
    keyInput.value = state.key;
    keyError.hidden = !errorText;
    keyError.textContent = errorText;
    if (!keyDialog.open) keyDialog.showModal();
    keyInput.focus();
    keyInput.select();
  }

  function keyRefused(error) {
    setKeyState("refused");
    notify("error", `The service refused the API key (401): ${error.message}.`, {
      title: "API key refused:",
      context: "auth",
      action: { label: "Enter a valid key", run: () => openKeyDialog() },
    });
  }

  async function saveKey(event) {
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
    refreshAll();
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

  const tabButtons = TABS.map((name) => $(`#tab-${name}`));

  function showTab(name, { focus = false, updateHash = true } = {}) {
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

  function onTabShown(name) {
    if (name === "verify" || name === "document") loadWriters();
    if (name === "review") loadReviews();
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

  const isImage = (file) => !file.type || file.type.startsWith("image/");
  const IMAGES = { test: isImage, refusal: "Not an image file:" };

  /**
   * Wire a drop zone: drag-and-drop plus its (visually hidden, focusable) file input. ``kind``
   * says which files it takes (``test``) and how a refused one is announced (``refusal``).
   */
  function dropZone(zone, input, onFiles, kind = IMAGES) {
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
  function singleZone(zoneId, inputId, onChange, { kind = IMAGES, canPreview = () => true } = {}) {
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

  function busy(button, label) {
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
  function renderGauge(container, { score, accept, reject, caption = "Score" }) {
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

  const DECISIONS = {
    genuine: { text: "GENUINE", className: "decision-genuine" },
    forgery: { text: "FORGERY", className: "decision-forgery" },
    review: { text: "SENT TO REVIEW", className: "decision-review" },
  };

  function showDecision(node, decision) {
    const info = DECISIONS[decision] || { text: String(decision).toUpperCase(), className: "" };
    node.textContent = info.text;
    node.className = `decision ${info.className}`;
    node.dataset.decision = decision;
  }

  function describeSource(source) {
    if (!source) return "";
    if (source === "custom") return "custom (service setting)";
    if (source === "writer") return "writer-specific";
    if (source.startsWith("global:")) return `global · ${source.slice(7)} rule`;
    if (source.startsWith("calibrated:")) return `validation writers · ${source.split(":")[1]}`;
    return source;
  }

  const POINT_NAMES = {
    "far-skilled-1": "strict (FAR on skilled forgeries 1 %)",
    "far-skilled-5": "standard (FAR on skilled forgeries 5 %)",
    eer: "balanced (equal error rate)",
  };

  const METHOD_NAMES = {
    "svm-rbf": "writer RBF SVM",
    "svm-linear": "writer linear SVM",
    logreg: "writer logistic regression",
  };

  const SOURCE_HELP = {
    calibrated: "Thresholds of the operating point, calibrated on validation writers for this number of references.",
    custom: "Thresholds fixed in the service's configuration.",
    writer: "Accept threshold derived from this writer's own references (leave-one-out scores).",
    global: "Thresholds calibrated on validation writers when the model was built.",
  };

  // --- writers -------------------------------------------------------------------------------

  let writersLoading = null;

  function loadWriters() {
    if (!writersLoading) {
      writersLoading = api("/writers")
        .then((writers) => {
          state.writers = writers;
          renderWriters();
          fillWriterSelect();
          clearMessages("writers");
          return writers;
        })
        .catch((error) => {
          showError("Could not load the writers", error, "writers");
          return state.writers;
        })
        .finally(() => {
          writersLoading = null;
        });
    }
    return writersLoading;
  }

  function renderWriters() {
    const filter = $("#writers-filter").value.trim().toLowerCase();
    const body = $("#writers-body");
    const rows = state.writers
      .filter((w) => !filter || w.external_id.toLowerCase().includes(filter) || (w.display_name || "").toLowerCase().includes(filter))
      .map((writer) =>
        el(
          "tr",
          { dataset: { testid: "writer-row", writer: writer.external_id } },
          el(
            "td",
            {},
            el("span", { className: "writer-id", text: writer.external_id }),
            writer.display_name && writer.display_name !== writer.external_id
              ? el("span", { className: "writer-name", text: writer.display_name })
              : null,
          ),
          el("td", { className: "num", dataset: { testid: "writer-refs" }, text: String(writer.references) }),
          el("td", { className: "muted nowrap", title: fmtDate(writer.created_at), text: fmtDay(writer.created_at) }),
          el(
            "td",
            { className: "row-actions" },
            el("button", {
              type: "button",
              className: "btn btn-small",
              text: "Verify",
              "aria-label": `Verify a signature against ${writer.external_id}`,
              onclick: () => {
                $("#verify-writer").value = writer.external_id;
                updateVerifyButton();
                showTab("verify");
                $("#verify-query").focus();
              },
            }),
            el("button", {
              type: "button",
              className: "btn btn-small btn-danger",
              text: "Delete",
              dataset: { testid: "writer-delete" },
              "aria-label": `Delete writer ${writer.external_id}`,
              onclick: () => deleteWriter(writer),
            }),
          ),
        ),
      );
    body.replaceChildren(...rows);
    $("#writers-table").closest(".table-wrap").hidden = rows.length === 0;
    $("#writers-empty").hidden = state.writers.length > 0;
    $("#writers-empty").textContent = "No writers enrolled yet.";
    if (state.writers.length && !rows.length) {
      $("#writers-empty").hidden = false;
      $("#writers-empty").textContent = "No writer matches the filter.";
    }
  }

  function fillWriterSelect() {
    const select = $("#verify-writer");
    const current = select.value;
    const options = state.writers.map((w) =>
      el("option", {
        value: w.external_id,
        text: `${w.external_id}${w.display_name && w.display_name !== w.external_id ? ` — ${w.display_name}` : ""} (${w.references} ref.)`,
        disabled: w.references === 0,
      }),
    );
    select.replaceChildren(el("option", { value: "", text: state.writers.length ? "Choose a writer…" : "No writers enrolled" }), ...options);
    if (state.writers.some((w) => w.external_id === current)) select.value = current;
    updateVerifyButton();
    fillClaimedSelect();
  }

  function fillClaimedSelect() {
    const select = $("#document-claimed");
    const chosen = new Set(Array.from(select.selectedOptions, (option) => option.value));
    select.replaceChildren(
      ...state.writers.map((w) =>
        el("option", {
          value: w.external_id,
          text: `${w.external_id}${w.display_name && w.display_name !== w.external_id ? ` — ${w.display_name}` : ""}`,
          disabled: w.references === 0,
          selected: chosen.has(w.external_id),
        }),
      ),
    );
    select.disabled = state.writers.length === 0;
    $("#document-claimed-hint").textContent = state.writers.length
      ? "Ctrl- or ⌘-click to choose several. With none, each signature is identified among all writers."
      : "No writers enrolled: signatures are found and checked, not identified.";
  }

  async function deleteWriter(writer) {
    const confirmed = window.confirm(
      `Delete writer "${writer.external_id}" and ${writer.references} reference signature(s)?\nThis cannot be undone.`,
    );
    if (!confirmed) return;
    try {
      await api(`/writers/${enc(writer.external_id)}`, { method: "DELETE" });
      forgetWriterImages(writer.external_id);
      notify("success", `Writer ${writer.external_id} deleted.`, { context: "writers" });
    } catch (error) {
      showError(`Could not delete ${writer.external_id}`, error, "writers");
    }
    loadWriters();
  }

  $("#writers-refresh").addEventListener("click", () => loadWriters());
  $("#writers-filter").addEventListener("input", renderWriters);

  // --- enroll --------------------------------------------------------------------------------

  const enrollForm = $("#enroll-form");

  function fileKey(file) {
    return `${file.name}|${file.size}|${file.lastModified}`;
  }

  function addEnrollFiles(files) {
    const known = new Set(state.enrollFiles.map((item) => fileKey(item.file)));
    for (const file of files) {
      if (known.has(fileKey(file))) continue;
      known.add(fileKey(file));
      state.enrollFiles.push({ file, url: URL.createObjectURL(file) });
    }
    renderEnrollPreviews();
  }

  function renderEnrollPreviews() {
    const list = $("#enroll-previews");
    list.replaceChildren(
      ...state.enrollFiles.map((item, index) => {
        const img = el("img", { src: item.url, alt: `Preview of ${item.file.name}` });
        img.addEventListener("error", () => {
          img.replaceWith(el("span", { className: "thumb-broken", text: "no preview" }));
        });
        return el(
          "li",
          { className: "thumb", dataset: { testid: "enroll-preview" } },
          el("div", { className: "sig-frame sig-frame-small" }, img),
          el("span", { className: "thumb-name", title: item.file.name, text: item.file.name }),
          el("button", {
            type: "button",
            className: "thumb-remove",
            "aria-label": `Remove ${item.file.name}`,
            text: "×",
            onclick: () => {
              URL.revokeObjectURL(item.url);
              state.enrollFiles.splice(index, 1);
              renderEnrollPreviews();
            },
          }),
        );
      }),
    );
    const count = state.enrollFiles.length;
    $("#enroll-count").textContent = count ? `${count} image${count === 1 ? "" : "s"} chosen` : "";
    $("#enroll-submit").disabled = count === 0;
    $("#enroll-clear").disabled = count === 0;
  }

  function clearEnrollFiles({ revoke = true } = {}) {
    if (revoke) state.enrollFiles.forEach((item) => URL.revokeObjectURL(item.url));
    state.enrollFiles = [];
    renderEnrollPreviews();
  }

  dropZone($("#enroll-drop"), $("#enroll-files"), addEnrollFiles);
  $("#enroll-clear").addEventListener("click", () => clearEnrollFiles());

  let enrollResultUrls = [];

  enrollForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const writerInput = $("#enroll-writer");
    const writer = writerInput.value.trim();
    if (!writer) {
      writerInput.setAttribute("aria-invalid", "true");
      notify("error", "Enter the writer id to enroll the images for.", { title: "Missing writer id:", context: "enroll" });
      writerInput.focus();
      return;
    }
    writerInput.removeAttribute("aria-invalid");
    if (!state.enrollFiles.length) return;
    const items = state.enrollFiles.slice();
    const form = new FormData();
    items.forEach((item) => form.append("files", item.file, item.file.name));
    const name = $("#enroll-name").value.trim();
    if (name) form.append("display_name", name);
    const submit = $("#enroll-submit");
    const done = busy(submit, "Enrolling…");
    try {
      const result = await api(`/writers/${enc(writer)}/references`, { method: "POST", form });
      clearMessages("enroll");
      enrollResultUrls.forEach((url) => URL.revokeObjectURL(url));
      enrollResultUrls = items.map((item) => item.url);
      renderEnrollResult(result, items);
      // Only the uploaded files leave the selection (more may have been added meanwhile).
      state.enrollFiles = state.enrollFiles.filter((item) => !items.includes(item));
      forgetWriterImages(result.writer.external_id);
      notify(
        result.added ? "success" : "info",
        `${result.writer.external_id}: ${result.added} added, ${result.duplicates} duplicate, ${result.rejected} rejected.`,
        { context: "enroll" },
      );
      loadWriters();
    } catch (error) {
      showError("Enrollment failed", error, "enroll");
    } finally {
      done();
      renderEnrollPreviews();
    }
  });

  function renderEnrollResult(result, items) {
    const box = $("#enroll-results");
    const writer = result.writer;
    const summary = el(
      "div",
      { className: "result-summary", dataset: { testid: "enroll-summary" } },
      el("strong", { text: writer.external_id }),
      writer.display_name && writer.display_name !== writer.external_id ? ` (${writer.display_name})` : "",
      result.writer_created ? el("span", { className: "chip chip-info", text: "new writer" }) : null,
      el(
        "span",
        { className: "summary-counts" },
        el("span", { className: "count-ok", text: `${result.added} added` }),
        el("span", { className: "count-dup", text: `${result.duplicates} duplicate` }),
        el("span", { className: "count-bad", text: `${result.rejected} rejected` }),
        el("span", { className: "muted", text: `now ${writer.references} reference${writer.references === 1 ? "" : "s"}` }),
      ),
    );
    const list = el(
      "ul",
      { className: "outcomes", "aria-label": "Result per image" },
      result.images.map((image) => {
        const status = !image.accepted ? "rejected" : image.duplicate ? "duplicate" : "accepted";
        const item = items[image.index];
        const label = {
          accepted: "Accepted",
          rejected: "Rejected",
          duplicate: "Duplicate",
        }[status];
        let detail = "";
        if (status === "duplicate") detail = `already enrolled as reference #${image.reference_id}`;
        else if (status === "accepted") detail = `reference #${image.reference_id}`;
        const problems = image.problems && image.problems.length ? image.problems : [];
        return el(
          "li",
          { className: `outcome outcome-${status}`, dataset: { testid: "enroll-result", status } },
          el(
            "div",
            { className: "sig-frame sig-frame-small" },
            item ? el("img", { src: item.url, alt: "" }) : null,
          ),
          el(
            "div",
            { className: "outcome-body" },
            el("span", { className: "outcome-name", text: item ? item.file.name : image.source }),
            el(
              "span",
              { className: "outcome-line" },
              el("span", { className: `chip chip-${status}`, text: label }),
              image.quality_score !== null && image.quality_score !== undefined
                ? el("span", { className: "muted", text: `quality ${fmt(image.quality_score, 2)}` })
                : null,
              detail ? el("span", { className: "muted", text: detail }) : null,
            ),
            problems.length
              ? el(
                  "ul",
                  { className: "problems", dataset: { testid: "enroll-problems" } },
                  problems.map((p) => el("li", { text: p })),
                )
              : null,
          ),
        );
      }),
    );
    box.replaceChildren(el("h3", { text: "Result" }), summary, list);
    box.hidden = false;
  }

  // --- verify --------------------------------------------------------------------------------

  function updateVerifyButton() {
    $("#verify-submit").disabled = !($("#verify-writer").value && state.verifyFile);
  }

  const setVerifyFile = singleZone("verify-drop", "verify-query", (file) => {
    state.verifyFile = file;
    updateVerifyButton();
  });
  $("#verify-writer").addEventListener("change", updateVerifyButton);

  $("#verify-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const writer = $("#verify-writer").value;
    const file = state.verifyFile;
    if (!writer || !file) {
      notify("error", "Choose the claimed writer and a questioned signature.", { title: "Incomplete:", context: "verify" });
      return;
    }
    const form = new FormData();
    form.append("query", file, file.name);
    form.append("fusion", $("#verify-fusion").value); // models without a claims calibration only
    form.append("operating_point", $("#verify-operating-point").value);
    $("#verify-result").hidden = true; // never show an earlier answer beside a new question
    const done = busy($("#verify-submit"), "Verifying…");
    try {
      const claim = await api(`/writers/${enc(writer)}/verify`, { method: "POST", form });
      clearMessages("verify");
      renderClaim(claim, file);
      if (claim.decision === "review") {
        notify("info", `Claim #${claim.log_id} was sent to the review queue.`, { context: "verify" });
        refreshReviewCount();
      }
    } catch (error) {
      showError("Verification failed", error, "verify");
    } finally {
      done();
      updateVerifyButton();
    }
  });

  function renderClaim(claim, file) {
    const box = $("#verify-result");
    showDecision($("#verify-decision"), claim.decision);
    $("#verify-writer-out").textContent = claim.external_id;
    $("#verify-score").textContent = `${fmt(claim.fused_score)} (${METHOD_NAMES[claim.method] || claim.method}, ${claim.references_used} reference(s))`;
    $("#verify-point").textContent = claim.operating_point ? POINT_NAMES[claim.operating_point] || claim.operating_point : "card's global thresholds";
    $("#verify-accept").textContent = fmt(claim.accept_threshold);
    $("#verify-reject").textContent = fmt(claim.reject_threshold);
    $("#verify-source").textContent = describeSource(claim.threshold_source);
    $("#verify-source").dataset.source = claim.threshold_source;
    $("#verify-source").title = SOURCE_HELP[String(claim.threshold_source).split(":")[0]] || "";
    $("#verify-log").textContent = `#${claim.log_id}`;
    renderGauge($("#verify-gauge"), {
      score: claim.fused_score,
      accept: claim.accept_threshold,
      reject: claim.reject_threshold,
      caption: "Fused score",
    });
    if (state.verifyUrl) URL.revokeObjectURL(state.verifyUrl);
    state.verifyUrl = URL.createObjectURL(file);
    $("#verify-query-img").src = state.verifyUrl;
    $("#verify-refs-writer").textContent = claim.external_id;
    // Calibrated methods score on their own scale: the raw per-reference scores get no pass/fail colour then.
    const plain = !claim.operating_point;
    renderReferenceGrid(
      $("#verify-references"),
      claim.external_id,
      claim.reference_scores,
      plain ? claim.accept_threshold : Infinity,
      plain ? claim.reject_threshold : -Infinity,
    );
    box.hidden = false;
    box.scrollIntoView({ block: "nearest", behavior: "smooth" });
    loadEvidence($("#verify-evidence"), claim.log_id, "verify");
  }

  // --- evidence (the view itself is evidence.js) ---------------------------------------------

  /** Fetch a claim's evidence into ``container``; a later request for the container wins. */
  async function loadEvidence(container, logId, context) {
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
  async function downloadEvidence(logId, context) {
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
  function renderReferenceGrid(list, writer, scores, accept, reject = accept) {
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

  // --- identify ------------------------------------------------------------------------------

  singleZone("identify-drop", "identify-query", (file) => {
    state.identifyFile = file;
    $("#identify-submit").disabled = !file;
  });

  $("#identify-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = state.identifyFile;
    if (!file) return;
    const top = Math.min(100, Math.max(1, parseInt($("#identify-top").value, 10) || 5));
    $("#identify-top").value = String(top);
    const form = new FormData();
    form.append("query", file, file.name);
    form.append("top", String(top));
    $("#identify-result").hidden = true; // never show an earlier answer beside a new question
    const done = busy($("#identify-submit"), "Searching…");
    try {
      const result = await api("/identify", { method: "POST", form });
      clearMessages("identify");
      renderCandidates(result, file);
    } catch (error) {
      showError("Identification failed", error, "identify");
    } finally {
      done();
      $("#identify-submit").disabled = !state.identifyFile;
    }
  });

  function renderCandidates(result, file) {
    if (state.identifyUrl) URL.revokeObjectURL(state.identifyUrl);
    state.identifyUrl = URL.createObjectURL(file);
    $("#identify-query-img").src = state.identifyUrl;
    const kinds = { exact: "exact search", approximate: "approximate index", head: "every reference scored" };
    $("#identify-meta").textContent = `${result.references} reference${result.references === 1 ? "" : "s"} searched · ${kinds[result.index] || result.index}`;
    const list = $("#identify-candidates");
    if (!result.candidates.length) {
      list.replaceChildren(el("li", { className: "empty", text: "No enrolled references to compare with." }));
    } else {
      const best = result.candidates[0].score;
      list.replaceChildren(
        ...result.candidates.map((candidate) => {
          const img = el("img", { className: "ref-img", alt: `Best-matching reference of ${candidate.external_id}`, dataset: { testid: "candidate-image" } });
          const frame = el("div", { className: "sig-frame" }, img);
          loadInto(img, referenceImage(candidate.external_id, candidate.reference_id), "Reference");
          const share = best > 0 ? Math.max(0, Math.min(1, candidate.score / best)) : 0;
          return el(
            "li",
            { className: "candidate", dataset: { testid: "candidate", writer: candidate.external_id, rank: String(candidate.rank) } },
            el("span", { className: "rank", "aria-label": `Rank ${candidate.rank}`, text: String(candidate.rank) }),
            el(
              "div",
              { className: "candidate-who" },
              el("span", { className: "writer-id", text: candidate.external_id }),
              candidate.display_name && candidate.display_name !== candidate.external_id
                ? el("span", { className: "writer-name", text: candidate.display_name })
                : null,
              el("span", { className: "muted small", text: `via reference #${candidate.reference_id}` }),
            ),
            el(
              "div",
              { className: "candidate-score" },
              el("span", { className: "score-value", dataset: { testid: "candidate-score" }, text: fmt(candidate.score) }),
              el("span", { className: "bar", "aria-hidden": "true" }, el("span", { style: `width:${(share * 100).toFixed(1)}%` })),
            ),
            frame,
            el("button", {
              type: "button",
              className: "btn btn-small",
              text: "Verify claim",
              "aria-label": `Verify this signature against ${candidate.external_id}`,
              onclick: () => {
                $("#verify-writer").value = candidate.external_id;
                setVerifyFile(file);
                showTab("verify");
                $("#verify-submit").focus();
              },
            }),
          );
        }),
      );
    }
    $("#identify-result").hidden = false;
  }

  // --- review --------------------------------------------------------------------------------

  const reviewerInput = $("#reviewer-name");
  reviewerInput.value = storageGet(REVIEWER_STORAGE);
  reviewerInput.addEventListener("change", () => storageSet(REVIEWER_STORAGE, reviewerInput.value.trim()));

  function setReviewCount(count) {
    const badge = $("#review-count");
    badge.textContent = String(count);
    badge.hidden = count === 0;
    badge.setAttribute("aria-label", `${count} pending`);
  }

  function refreshReviewCount() {
    api("/reviews?limit=500")
      .then((items) => setReviewCount(items.length))
      .catch((error) => showError("Could not load the review queue", error, "reviews"));
  }

  let reviewsLoading = null;

  function loadReviews() {
    if (!reviewsLoading) {
      const list = $("#review-list");
      list.setAttribute("aria-busy", "true");
      reviewsLoading = api("/reviews?limit=100")
        .then((items) => {
          clearMessages("reviews");
          state.reviews = items;
          renderReviews();
          setReviewCount(items.length);
        })
        .catch((error) => showError("Could not load the review queue", error, "reviews"))
        .finally(() => {
          list.removeAttribute("aria-busy");
          reviewsLoading = null;
        });
    }
    return reviewsLoading;
  }

  function renderReviews() {
    const list = $("#review-list");
    list.replaceChildren(...state.reviews.map(reviewCard));
    $("#review-empty").hidden = state.reviews.length > 0;
  }

  /** Where a score lies relative to the thresholds, in words. */
  function bandNote(item) {
    const score = item.fused_score;
    if (score >= item.threshold) return `Score ${fmt(score)} is ${fmt(score - item.threshold)} above the accept threshold ${fmt(item.threshold)}.`;
    if (score < item.reject_threshold) return `Score ${fmt(score)} is ${fmt(item.reject_threshold - score)} below the reject threshold ${fmt(item.reject_threshold)}.`;
    return `Score ${fmt(score)}: ${fmt(score - item.reject_threshold)} above reject (${fmt(item.reject_threshold)}), ${fmt(item.threshold - score)} below accept (${fmt(item.threshold)}).`;
  }

  function reviewCard(item) {
    const gaugeBox = el("div", { className: "gauge gauge-small", id: `review-gauge-${item.log_id}`, dataset: { testid: "review-gauge" } });
    renderGauge(gaugeBox, { score: item.fused_score, accept: item.threshold, reject: item.reject_threshold, caption: "Fused score" });

    const queryImg = el("img", { alt: `Questioned signature of claim #${item.log_id}`, dataset: { testid: "review-query-image" } });
    const queryFrame = el("div", { className: "sig-frame" }, queryImg);
    if (item.has_query_image) {
      loadInto(queryImg, protectedImage(`review/${item.log_id}`, `/reviews/${item.log_id}/query`), "Query image");
    } else {
      queryImg.hidden = true;
      queryFrame.classList.add("unavailable");
      queryFrame.append(el("span", { className: "unavailable-text", text: "The query image was not kept." }));
    }

    const refs = el("ul", { className: "ref-grid ref-grid-small", "aria-label": `References of ${item.claimed_external_id}` });
    renderReferenceGrid(refs, item.claimed_external_id, item.reference_scores, item.threshold, item.reject_threshold);

    const decide = (decision) => async (event) => {
      const reviewer = reviewerInput.value.trim();
      if (!reviewer) {
        reviewerInput.setAttribute("aria-invalid", "true");
        notify("error", "Enter your name in the Reviewer field before deciding.", { title: "Reviewer missing:", context: "review-decision" });
        reviewerInput.focus();
        return;
      }
      reviewerInput.removeAttribute("aria-invalid");
      storageSet(REVIEWER_STORAGE, reviewer);
      const buttons = card.querySelectorAll("button");
      buttons.forEach((b) => (b.disabled = true));
      const done = busy(event.currentTarget, "Saving…");
      try {
        const note = noteInput.value.trim() || null;
        await api(`/reviews/${item.log_id}`, { method: "POST", json: { decision, reviewer, note } });
        notify("success", `Claim #${item.log_id} (${item.claimed_external_id}) marked ${decision.toUpperCase()} by ${reviewer}.`, {
          context: "review-decision",
        });
        state.reviews = state.reviews.filter((r) => r.log_id !== item.log_id);
        card.remove();
        $("#review-empty").hidden = state.reviews.length > 0;
        setReviewCount(state.reviews.length);
        const next = $("#review-list button[data-action]");
        if (next) next.focus();
        else reviewerInput.focus();
      } catch (error) {
        done();
        buttons.forEach((b) => (b.disabled = false));
        showError(`Could not record the review of claim #${item.log_id}`, error, "review-decision");
        if (error.status === 409) loadReviews(); // decided elsewhere meanwhile
      }
    };

    const noteInput = el("input", {
      type: "text",
      className: "review-note",
      maxLength: 2000,
      placeholder: "Note: what the decision rests on (kept in the log)",
      "aria-label": `Claim #${item.log_id}: reviewer's note`,
      dataset: { testid: "review-note" },
    });
    const evidenceBox = el("div", { className: "evidence-box", hidden: true, dataset: { testid: "review-evidence" } });
    const evidenceButton = el("button", {
      type: "button",
      className: "btn btn-small",
      text: "Show evidence",
      "aria-expanded": "false",
      dataset: { testid: "review-show-evidence" },
      onclick: () => {
        const open = evidenceButton.getAttribute("aria-expanded") !== "true";
        evidenceButton.setAttribute("aria-expanded", String(open));
        evidenceButton.textContent = open ? "Hide evidence" : "Show evidence";
        if (!open) evidenceBox.hidden = true;
        else if (evidenceBox.dataset.logId) evidenceBox.hidden = false;
        else loadEvidence(evidenceBox, item.log_id, "review-decision");
      },
    });

    const card = el(
      "li",
      { className: "review-item", dataset: { testid: "review-item", logId: String(item.log_id) } },
      el(
        "div",
        { className: "review-head" },
        el("h3", {}, `Claim #${item.log_id} · `, el("span", { className: "writer-id", text: item.claimed_external_id })),
        el("span", { className: "muted", text: fmtDate(item.created_at) }),
      ),
      el(
        "div",
        { className: "review-body" },
        el("figure", { className: "compare-query" }, el("figcaption", { text: "Questioned" }), queryFrame),
        el(
          "div",
          { className: "review-score" },
          gaugeBox,
          el("p", { className: "band-note", dataset: { testid: "review-band-note" } }, bandNote(item)),
        ),
        el("div", { className: "review-refs" }, el("p", { className: "figcaption", text: `References of ${item.claimed_external_id}` }), refs),
      ),
      evidenceBox,
      el(
        "div",
        { className: "review-actions" },
        evidenceButton,
        noteInput,
        el("span", { className: "muted", text: "Decision:" }),
        el("button", {
          type: "button",
          className: "btn btn-genuine",
          text: "Genuine",
          dataset: { action: "genuine", testid: "review-genuine" },
          "aria-label": `Claim #${item.log_id}: genuine`,
          onclick: decide("genuine"),
        }),
        el("button", {
          type: "button",
          className: "btn btn-forgery",
          text: "Forgery",
          dataset: { action: "forgery", testid: "review-forgery" },
          "aria-label": `Claim #${item.log_id}: forgery`,
          onclick: decide("forgery"),
        }),
      ),
    );
    return card;
  }

  $("#review-refresh").addEventListener("click", () => loadReviews());

  // --- pair ----------------------------------------------------------------------------------

  const updatePairButton = () => {
    $("#pair-submit").disabled = !(state.pairReference && state.pairQuery);
  };
  singleZone("pair-reference-drop", "pair-reference", (file) => {
    state.pairReference = file;
    updatePairButton();
  });
  singleZone("pair-query-drop", "pair-query", (file) => {
    state.pairQuery = file;
    updatePairButton();
  });

  $("#pair-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!state.pairReference || !state.pairQuery) return;
    const form = new FormData();
    form.append("reference", state.pairReference, state.pairReference.name);
    form.append("query", state.pairQuery, state.pairQuery.name);
    $("#pair-result").hidden = true; // never show an earlier answer beside a new question
    const done = busy($("#pair-submit"), "Comparing…");
    try {
      const result = await api("/verify", { method: "POST", form });
      clearMessages("pair");
      showDecision($("#pair-decision"), result.decision);
      $("#pair-score").textContent = fmt(result.score);
      $("#pair-threshold").textContent = fmt(result.threshold);
      $("#pair-rule").textContent = result.threshold_rule;
      $("#pair-model").textContent = result.model;
      renderGauge($("#pair-gauge"), { score: result.score, accept: result.threshold, reject: result.threshold, caption: "Score" });
      $("#pair-result").hidden = false;
    } catch (error) {
      showError("Comparison failed", error, "pair");
    } finally {
      done();
      updatePairButton();
    }
  });

  // --- document ------------------------------------------------------------------------------

  const isDocument = (file) =>
    !file.type || file.type.startsWith("image/") || file.type === "application/pdf" || /\.(pdf|tiff?)$/i.test(file.name);
  const DOCUMENTS = { test: isDocument, refusal: "Not an image or PDF file:" };
  // What an <img> can show; PDFs and TIFFs appear as their name and size only.
  const previewable = (file) => /^image\/(png|jpeg|gif|webp|bmp)$/.test(file.type);

  singleZone(
    "document-drop",
    "document-file",
    (file) => {
      state.documentFile = file;
      $("#document-submit").disabled = !file;
    },
    { kind: DOCUMENTS, canPreview: previewable },
  );

  const RULES = {
    signatures_present: "Signatures present",
    claimed_writers_verified: "Claimed writers verified",
    initials_every_page: "Initials on every page",
    signatures_dated: "Every signature dated",
  };

  // The box colours of the page thumbnails (inkproof.document.synthetic.FIELD_COLOURS).
  const FIELDS = [
    { key: "signatures", one: "signature", many: "signatures", colour: "rgb(220, 30, 30)" },
    { key: "initials", one: "initials", many: "initials", colour: "rgb(240, 140, 0)" },
    { key: "handwritten_dates", one: "handwritten date", many: "handwritten dates", colour: "rgb(20, 160, 40)" },
    { key: "redactions", one: "redaction", many: "redactions", colour: "rgb(170, 40, 200)" },
    { key: "logos", one: "logo", many: "logos", colour: "rgb(30, 90, 230)" },
  ];

  const CLAIM_CHIPS = { genuine: "chip-accepted", forgery: "chip-rejected", review: "chip-duplicate" };

  const plural = (count, one, many) => `${count} ${count === 1 ? one : many}`;

  $("#document-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = state.documentFile;
    if (!file) return;
    const expectInput = $("#document-expect");
    const form = new FormData();
    form.append("document", file, file.name);
    const expectText = expectInput.value.trim();
    if (expectText !== "" || expectInput.validity.badInput) {
      const count = Number(expectText);
      if (expectInput.validity.badInput || !Number.isInteger(count) || count < 0 || count > 1000) {
        expectInput.setAttribute("aria-invalid", "true");
        notify("error", "Expected signatures must be a whole number from 0 to 1000, or empty.", {
          title: "Invalid count:",
          context: "document",
        });
        expectInput.focus();
        return;
      }
      form.append("expect", String(count));
    }
    expectInput.removeAttribute("aria-invalid");
    const claimed = Array.from($("#document-claimed").selectedOptions, (option) => option.value);
    claimed.forEach((writer) => form.append("claimed", writer));
    form.append("initials_every_page", String($("#document-initials").checked));
    form.append("dated", String($("#document-dated").checked));
    const result = $("#document-result");
    result.hidden = true; // never show an earlier answer beside a new question
    const done = busy($("#document-submit"), "Checking…");
    try {
      const report = await api("/documents/report", { method: "POST", form });
      clearMessages("document");
      renderDocument(report);
      if (claimed.length) refreshReviewCount(); // claims in the review band join the queue
    } catch (error) {
      showError("Document check failed", error, "document");
    } finally {
      done();
      $("#document-submit").disabled = !state.documentFile;
    }
  });

  function verdictChip(verdict, testid) {
    const pass = verdict === "pass";
    return el("span", {
      className: `chip ${pass ? "chip-accepted" : "chip-rejected"}`,
      dataset: { testid, verdict },
      text: pass ? "Pass" : "Fail",
    });
  }

  function renderDocument(report) {
    const summary = report.summary;
    const verdict = $("#document-verdict");
    const pass = summary.verdict === "pass";
    verdict.textContent = pass ? "PASS" : "FAIL";
    verdict.className = `decision ${pass ? "decision-genuine" : "decision-forgery"}`;
    verdict.dataset.verdict = summary.verdict;

    const signatures =
      summary.expected_signatures === null || summary.expected_signatures === undefined
        ? String(summary.signatures)
        : `${summary.signatures} of ${summary.expected_signatures} expected`;
    const facts = [
      ["Document", report.source],
      ["Pages", String(summary.pages)],
      ["Signatures", signatures],
      ["Initials", String(summary.initials)],
      ["Handwritten dates", String(summary.handwritten_dates)],
      ["Redactions", String(summary.redactions)],
      ["Logos", String(summary.logos)],
    ];
    $("#document-facts").replaceChildren(
      ...facts.map(([name, value]) => el("div", {}, el("dt", { text: name }), el("dd", { text: value, title: value }))),
    );

    $("#document-rules-body").replaceChildren(
      ...report.rules.map((rule) =>
        el(
          "tr",
          { dataset: { testid: "document-rule", rule: rule.rule, verdict: rule.verdict } },
          el("td", {}, el("span", { className: "rule-name", text: RULES[rule.rule] || rule.rule }), el("code", { className: "rule-id", text: rule.rule })),
          el("td", {}, verdictChip(rule.verdict, "rule-verdict")),
          el("td", { className: "rule-pages", dataset: { testid: "rule-pages" }, text: rule.pages.length ? rule.pages.join(", ") : "—" }),
          el("td", { className: "rule-detail", text: rule.detail }),
        ),
      ),
    );

    const models = report.models;
    $("#document-models").textContent =
      `Detector ${models.detector} · cleaner ${models.cleaner || "none (crops verified as found)"} · ` +
      `verifier ${models.verifier || "none"} · OCR ${report.ocr ? "on" : "off"} · sha256 ${report.sha256.slice(0, 12)}…`;

    $("#document-pages").replaceChildren(...report.pages.map((page) => documentPage(page, report)));
    const box = $("#document-result");
    box.hidden = false;
    box.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  function documentPage(page, report) {
    const number = page.page;
    const counts = FIELDS.map((field) => ({ ...field, count: page[field.key].length }));
    const thumbnail = el("img", {
      src: report.images[`page${number}.png`],
      alt: `Page ${number} with the fields found outlined: ${counts.map((c) => plural(c.count, c.one, c.many)).join(", ")}`,
      dataset: { testid: "page-thumbnail" },
    });
    const enlarge = el(
      "button",
      {
        type: "button",
        className: "doc-thumb",
        "aria-pressed": "false",
        "aria-label": `Enlarge page ${number}`,
        onclick: () => {
          const large = item.classList.toggle("doc-page-large");
          enlarge.setAttribute("aria-pressed", String(large));
          enlarge.setAttribute("aria-label", `${large ? "Shrink" : "Enlarge"} page ${number}`);
        },
      },
      thumbnail,
    );
    const legend = el(
      "ul",
      { className: "doc-legend", "aria-label": `Fields on page ${number}` },
      counts.map((c) =>
        el(
          "li",
          { className: c.count ? "" : "muted" },
          el("span", { className: "swatch", style: `border-color:${c.colour}`, "aria-hidden": "true" }),
          plural(c.count, c.one, c.many),
        ),
      ),
    );
    const signatures = page.signatures.length
      ? el("ul", { className: "doc-signatures", "aria-label": `Signatures on page ${number}` }, page.signatures.map((s) => documentSignature(s, report)))
      : el("p", { className: "empty", text: "No signature on this page." });
    const item = el(
      "li",
      { className: "doc-page", dataset: { testid: "document-page", page: String(number) } },
      el(
        "div",
        { className: "doc-page-head" },
        el("h3", { text: `Page ${number}` }),
        el("span", { className: "muted small", text: `${page.width}×${page.height} px · detector ${fmt(page.detector_ms, 0)} ms` }),
      ),
      el("div", { className: "doc-page-body" }, el("figure", { className: "doc-figure" }, enlarge, legend), signatures),
    );
    return item;
  }

  function cropFigure(src, caption, alt) {
    return el(
      "figure",
      { className: "doc-crop" },
      el("figcaption", { text: caption }),
      el("div", { className: "sig-frame" }, el("img", { src, alt })),
    );
  }

  function documentSignature(signature, report) {
    const label = `Signature ${signature.id.split("_").pop()} on page ${signature.page}`;
    const crops = [cropFigure(report.images[`${signature.id}.png`], "Found", `${label} as found`)];
    const cleaned = report.images[`${signature.id}_cleaned.png`];
    if (cleaned) {
      const ink = Number.isFinite(signature.ink_fraction) ? ` · ${fmt(signature.ink_fraction * 100, 1)}% ink` : "";
      crops.push(cropFigure(cleaned, `Cleaned${ink}`, `${label} cleaned of printed text and lines`));
    }

    let who;
    if (signature.claim) {
      const claim = signature.claim;
      const chip = el("span", {
        className: `chip ${CLAIM_CHIPS[claim.decision] || "chip-info"}`,
        dataset: { testid: "claim-decision", decision: claim.decision },
        text: (DECISIONS[claim.decision] || { text: String(claim.decision).toUpperCase() }).text,
      });
      who = el(
        "div",
        { className: "doc-who", dataset: { testid: "signature-claim" } },
        el("p", { className: "doc-who-title" }, "Claimed writer ", el("span", { className: "writer-id", text: claim.writer })),
        el(
          "p",
          { className: "doc-who-line" },
          chip,
          el("span", { className: "score-value", dataset: { testid: "claim-score" }, text: fmt(claim.fused_score) }),
          el("span", { className: "muted small", text: `accept ≥ ${fmt(claim.accept_threshold)} · reject < ${fmt(claim.reject_threshold)} · log #${claim.log_id}` }),
        ),
      );
    } else if (signature.identified.length) {
      who = el(
        "div",
        { className: "doc-who", dataset: { testid: "signature-identified" } },
        el("p", { className: "doc-who-title", text: "Closest enrolled writers" }),
        el(
          "ol",
          { className: "doc-candidates" },
          signature.identified.map((c) =>
            el(
              "li",
              { dataset: { testid: "signature-candidate", writer: c.external_id } },
              el("span", { className: "writer-id", text: c.external_id }),
              c.display_name && c.display_name !== c.external_id ? el("span", { className: "muted small", text: c.display_name }) : null,
              el("span", { className: "score-value", text: fmt(c.score) }),
            ),
          ),
        ),
      );
    } else {
      who = el(
        "div",
        { className: "doc-who" },
        el("p", {
          className: "muted",
          dataset: { testid: "signature-unmatched" },
          // With claims, signatures are matched to claimed writers only, not searched.
          text: report.claimed.length ? "Not matched to a claimed writer." : "No enrolled writer to compare with.",
        }),
      );
    }

    const date = signature.date;
    const dateText = !date
      ? "No date next to it"
      : date.kind === "printed"
        ? `Printed date “${date.text}” next to it`
        : "Handwritten date next to it";
    return el(
      "li",
      { className: "doc-signature", dataset: { testid: "document-signature", signature: signature.id } },
      el(
        "div",
        { className: "doc-signature-head" },
        el("h4", { text: label }),
        el("span", { className: "muted small", text: `detector confidence ${fmt(signature.confidence, 2)}` }),
      ),
      el("div", { className: "doc-crops" }, crops),
      who,
      el("p", { className: `doc-date${date ? "" : " doc-date-missing"}`, dataset: { testid: "signature-date", kind: date ? date.kind : "none" } }, dateText),
    );
  }

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

  start();
})();
