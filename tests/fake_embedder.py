"""A tiny fake embedder for tests (no weights): load it in a subprocess with
``YUANWEN_PLUGINS=tests.fake_embedder``."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import numpy as np

from yuanwen.embed import Embedder, register_embedder
from yuanwen.errors import EmbedderUnavailableError
from yuanwen.text import tokenize


class FakeEmbedder(Embedder):
    """Hashed bag of character bigrams: deterministic, lexical, 64 dimensions, no weights."""

    model_id = "test/fake-bigram-64"
    dim = 64

    def embed_batch(self, texts, role):
        delay = float(os.environ.get("YUANWEN_FAKE_DELAY", "0"))  # to make a crash test's kills land mid-work
        if delay:
            time.sleep(delay * len(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for term in tokenize(t):
                h = int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little")
                out[i, h % self.dim] += 1.0
        return out


class OtherFakeEmbedder(FakeEmbedder):
    model_id = "test/other-fake-32"
    dim = 32


class UnpicklableEmbedder(FakeEmbedder):
    """Holds a lock, like an embedder around a C model: cannot be copied into a worker process
    (and has no name it was loaded under), so ``ingest --workers N`` embeds in one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()


class FailingEmbedder(FakeEmbedder):
    """Picklable (a worker process gets it by unpickling); fails like an endpoint that is down."""

    def embed_batch(self, texts, role):
        raise EmbedderUnavailableError("向量服务 http://127.0.0.1:9/v1 无法连接")


register_embedder("fake", FakeEmbedder)
register_embedder("fake2", OtherFakeEmbedder)
