/* The writers list (Enroll page). */

import { $, el, fmtDate, fmtDay } from "./dom.js";
import { api, clearMessages, enc, forgetWriterImages, notify, showError, showTab, state } from "./core.js";
import { updateVerifyButton } from "./verify.js";

// --- writers -------------------------------------------------------------------------------

export let writersLoading = null;

export function loadWriters() {
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

export function renderWriters() {
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

export function fillWriterSelect() {
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

export function fillClaimedSelect() {
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

export async function deleteWriter(writer) {
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
