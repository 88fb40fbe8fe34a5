"""The soak test (bounded; not in the default run: ``pytest -m soak``).

It runs ``python -m benchmarks.soak`` as a program, as a user would, and checks the figures it
prints (tests do not import the benchmarks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.soak


def test_soak_searches_and_quotes_during_ingest_and_prune():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "YUANWEN_PLUGINS": "tests.fake_embedder"}
    done = subprocess.run([sys.executable, "-m", "benchmarks.soak", "--seconds", "60", "--embedder", "fake"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    fig = json.loads(done.stdout[done.stdout.index("{"):])
    assert fig["queries_answered"] > 50
    assert fig["query_errors"] == 0, fig["error_samples"]
    assert fig["ingest_runs"] >= 3 and not fig["ingest_errors"]
    assert fig["verify_after"]["ok"], fig["verify_after"]
