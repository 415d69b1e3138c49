/* The Review page: pending claims, their evidence, decisions with a note. */

import { $, el, fmt, fmtDate } from "./dom.js";
import { REVIEWER_STORAGE, api, busy, clearMessages, loadEvidence, loadInto, notify, protectedImage, renderGauge, renderReferenceGrid, showError, state, storageGet, storageSet } from "./core.js";

// --- review --------------------------------------------------------------------------------

export const reviewerInput = $("#reviewer-name");
reviewerInput.value = storageGet(REVIEWER_STORAGE);
reviewerInput.addEventListener("change", () => storageSet(REVIEWER_STORAGE, reviewerInput.value.trim()));

export function setReviewCount(count) {
  const badge = $("#review-count");
  badge.textContent = String(count);
  badge.hidden = count === 0;
  badge.setAttribute("aria-label", `${count} pending`);
}

export function refreshReviewCount() {
  api("/reviews?limit=500")
    .then((items) => setReviewCount(items.length))
    .catch((error) => showError("Could not load the review queue", error, "reviews"));
}

export let reviewsLoading = null;

export function loadReviews() {
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

export function renderReviews() {
  const list = $("#review-list");
  list.replaceChildren(...state.reviews.map(reviewCard));
  $("#review-empty").hidden = state.reviews.length > 0;
}

/** Where a score lies relative to the thresholds, in words. */
export function bandNote(item) {
  const score = item.fused_score;
  if (score >= item.threshold) return `Score ${fmt(score)} is ${fmt(score - item.threshold)} above the accept threshold ${fmt(item.threshold)}.`;
  if (score < item.reject_threshold) return `Score ${fmt(score)} is ${fmt(item.reject_threshold - score)} below the reject threshold ${fmt(item.reject_threshold)}.`;
  return `Score ${fmt(score)}: ${fmt(score - item.reject_threshold)} above reject (${fmt(item.reject_threshold)}), ${fmt(item.threshold - score)} below accept (${fmt(item.threshold)}).`;
}

export function reviewCard(item) {
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
