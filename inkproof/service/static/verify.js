/* The Verify page: a claim, its references and its evidence. */

import { $, fmt } from "./dom.js";
import { METHOD_NAMES, POINT_NAMES, SOURCE_HELP, api, busy, clearMessages, describeSource, enc, loadEvidence, notify, renderGauge, renderReferenceGrid, showDecision, showError, singleZone, state } from "./core.js";
import { refreshReviewCount } from "./review.js";

// --- verify --------------------------------------------------------------------------------

export function updateVerifyButton() {
  $("#verify-submit").disabled = !($("#verify-writer").value && state.verifyFile);
}

export const setVerifyFile = singleZone("verify-drop", "verify-query", (file) => {
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

export function renderClaim(claim, file) {
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
