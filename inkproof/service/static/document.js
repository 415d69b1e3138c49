/* The Document page. */

import { $, el, fmt } from "./dom.js";
import { DECISIONS, api, busy, clearMessages, notify, showError, singleZone, state } from "./core.js";
import { refreshReviewCount } from "./review.js";

// --- document ------------------------------------------------------------------------------

export const isDocument = (file) =>
  !file.type || file.type.startsWith("image/") || file.type === "application/pdf" || /\.(pdf|tiff?)$/i.test(file.name);
export const DOCUMENTS = { test: isDocument, refusal: "Not an image or PDF file:" };
// What an <img> can show; PDFs and TIFFs appear as their name and size only.
export const previewable = (file) => /^image\/(png|jpeg|gif|webp|bmp)$/.test(file.type);

singleZone(
  "document-drop",
  "document-file",
  (file) => {
    state.documentFile = file;
    $("#document-submit").disabled = !file;
  },
  { kind: DOCUMENTS, canPreview: previewable },
);

export const RULES = {
  signatures_present: "Signatures present",
  claimed_writers_verified: "Claimed writers verified",
  initials_every_page: "Initials on every page",
  signatures_dated: "Every signature dated",
};

// The box colours of the page thumbnails (inkproof.document.synthetic.FIELD_COLOURS).
export const FIELDS = [
  { key: "signatures", one: "signature", many: "signatures", colour: "rgb(220, 30, 30)" },
  { key: "initials", one: "initials", many: "initials", colour: "rgb(240, 140, 0)" },
  { key: "handwritten_dates", one: "handwritten date", many: "handwritten dates", colour: "rgb(20, 160, 40)" },
  { key: "redactions", one: "redaction", many: "redactions", colour: "rgb(170, 40, 200)" },
  { key: "logos", one: "logo", many: "logos", colour: "rgb(30, 90, 230)" },
];

export const CLAIM_CHIPS = { genuine: "chip-accepted", forgery: "chip-rejected", review: "chip-duplicate" };

export const plural = (count, one, many) => `${count} ${count === 1 ? one : many}`;

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

// Rules and documents pass, fail, or (resting on an uncertain finding) need a person's review.
const VERDICTS = {
  pass: { chip: "chip-accepted", text: "Pass", decision: "decision-genuine" },
  review: { chip: "chip-duplicate", text: "Review", decision: "decision-review" },
  fail: { chip: "chip-rejected", text: "Fail", decision: "decision-forgery" },
};

export function verdictChip(verdict, testid) {
  const shown = VERDICTS[verdict] || VERDICTS.fail;
  return el("span", {
    className: `chip ${shown.chip}`,
    dataset: { testid, verdict },
    text: shown.text,
  });
}

export function renderDocument(report) {
  const summary = report.summary;
  const verdict = $("#document-verdict");
  const shown = VERDICTS[summary.verdict] || VERDICTS.fail;
  verdict.textContent = shown.text.toUpperCase();
  verdict.className = `decision ${shown.decision}`;
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

export function documentPage(page, report) {
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

export function cropFigure(src, caption, alt) {
  return el(
    "figure",
    { className: "doc-crop" },
    el("figcaption", { text: caption }),
    el("div", { className: "sig-frame" }, el("img", { src, alt })),
  );
}

export function documentSignature(signature, report) {
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
