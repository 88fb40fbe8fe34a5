"""Shared fixtures: a tiny fake embedder (no weights), the shared corpus, small knowledge bases."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from yuanwen.embed import Embedder, register_embedder
from yuanwen.text import tokenize

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "000_dc0b083f46e91fc1.txt"
SHARED = ROOT.parent / "shared" / "corpus"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class FakeEmbedder(Embedder):
    """Hashed bag of character bigrams: deterministic, lexical, 64 dimensions, no weights."""

    model_id = "test/fake-bigram-64"
    dim = 64

    def embed_batch(self, texts, role):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for term in tokenize(t):
                h = int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little")
                out[i, h % self.dim] += 1.0
        return out


class OtherFakeEmbedder(FakeEmbedder):
    model_id = "test/other-fake-32"
    dim = 32


register_embedder("fake", FakeEmbedder)
register_embedder("fake2", OtherFakeEmbedder)


@pytest.fixture
def shared_corpus() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared corpus not found at {SHARED}")
    return SHARED


@pytest.fixture
def sample_path() -> Path:
    return SAMPLE
