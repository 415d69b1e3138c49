"""The web UI driven end to end in headless Chromium against a real uvicorn server.

Each test gets its own store (a temporary SQLite file), its own server on a free port and a fresh
browser context; the browser is shared by the module. Screenshots of every tab go to
test-artifacts/ui/. The module skips when Chromium is missing or cannot be started.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from inkproof.service.app import ServiceSettings, create_app
from inkproof.store import SignatureStore
from inkproof.store.quality import assess
from tests.document.contracts import (
    DarkInkCleaner,
    GroundTruthDetector,
    contract_pages,
    enroll_signers,
    tiff_of,
)
from tests.service.ui_fixtures import (
    CHROMIUM_ARGS,
    blank_png,
    buffer_upload,
    chromium_path,
    screenshot,
    serve,
    upload,
)

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
expect = sync_api.expect

CHROMIUM = chromium_path()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium at /usr/bin/chromium or on PATH")

KEY_STORAGE = "inkproof.apiKey"
DECISION_TEXT = {"genuine": "GENUINE", "forgery": "FORGERY", "review": "SENT TO REVIEW"}


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        manager = sync_api.sync_playwright().start()
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"playwright cannot start: {exc}")
    try:
        chromium = manager.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:  # pragma: no cover - depends on the machine
        manager.stop()
        pytest.skip(f"playwright cannot launch {CHROMIUM}: {exc}")
    expect.set_options(timeout=15_000)
    yield chromium
    chromium.close()
    manager.stop()


@pytest.fixture
def server(settings: ServiceSettings, service_store: SignatureStore) -> Iterator[str]:
    with serve(create_app(settings, store=service_store)) as base:
        yield base


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (own context: own localStorage) at 1280x800; fails the test on a JavaScript error."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def _images(root: Path, writer: str, kind: str = "genuine") -> list[Path]:
    return sorted((root / writer / kind).iterdir())


def _enter_key(page: Any, base: str, key: str) -> None:
    page.goto(f"{base}/")
    expect(page.locator("#key-dialog")).to_be_visible()
    page.fill("#api-key-input", key)
    page.click("#api-key-save")
    expect(page.locator("#key-dialog")).to_be_hidden()
    expect(page.locator("#api-key-button")).to_have_attribute("data-state", "ok")


def _open_with_key(page: Any, base: str, key: str, tab: str = "enroll") -> None:
    """Open the UI with the key already in localStorage (as after a previous visit)."""
    page.context.add_init_script(f"window.localStorage.setItem({KEY_STORAGE!r}, {key!r});")
    page.goto(f"{base}/#{tab}")
    expect(page.locator("#api-key-button")).to_have_attribute("data-state", "ok")


def _images_loaded(page: Any, selector: str) -> int:
    """Wait until every <img> matching ``selector`` has decoded pixels; returns how many there are."""
    page.wait_for_function(
        """(sel) => {
            const imgs = [...document.querySelectorAll(sel)];
            return imgs.length > 0 && imgs.every((img) => img.complete && img.naturalWidth > 0);
        }""",
        arg=selector,
    )
    return int(page.locator(selector).count())


def _error_message(base: str, key: str, path: str, files: dict[str, tuple[str, bytes, str]]) -> str:
    """The error message the API itself answers for an upload (what the UI must show)."""
    response = httpx.post(f"{base}/api/v1{path}", files=files, headers={"X-API-Key": key}, timeout=30)
    assert 400 <= response.status_code < 500, response.text
    return str(response.json()["error"]["message"])


# --- tests -------------------------------------------------------------------------------------


def test_wrong_api_key_is_refused_with_a_clear_message(page: Any, server: str, api_key: str) -> None:
    page.goto(f"{server}/")
    expect(page.locator("#service-status")).to_contain_text("Service ready")
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#api-key-input")).to_be_focused()
    page.fill("#api-key-input", "ink_not-a-valid-key")
    page.keyboard.press("Enter")
    error = page.locator("#key-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("refused this key (401)")
    expect(error).to_contain_text("a valid API key is required")
    expect(dialog).to_be_visible()  # the dialog stays open for another try
    assert page.evaluate(f"window.localStorage.getItem({KEY_STORAGE!r})") is None
    screenshot(page, "api-key-refused")

    # A stored key that the service no longer accepts: the message area says so on load.
    page.evaluate(f"window.localStorage.setItem({KEY_STORAGE!r}, 'ink_revoked-key')")
    page.reload()
    refusal = page.locator("#messages [data-kind=error][role=alert]")
    expect(refusal).to_contain_text("API key refused")
    expect(refusal).to_contain_text("a valid API key is required")
    expect(page.locator("#api-key-button")).to_have_attribute("data-state", "refused")

    # The message offers the way out: entering a valid key clears it.
    refusal.get_by_role("button", name="Enter a valid key").click()
    expect(dialog).to_be_visible()
    page.fill("#api-key-input", api_key)
    page.click("#api-key-save")
    expect(dialog).to_be_hidden()
    expect(page.locator("#messages [data-kind=error]")).to_have_count(0)
    assert page.evaluate(f"window.localStorage.getItem({KEY_STORAGE!r})") == api_key


def test_enroll_verify_identify_pair_end_to_end(
    page: Any, server: str, api_key: str, service_store: SignatureStore, synthetic_root: Path
) -> None:
    _enter_key(page, server, api_key)
    expect(page.locator("#writers-empty")).to_be_visible()

    # --- enroll W001: five genuine images, a byte-identical copy and a blank page.
    genuine = _images(synthetic_root, "W001")
    blank = blank_png()
    expected_problem = assess(np.asarray(Image.open(io.BytesIO(blank)).convert("L"))).problems[0]
    page.fill("#enroll-writer", "W001")
    page.fill("#enroll-name", "Alice Example")
    page.set_input_files(
        "#enroll-files",
        [upload(p) for p in genuine[:5]]
        + [upload(genuine[0], "copy-of-first.png"), buffer_upload("blank-page.png", blank)],
    )
    assert _images_loaded(page, "#enroll-previews img") == 7  # thumbnails before upload
    expect(page.locator("#enroll-count")).to_have_text("7 images chosen")
    page.click("#enroll-submit")
    results = page.locator("[data-testid=enroll-result]")
    expect(results).to_have_count(7)
    expect(page.locator("[data-testid=enroll-result][data-status=accepted]")).to_have_count(5)
    expect(page.locator("[data-testid=enroll-result][data-status=duplicate]")).to_have_count(1)
    rejected = page.locator("[data-testid=enroll-result][data-status=rejected]")
    expect(rejected).to_have_count(1)
    expect(rejected).to_contain_text("blank-page.png")
    expect(rejected.locator("[data-testid=enroll-problems]")).to_contain_text(expected_problem)
    expect(page.locator("[data-testid=enroll-result][data-status=duplicate]")).to_contain_text("copy-of-first.png")
    expect(page.locator("[data-testid=enroll-summary]")).to_contain_text("5 added")
    row = page.locator("tr[data-writer=W001]")
    expect(row).to_be_visible()
    expect(row.locator("[data-testid=writer-refs]")).to_have_text("5")
    expect(row).to_contain_text("Alice Example")
    expect(page.locator("[data-testid=enroll-preview]")).to_have_count(0)  # the selection was uploaded
    screenshot(page, "enroll")

    # A second writer, for identification and deletion.
    page.fill("#enroll-writer", "W002")
    page.fill("#enroll-name", "")
    page.set_input_files("#enroll-files", [upload(p) for p in _images(synthetic_root, "W002")[:4]])
    page.click("#enroll-submit")
    expect(page.locator("tr[data-writer=W002] [data-testid=writer-refs]")).to_have_text("4")

    # --- verify a W001 genuine query (the tabs answer the keyboard).
    page.focus("#tab-enroll")
    page.keyboard.press("ArrowRight")
    expect(page.locator("#tab-verify")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#tab-verify")).to_be_focused()
    expect(page.locator("#panel-verify")).to_be_visible()
    expect(page.locator("#panel-enroll")).to_be_hidden()
    query = genuine[5]
    expect(page.locator("#verify-writer option[value=W001]")).to_have_count(1)
    page.select_option("#verify-writer", "W001")
    page.set_input_files("#verify-query", upload(query))
    page.click("#verify-submit")
    expect(page.locator("#verify-result")).to_be_visible()
    expected = service_store.verify_claim("W001", query.read_bytes())  # deterministic: same answer
    decision = page.locator("#verify-decision")
    expect(decision).to_have_text(DECISION_TEXT[expected.decision])
    expect(decision).to_have_attribute("data-decision", expected.decision)
    expect(page.locator("#verify-source")).to_have_attribute("data-source", expected.threshold_source)
    gauge = page.locator("#verify-gauge")
    expect(gauge.locator("svg")).to_be_visible()
    expect(gauge.locator("[data-testid=gauge-needle]")).to_have_count(1)
    expect(gauge.locator("[data-testid=gauge-accept]")).to_have_count(1)
    expect(gauge.locator("[data-testid=gauge-reject]")).to_have_count(1)
    if expected.reject_threshold < expected.accept_threshold:
        expect(gauge.locator("[data-testid=gauge-band]")).to_have_count(1)
    expect(gauge.locator("[data-testid=gauge-score]")).to_have_text(f"{expected.fused_score:.3f}")
    assert float(gauge.get_attribute("data-score") or "nan") == pytest.approx(expected.fused_score, abs=1e-6)
    assert float(gauge.get_attribute("data-accept") or "nan") == pytest.approx(expected.accept_threshold, abs=1e-6)
    assert float(gauge.get_attribute("data-reject") or "nan") == pytest.approx(expected.reject_threshold, abs=1e-6)
    # Query and the five references side by side, fetched with the key (blob URLs), each with its score.
    assert _images_loaded(page, "#verify-query-img") == 1
    assert _images_loaded(page, "#verify-references img.ref-img") == 5
    sources = page.locator("#verify-references img.ref-img").evaluate_all("(imgs) => imgs.map((i) => i.src)")
    assert all(src.startswith("blob:") for src in sources)
    shown = page.locator("#verify-references [data-testid=reference-score]").all_inner_texts()
    assert shown == [f"{s.score:.3f}" for s in sorted(expected.reference_scores, key=lambda s: -s.score)]
    screenshot(page, "verify")
    # The evidence of the claim follows: rebuilt from the log, one comparison per reference.
    evidence = page.locator("#verify-evidence [data-testid=evidence]")
    expect(evidence).to_be_visible(timeout=60_000)
    expect(evidence.locator("[data-testid=evidence-reproduction]")).to_have_attribute("data-state", "reproduced")
    expect(evidence.locator("[data-testid=evidence-comparison]")).to_have_count(5)
    assert _images_loaded(page, "#verify-evidence [data-testid=evidence-overlay]") == 5
    expect(evidence.locator("[data-testid=evidence-features]")).to_contain_text("Slant")
    expect(evidence.locator("[data-testid=evidence-facts]")).to_contain_text(expected.query_sha256)
    evidence.scroll_into_view_if_needed()
    screenshot(page, "verify-evidence")

    # --- identify: W001 among the candidates, ranked by score, with its best reference shown.
    page.click("#tab-identify")
    page.set_input_files("#identify-query", upload(query))
    page.click("#identify-submit")
    candidates = page.locator("[data-testid=candidate]")
    expect(candidates.first).to_be_visible()
    expect(page.locator("[data-testid=candidate][data-writer=W001]")).to_have_count(1)
    ranks = candidates.evaluate_all("(items) => items.map((li) => Number(li.dataset.rank))")
    assert ranks == list(range(1, len(ranks) + 1))
    scores = [float(s) for s in page.locator("[data-testid=candidate-score]").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    assert _images_loaded(page, "[data-testid=candidate][data-writer=W001] img") == 1
    screenshot(page, "identify")

    # "Verify claim" from a candidate carries writer and image over to the Verify tab.
    page.locator("[data-testid=candidate][data-writer=W002]").get_by_role("button", name="Verify").click()
    expect(page.locator("#panel-verify")).to_be_visible()
    expect(page.locator("#verify-writer")).to_have_value("W002")
    expect(page.locator("#verify-submit")).to_be_enabled()

    # --- pair check with two drop zones.
    page.click("#tab-pair")
    forged = _images(synthetic_root, "W001", "forged")[0]
    page.set_input_files("#pair-reference", upload(genuine[0]))
    page.set_input_files("#pair-query", upload(forged))
    page.click("#pair-submit")
    pair = service_store.verifier.verify(genuine[0].read_bytes(), forged.read_bytes())
    expect(page.locator("#pair-decision")).to_have_text(DECISION_TEXT[pair.decision])
    expect(page.locator("#pair-score")).to_have_text(f"{pair.score:.3f}")
    expect(page.locator("#pair-gauge [data-testid=gauge-needle]")).to_have_count(1)
    screenshot(page, "pair")

    # --- delete W002 (confirmed) from the writers list.
    page.click("#tab-enroll")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tr[data-writer=W002] [data-testid=writer-delete]").click()
    expect(page.locator("tr[data-writer=W002]")).to_have_count(0)
    expect(page.locator("tr[data-writer=W001]")).to_have_count(1)
    assert [w.external_id for w in service_store.list_writers()] == ["W001"]

    # --- a narrow screen: one column, nothing wider than the viewport.
    page.set_viewport_size({"width": 390, "height": 844})
    page.click("#tab-verify")
    expect(page.locator("#verify-result")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "verify-narrow")


def test_review_queue_decided_in_the_ui(
    page: Any, server: str, api_key: str, service_store: SignatureStore, synthetic_root: Path
) -> None:
    service_store.enroll("W003", [p.read_bytes() for p in _images(synthetic_root, "W003")[:5]])
    forged = _images(synthetic_root, "W003", "forged")[0].read_bytes()
    score = service_store.verify_claim("W003", forged).fused_score
    # A second store on the same database whose band [reject, accept) holds that score.
    reviewing = SignatureStore(
        service_store.db, service_store.verifier, accept_threshold=score + 0.1, reject_threshold=score - 0.1
    )
    claim = reviewing.verify_claim("W003", forged)
    assert claim.decision == "review"
    pending = len(service_store.pending_reviews())
    assert pending >= 1

    _open_with_key(page, server, api_key, tab="review")
    expect(page.locator("#review-count")).to_have_text(str(pending))
    items = page.locator("[data-testid=review-item]")
    expect(items).to_have_count(pending)
    item = page.locator(f"[data-testid=review-item][data-log-id='{claim.log_id}']")
    expect(item).to_contain_text("W003")
    expect(item.locator("[data-testid=review-band-note]")).to_contain_text(f"{claim.fused_score:.3f}")
    gauge = item.locator("[data-testid=review-gauge]")
    expect(gauge.locator("[data-testid=gauge-band]")).to_have_count(1)
    assert float(gauge.get_attribute("data-accept") or "nan") == pytest.approx(claim.accept_threshold, abs=1e-6)
    selector = f"[data-testid=review-item][data-log-id='{claim.log_id}']"
    assert _images_loaded(page, f"{selector} [data-testid=review-query-image]") == 1
    assert _images_loaded(page, f"{selector} img.ref-img") == 5
    screenshot(page, "review")

    # The evidence view inside the review card, loaded on demand.
    item.locator("[data-testid=review-show-evidence]").click()
    evidence = item.locator("[data-testid=review-evidence] [data-testid=evidence]")
    expect(evidence).to_be_visible(timeout=60_000)
    expect(evidence.locator("[data-testid=evidence-reproduction]")).to_have_attribute("data-state", "reproduced")
    expect(evidence.locator("[data-testid=evidence-comparison]")).to_have_count(5)
    assert _images_loaded(page, f"{selector} [data-testid=evidence-sensitivity]") == 5
    item.locator("[data-testid=review-note]").fill("pen lifts differ from every reference")
    evidence.scroll_into_view_if_needed()
    screenshot(page, "review-evidence")

    # Deciding without a reviewer name is refused in the UI, and nothing is sent.
    page.fill("#reviewer-name", "")
    item.get_by_role("button", name="forgery").click()
    expect(page.locator("#messages [data-kind=error]")).to_contain_text("Enter your name")
    expect(page.locator("#reviewer-name")).to_be_focused()
    assert service_store.get_log(claim.log_id).reviewer_decision is None

    page.fill("#reviewer-name", "Ruth Reviewer")
    item.get_by_role("button", name="forgery").click()
    expect(item).to_have_count(0)
    expect(items).to_have_count(pending - 1)
    expect(page.locator("#messages [data-kind=success]")).to_contain_text(f"Claim #{claim.log_id}")
    decided = service_store.get_log(claim.log_id)
    assert (decided.reviewer_decision, decided.reviewer) == ("forgery", "Ruth Reviewer")
    assert decided.review_note == "pen lifts differ from every reference"
    # After a reload the decided claim stays out of the queue.
    page.reload()
    expect(page.locator("[data-testid=review-item]")).to_have_count(pending - 1)
    expect(page.locator(selector)).to_have_count(0)
    if pending == 1:
        expect(page.locator("#review-empty")).to_be_visible()
        expect(page.locator("#review-count")).to_be_hidden()
    screenshot(page, "review-decided")


def test_invalid_image_shows_the_api_error(
    page: Any, server: str, api_key: str, service_store: SignatureStore, synthetic_root: Path
) -> None:
    service_store.enroll("W001", [p.read_bytes() for p in _images(synthetic_root, "W001")[:3]])
    broken = b"this is not an image at all"
    expected = _error_message(
        server, api_key, "/writers/W001/verify", {"query": ("broken-scan.png", broken, "image/png")}
    )
    assert "broken-scan.png" in expected

    _open_with_key(page, server, api_key, tab="verify")
    expect(page.locator("#verify-writer option[value=W001]")).to_have_count(1)
    page.select_option("#verify-writer", "W001")
    page.set_input_files("#verify-query", buffer_upload("broken-scan.png", broken))
    page.click("#verify-submit")
    alert = page.locator("#messages [data-kind=error][role=alert]")
    expect(alert).to_have_count(1)
    expect(alert).to_contain_text("Verification failed")
    expect(alert).to_contain_text(expected)
    expect(alert).to_contain_text("422")
    expect(page.locator("#verify-result")).to_be_hidden()
    screenshot(page, "verify-error")

    # The same on enrollment: nothing is stored, and the message stays until dismissed.
    page.click("#tab-enroll")
    page.fill("#enroll-writer", "W009")
    page.set_input_files("#enroll-files", buffer_upload("broken-scan.png", broken))
    page.click("#enroll-submit")
    enroll_error = page.locator("#messages [data-kind=error][data-context=enroll]")
    expect(enroll_error).to_contain_text("Enrollment failed")
    expect(enroll_error).to_contain_text("broken-scan.png")
    assert "W009" not in [w.external_id for w in service_store.list_writers()]
    enroll_error.get_by_role("button", name="Dismiss message").click()
    expect(enroll_error).to_have_count(0)


def test_document_report_in_the_document_tab(
    page: Any, settings: ServiceSettings, service_store: SignatureStore, api_key: str
) -> None:
    pages = contract_pages()
    first, third = enroll_signers(service_store, pages)
    contract = tiff_of(pages)
    app = create_app(settings, store=service_store, detector=GroundTruthDetector(pages), cleaner=DarkInkCleaner())
    with serve(app) as base:
        # What the API answers for the same request (the signatures are matched to the claims
        # deterministically), to compare the page with.
        expected = httpx.post(
            f"{base}/api/v1/documents/report",
            files={"document": ("contract.tiff", contract, "image/tiff")},
            data={"expect": "2", "claimed": [first], "initials_every_page": "true", "dated": "true"},
            headers={"X-API-Key": api_key},
            timeout=60,
        ).json()
        assert expected["summary"]["verdict"] == "fail", expected

        _open_with_key(page, base, api_key, tab="document")
        expect(page.locator("#panel-document")).to_be_visible()
        expect(page.locator("#tab-document")).to_have_attribute("aria-selected", "true")
        expect(page.locator(f"#document-claimed option[value={third}]")).to_have_count(1)
        page.fill("#document-expect", "2")
        page.select_option("#document-claimed", [first])
        page.check("#document-initials")
        page.check("#document-dated")
        page.set_input_files("#document-file", buffer_upload("contract.tiff", contract, "image/tiff"))
        expect(page.locator("#document-drop")).to_contain_text("contract.tiff")
        page.click("#document-submit")

        verdict = page.locator("#document-verdict")
        expect(verdict).to_have_text("FAIL")
        expect(verdict).to_have_attribute("data-verdict", "fail")
        rows = page.locator("[data-testid=document-rule]")
        expect(rows).to_have_count(len(expected["rules"]))
        for rule in expected["rules"]:
            row = page.locator(f"[data-testid=document-rule][data-rule={rule['rule']}]")
            expect(row.locator("[data-testid=rule-verdict]")).to_have_attribute("data-verdict", rule["verdict"])
            expect(row.locator("[data-testid=rule-pages]")).to_have_text(", ".join(map(str, rule["pages"])) or "—")
            expect(row).to_contain_text(rule["detail"])
        assert {r["rule"] for r in expected["rules"]} == {
            "signatures_present",
            "claimed_writers_verified",
            "initials_every_page",
            "signatures_dated",
        }
        expect(page.locator("#document-facts")).to_contain_text("2 of 2 expected")

        # Three page thumbnails; per signature the crop and the cleaned crop (all decoded).
        expect(page.locator("[data-testid=document-page]")).to_have_count(3)
        assert _images_loaded(page, "[data-testid=page-thumbnail]") == 3
        assert _images_loaded(page, "[data-testid=document-signature] img") == 4
        signatures = page.locator("[data-testid=document-signature]")
        expect(signatures).to_have_count(2)
        # The claim sits on the signature the API matched it to; the other signature carries none.
        claimed = next(s for p in expected["pages"] for s in p["signatures"] if s["claim"])
        row = page.locator(f"[data-testid=document-signature][data-signature={claimed['id']}]")
        decision = claimed["claim"]["decision"]
        expect(row.locator("[data-testid=claim-decision]")).to_have_attribute("data-decision", decision)
        expect(row.locator("[data-testid=claim-score]")).to_have_text(f"{claimed['claim']['fused_score']:.3f}")
        expect(page.locator("[data-testid=claim-decision]")).to_have_count(1)
        dates = page.locator("[data-testid=signature-date]")
        assert dates.evaluate_all("(items) => items.map((p) => p.dataset.kind)") == ["handwritten", "none"]
        expect(page.locator("[data-testid=document-page][data-page='2']")).to_contain_text("No signature on this page")
        unmatched = page.locator(f"[data-testid=document-signature]:not([data-signature={claimed['id']}])")
        expect(unmatched.locator("[data-testid=signature-unmatched]")).to_have_text("Not matched to a claimed writer.")
        screenshot(page, "document")

        # The thumbnail enlarges on demand; a narrow screen gets one column, nothing wider than it.
        enlarge = page.get_by_role("button", name="Enlarge page 1")
        enlarge.click()
        expect(page.get_by_role("button", name="Shrink page 1")).to_have_attribute("aria-pressed", "true")
        page.set_viewport_size({"width": 390, "height": 844})
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, "document-narrow")
        page.set_viewport_size({"width": 1280, "height": 800})

        # Without claims every signature is identified: both enrolled writers, best first.
        page.select_option("#document-claimed", [])
        page.click("#document-submit")
        expect(page.locator("[data-testid=signature-identified]")).to_have_count(2)
        candidates = page.locator("[data-testid=signature-candidate]")
        expect(candidates).to_have_count(4)
        assert set(candidates.evaluate_all("(items) => items.map((li) => li.dataset.writer)")) == {first, third}
        expect(page.locator("[data-testid=claim-decision]")).to_have_count(0)
        expect(page.locator("[data-testid=document-rule][data-rule=claimed_writers_verified]")).to_have_count(0)

        # A file the service cannot read: its message is shown, the earlier report is hidden.
        broken = b"%PDF-1.4 this is not really a PDF"
        files = {"document": ("broken.pdf", broken, "application/pdf")}
        message = _error_message(base, api_key, "/documents/report", files)
        page.set_input_files("#document-file", buffer_upload("broken.pdf", broken, "application/pdf"))
        page.click("#document-submit")
        alert = page.locator("#messages [data-kind=error][data-context=document]")
        expect(alert).to_contain_text("Document check failed")
        expect(alert).to_contain_text(message)
        expect(alert).to_contain_text("422")
        expect(page.locator("#document-result")).to_be_hidden()
