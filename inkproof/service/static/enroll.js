/* The Enroll page. */

import { $, el, fmt } from "./dom.js";
import { api, busy, clearMessages, dropZone, enc, forgetWriterImages, notify, showError, state } from "./core.js";
import { loadWriters } from "./writers.js";

// --- enroll --------------------------------------------------------------------------------

export const enrollForm = $("#enroll-form");

export function fileKey(file) {
  return `${file.name}|${file.size}|${file.lastModified}`;
}

export function addEnrollFiles(files) {
  const known = new Set(state.enrollFiles.map((item) => fileKey(item.file)));
  for (const file of files) {
    if (known.has(fileKey(file))) continue;
    known.add(fileKey(file));
    state.enrollFiles.push({ file, url: URL.createObjectURL(file) });
  }
  renderEnrollPreviews();
}

export function renderEnrollPreviews() {
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

export function clearEnrollFiles({ revoke = true } = {}) {
  if (revoke) state.enrollFiles.forEach((item) => URL.revokeObjectURL(item.url));
  state.enrollFiles = [];
  renderEnrollPreviews();
}

dropZone($("#enroll-drop"), $("#enroll-files"), addEnrollFiles);
$("#enroll-clear").addEventListener("click", () => clearEnrollFiles());

export let enrollResultUrls = [];

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

export function renderEnrollResult(result, items) {
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
