"""The Verify page with a claims-calibrated model, in headless Chromium: the operating point is
chosen in a select, the answer names it, and a reference flagged at enrollment is marked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inkproof.service.app import ServiceSettings, create_app
from inkproof.store import SignatureStore, open_database
from inkproof.verifier import Verifier
from tests.service import test_ui_browser as ui
from tests.service.ui_fixtures import serve, upload
from tests.store.test_claims_store import claims_model, outlier_between

# The browser and page fixtures of the main UI test (Chromium, JavaScript errors fail the test).
browser = ui.browser
page = ui.page
pytestmark = ui.pytestmark
expect = ui.expect


def _genuine(root: Path, writer: str) -> list[Path]:
    return sorted((root / writer / "genuine").glob("*.png"))


@pytest.fixture
def claims_store(service_model: Path, synthetic_root: Path, tmp_path: Path) -> Iterator[SignatureStore]:
    with Verifier(service_model, device="cpu") as plain:
        cohort = plain.embed_many(_genuine(synthetic_root, "W009") + _genuine(synthetic_root, "W010"))
        outlier = outlier_between(plain, _genuine(synthetic_root, "W001")[:4], _genuine(synthetic_root, "W005")[0])
    card = claims_model(service_model, tmp_path / "model", cohort, chosen={1: "mean", 3: "svm-rbf"}, outlier=outlier)
    verifier = Verifier(card, device="cpu")
    store = SignatureStore(open_database(tmp_path / "claims.db"), verifier)
    yield store
    verifier.close()


def test_operating_point_select_and_flagged_reference(
    page: Any, claims_store: SignatureStore, service_model: Path, synthetic_root: Path
) -> None:
    genuine = _genuine(synthetic_root, "W001")
    odd = _genuine(synthetic_root, "W005")[0]
    enrolled = claims_store.enroll("W001", [*genuine[:4], odd])
    assert len(enrolled.flagged) == 1
    key = claims_store.create_api_key("ui")
    with serve(create_app(ServiceSettings(model=claims_store.verifier.card_path), store=claims_store)) as base:
        ui._open_with_key(page, base, key, tab="verify")
        expect(page.locator("#verify-operating-point")).to_have_value("far-skilled-5")
        expect(page.locator("#verify-writer option[value=W001]")).to_have_count(1)
        page.select_option("#verify-writer", "W001")
        page.select_option("#verify-operating-point", "far-skilled-1")
        page.set_input_files("#verify-query", upload(genuine[5]))
        page.click("#verify-submit")
        expect(page.locator("#verify-result")).to_be_visible()
        expect(page.locator("#verify-point")).to_contain_text("strict")
        expect(page.locator("#verify-source")).to_have_attribute("data-source", "calibrated:K=3:far-skilled-1")
        expect(page.locator("#verify-score")).to_contain_text("writer RBF SVM")
        expect(page.locator("#verify-references [data-testid=reference-flagged]")).to_have_count(1)
        flagged = page.locator("#verify-references li:has([data-testid=reference-flagged])")
        expect(flagged).to_have_attribute("data-reference-id", str(enrolled.flagged[0]))
