/* The Pair check page. */

import { $, fmt } from "./dom.js";
import { api, busy, clearMessages, renderGauge, showDecision, showError, singleZone, state } from "./core.js";

// --- pair ----------------------------------------------------------------------------------

export const updatePairButton = () => {
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
