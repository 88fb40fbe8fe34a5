"""Shared fixtures: a tiny fake embedder (no weights), the shared corpus, small knowledge bases."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest


ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "000_dc0b083f46e91fc1.txt"
SHARED = ROOT.parent / "shared" / "corpus"
MINI = ROOT / "tests" / "fixtures" / "mini"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


from .fake_embedder import FakeEmbedder, OtherFakeEmbedder  # noqa: E402,F401  (registers them)


def copy_shared(files: list[str], dest: Path, manifest: bool = True) -> Path:
    """Copy ``files`` (paths relative to the shared corpus) into ``dest``, keeping their folders,
    with the corpus's own manifest rows for them (titles, issuers, dates, types) unless
    ``manifest`` is false; skip the test when the shared corpus is not there."""
    if not all((SHARED / f).is_file() for f in files):
        pytest.skip(f"shared corpus not found at {SHARED}")
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SHARED / f, dest / f)
    if manifest:
        rows = (SHARED / "manifest.csv").read_text(encoding="utf-8").splitlines()
        (dest / "manifest.csv").write_text("\n".join([rows[0]] + [r for r in rows if r.split(",")[0] in files])
                                           + "\n", encoding="utf-8")
    return dest


@pytest.fixture
def shared_corpus() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared corpus not found at {SHARED}")
    return SHARED


@pytest.fixture
def sample_path() -> Path:
    return SAMPLE


@pytest.fixture(scope="session")
def mini_kb_dir(tmp_path_factory) -> Path:
    """A knowledge base of ``tests/fixtures/mini`` with the fake embedder, made once per run:
    for tests that only read it."""
    from yuanwen.config import Config
    from yuanwen.ingest.pipeline import ingest

    d = tmp_path_factory.mktemp("mini_kb")
    assert not ingest([MINI], Config(kb_dir=d), embedder="fake", progress=False).failed
    return d


@pytest.fixture
def kb(kb_dir):
    """A read-only handle on the module's ``kb_dir`` (a module that needs another ``kb``
    defines its own)."""
    from yuanwen.config import Config
    from yuanwen.kb import KnowledgeBase

    base = KnowledgeBase(Config(kb_dir=kb_dir), readonly=True)
    yield base
    base.close()


# -- the Streamlit app (tests/test_app*.py): each module defines its own ``kb_dir`` fixture ----
APP = ROOT / "app.py"


@pytest.fixture
def app(kb_dir, monkeypatch):
    """A factory: an AppTest on ``kb_dir`` (or another folder), optionally with URL params.
    Each test starts with no saved study packs (a module's tests share ``kb_dir``)."""
    import shutil

    shutil.rmtree(Path(kb_dir) / "packs", ignore_errors=True)

    def make(params: dict | None = None, kb: Path | None = None) -> AppTest:
        monkeypatch.setenv("YUANWEN_KB", str(kb or kb_dir))
        at = AppTest.from_file(str(APP), default_timeout=60)
        if params:
            at.query_params.update(params)
        return at.run()
    return make


@pytest.fixture
def media(monkeypatch):
    """Every file the app hands to the media manager (download buttons): id -> (data, name)."""
    files: dict[str, tuple[bytes, str | None]] = {}

    class Recording(MemoryMediaFileStorage):
        def load_and_get_id(self, path_or_data, mimetype, kind, filename=None):
            file_id = super().load_and_get_id(path_or_data, mimetype, kind, filename)
            files[file_id] = (path_or_data, filename)
            return file_id

    monkeypatch.setattr("streamlit.testing.v1.app_test.MemoryMediaFileStorage", Recording)
    return files


@pytest.fixture
def download(monkeypatch, media):
    """Click a download button whose file is built on click (a callable as ``data``): run its
    callable as the server does when the browser asks for the file; return (data, file name)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    managers = []

    class Recording(MediaFileManager):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            managers.append(self)

    monkeypatch.setattr("streamlit.testing.v1.app_test.MediaFileManager", Recording)

    def click(button) -> tuple[bytes, str | None]:
        assert button.proto.deferred_file_id and not button.proto.url, button.proto
        return media[Path(managers[-1].execute_deferred(button.proto.deferred_file_id)).stem]

    return click




# -- backends: modules whose knowledge-base fixtures take ``backend`` run on each of them ------
BACKENDS = ["sqlite", "milvus"]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request):
    """Run a module on every backend: knowledge bases made while it is active (its module-scoped
    fixtures and its tests' own) use ``request.param``; ``milvus`` is a Milvus Lite file inside
    the knowledge base folder. A module opts in by making its knowledge-base fixture take it."""
    if request.param == "milvus":
        pytest.importorskip("pymilvus")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("yuanwen.backend.DEFAULT_BACKEND", request.param)
        yield request.param


@pytest.fixture(autouse=True)
def _default_backend_unless_asked(request, monkeypatch):
    """A test that does not ask for ``backend`` (itself or through its fixtures) makes its
    knowledge bases on the default backend, whichever backend its module runs on at the time
    (so it runs once, on SQLite, in every order)."""
    if "backend" not in request.fixturenames:
        monkeypatch.setattr("yuanwen.backend.DEFAULT_BACKEND", "sqlite")


@contextlib.contextmanager
def served(kb_dir: Path):
    """For tests where several processes open ``kb_dir`` at once: a Milvus knowledge base whose
    data is a Milvus Lite file (one process at a time) is served over TCP (Milvus Lite's server
    mode, as a deployment's server) until the block ends, its kb.json pointing there; any other
    knowledge base is left as it is. Nothing in this process may have it open on entry."""
    from yuanwen.backend import read_descriptor, write_descriptor

    desc = read_descriptor(kb_dir)
    if desc.get("backend") != "milvus":
        yield
        return
    from yuanwen.milvus_backend import _LOCAL_USERS, is_local, resolve_uri

    from .milvus_server import LiteServer

    assert is_local(desc["uri"]), desc
    db = resolve_uri(Path(kb_dir), desc["uri"])
    assert not _LOCAL_USERS.get(db), f"{db} is still open in this process"
    with LiteServer(Path(db)) as uri:
        write_descriptor(kb_dir, {**desc, "uri": uri})
        try:
            yield
        finally:
            write_descriptor(kb_dir, desc)
