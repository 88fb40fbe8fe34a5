"""The soak test (bounded; not in the default run: ``pytest -m soak``)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.soak


def test_soak_searches_and_quotes_during_ingest_and_prune():
    from benchmarks.soak import soak

    fig = soak(seconds=60, embedder="fake")
    assert fig["queries_answered"] > 50
    assert fig["query_errors"] == 0, fig["error_samples"]
    assert fig["ingest_runs"] >= 3 and not fig["ingest_errors"]
    assert fig["verify_after"]["ok"], fig["verify_after"]
