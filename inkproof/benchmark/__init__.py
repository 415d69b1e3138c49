"""Benchmarks that write JSON and a markdown table (docs/benchmarks.md); no timing asserts in tests."""
