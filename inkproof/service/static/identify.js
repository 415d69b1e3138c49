/* The Identify page. */

import { $, el, fmt } from "./dom.js";
import { api, busy, clearMessages, loadInto, referenceImage, showError, showTab, singleZone, state } from "./core.js";
import { setVerifyFile } from "./verify.js";

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

export function renderCandidates(result, file) {
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
