/* The evidence view of a claim (GET /api/v1/claims/{id}/evidence): provenance, whether the logged
 * decision reproduces, measured features side by side, and per reference the side-by-side view,
 * the aligned overlay and the occlusion-sensitivity map (PNG data URIs from the API). */

import { el, fmt, fmtDate } from "./dom.js";

const FEATURES = [
  ["aspect_ratio", "Aspect ratio (w/h)"],
  ["slant_deg", "Slant (°)"],
  ["ink_density", "Ink density"],
  ["components", "Connected pieces"],
  ["upper_share", "Ink above middle"],
  ["left_share", "Ink left of middle"],
  ["centre_x", "Ink centre x"],
  ["centre_y", "Ink centre y"],
];

const VIEWS = [
  ["side_by_side", "Query (left) and reference (right), as the model saw them"],
  ["overlay", "Aligned overlay: query red, reference blue, shared ink black"],
  ["sensitivity", "Red: regions that count against the match · green: regions that support it"],
];

function value(v, digits = 3) {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : fmt(v, digits);
  return v === null || v === undefined || v === "" ? "—" : String(v);
}

function provenance(ev) {
  const rows = [
    ["Claim", `#${ev.log_id} · ${ev.claimed_external_id}`],
    ["Decision", ev.decision],
    ["Score", `${fmt(ev.score, 4)} (${ev.method})`],
    ["Thresholds", `accept ≥ ${fmt(ev.accept_threshold, 4)} · reject < ${fmt(ev.reject_threshold, 4)} (${ev.threshold_source})`],
    ["Operating point", value(ev.operating_point)],
    ["Model", `${ev.model.name} · ${ev.model.tag} · preprocessing v${ev.model.preprocess_version}`],
    ["Embedder sha256", ev.model.embedder_sha256],
    ["Query sha256", ev.query_sha256],
    ["Decided", fmtDate(ev.decided_at)],
  ];
  if (ev.review) {
    rows.push(["Review", `${ev.review.decision} by ${ev.review.reviewer}${ev.review.note ? ` — “${ev.review.note}”` : ""}`]);
  }
  return el(
    "dl",
    { className: "evidence-facts", dataset: { testid: "evidence-facts" } },
    rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { className: k.endsWith("sha256") ? "mono" : "", text: v })]),
  );
}

function reproduction(ev) {
  const rep = ev.reproduction;
  if (!rep) {
    return el("p", {
      className: "chip chip-warn",
      dataset: { testid: "evidence-reproduction", state: "no-query" },
      text: "The query image was not kept: the scores and provenance are all the log holds.",
    });
  }
  return el("p", {
    className: `chip ${rep.matches ? "chip-ok" : "chip-warn"}`,
    dataset: { testid: "evidence-reproduction", state: rep.matches ? "reproduced" : "differs" },
    text: rep.matches
      ? `Reproduced from the log: same reference images, scores and decision (${fmt(rep.recomputed_fused_score, 4)}).`
      : `Not reproduced: ${rep.note || "the recomputed decision differs"}.`,
  });
}

function featureTable(ev) {
  const refs = ev.comparisons;
  return el(
    "table",
    { className: "evidence-features", dataset: { testid: "evidence-features" } },
    el("caption", { text: "Measured features" }),
    el("thead", {}, el("tr", {}, el("th", { text: "Feature" }), el("th", { text: "Query" }), refs.map((c) => el("th", { text: `#${c.reference_id}` })))),
    el(
      "tbody",
      {},
      FEATURES.map(([key, label]) =>
        el("tr", {}, el("th", { scope: "row", text: label }), el("td", { text: value(ev.query_features?.[key]) }), refs.map((c) => el("td", { text: value(c.features[key]) }))),
      ),
    ),
  );
}

function comparison(c) {
  const a = c.alignment;
  return el(
    "section",
    { className: "evidence-ref", dataset: { testid: "evidence-comparison", referenceId: String(c.reference_id) } },
    el("h4", { text: `Reference #${c.reference_id} · score ${fmt(c.score, 4)}${c.used ? "" : " · flagged, not used"}` }),
    el("p", {
      className: "muted small",
      text:
        `Aligned by rotation ${fmt(a.angle_deg, 1)}°, scale ${fmt(a.scale, 3)}, shift (${fmt(a.dx, 1)}, ${fmt(a.dy, 1)}) px: ` +
        `mean ink distance ${fmt(a.chamfer_before, 2)} → ${fmt(a.chamfer_after, 2)} px. ` +
        `Blanking one of ${c.sensitivity.patches} patches raises the score by up to ${fmt(c.sensitivity.max_raise, 4)}.`,
    }),
    el(
      "div",
      { className: "evidence-views" },
      VIEWS.map(([key, caption]) =>
        el("figure", {}, el("img", { src: c.images[key], alt: `${caption} (reference #${c.reference_id})`, dataset: { testid: `evidence-${key}` } }), el("figcaption", { text: caption })),
      ),
    ),
  );
}

/** The whole evidence view; ``onDownload`` (optional) adds a button that saves the HTML page. */
export function evidencePanel(ev, { onDownload } = {}) {
  return el(
    "div",
    { className: "evidence", dataset: { testid: "evidence", logId: String(ev.log_id) } },
    el(
      "div",
      { className: "evidence-head" },
      el("h3", { text: "Evidence" }),
      onDownload ? el("button", { type: "button", className: "btn btn-small", text: "Download HTML", onclick: onDownload, dataset: { testid: "evidence-download" } }) : null,
    ),
    reproduction(ev),
    provenance(ev),
    ev.comparisons.length ? featureTable(ev) : null,
    ev.comparisons.map(comparison),
  );
}
