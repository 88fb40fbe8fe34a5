"""Shared fixtures: a tiny fake embedder (no weights), the shared corpus, small knowledge bases."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "000_dc0b083f46e91fc1.txt"
SHARED = ROOT.parent / "shared" / "corpus"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


from .fake_embedder import FakeEmbedder, OtherFakeEmbedder  # noqa: E402,F401  (registers them)


@pytest.fixture
def shared_corpus() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared corpus not found at {SHARED}")
    return SHARED


@pytest.fixture
def sample_path() -> Path:
    return SAMPLE
