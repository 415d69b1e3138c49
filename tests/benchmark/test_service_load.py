"""The service load test runs a real server and counts every answer."""

from __future__ import annotations

from inkproof.benchmark.service_load import run_service_benchmark, service_markdown


def test_service_benchmark_measures_a_real_server() -> None:
    record = run_service_benchmark(clients=(2,), workers=(1,), seconds=1.0, identify_sizes=(150,), writers=2, repeats=5)
    (claims,) = record["verify_claim"]
    assert claims["errors"] == 0 and claims["requests"] > 0 and claims["p50_ms"] > 0
    (identify,) = record["identify"]
    # 2 real writers with 5 references each, the rest random embeddings written around the store.
    assert identify["references"] == 150 and identify["index"] == "exact"
    assert 0 < identify["p50_ms"] <= identify["p99_ms"]
    assert "| 150 references | exact |" in service_markdown(record)
