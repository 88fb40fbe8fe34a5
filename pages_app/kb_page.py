"""知识库: what the knowledge base holds; upload documents and ingest them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from pages_app.common import get_kb, md_literal, open_kb, run_page, session_actor, ss
from yuanwen.errors import YuanwenError
from yuanwen.library import MAX_UPLOAD_MB, STATUS_LABELS, UPLOAD_DIR, Library, ingest_summary, safe_filename
from yuanwen.library import open_kb as open_library

UPLOAD_TYPES = Library.upload_types()  # what the readers read: the reader registry's suffixes


def body(kb_dir: Path) -> dict[str, Any]:
    st.header("知识库")
    st.text(f"位置：{kb_dir.resolve()}")
    h = get_kb(kb_dir)
    if h is not None:
        with h.lock:
            stats = h.kb.stats()
        share = stats["embedded"] / stats["passages"] if stats["passages"] else 0.0
        c1, c2, c3 = st.columns(3)
        c1.metric("文档", f"{stats['documents']} 篇")
        c2.metric("段落", f"{stats['passages']} 段")
        c3.metric("已向量化", f"{share:.0%}", help=f"{stats['embedded']} 段已向量化，{stats['pending']} 段待向量化")
        st.markdown(f"**向量模型**：{md_literal(stats['embedder'] or '尚未向量化')}")  # in full: ids are long
        if stats["pending"]:
            st.warning(f"有 {stats['pending']} 段尚未向量化，语义检索暂时找不到它们；"
                       f"可运行 yuanwen ingest <文件夹> --kb {md_literal(str(kb_dir))} 补完。")
        t1, t2, t3 = st.columns(3)
        groups = (("文种", "by_type"), ("年份", "by_year"), ("发文机关/讲话人", "by_issuer"))
        for col, (label, key) in zip((t1, t2, t3), groups):
            rows = list(stats[key].items())
            col.markdown(f"**按{label}**")
            if rows:
                col.dataframe({label: [str(k) for k, _ in rows], "篇数": [v for _, v in rows]},
                              hide_index=True, height=min(400, 38 + 35 * len(rows)))
            else:
                col.caption("（无）")
        formats = stats.get("by_format", {})
        if formats:
            st.markdown("**按格式**：" + "，".join(f"{md_literal(str(k))} {v} 篇" for k, v in formats.items()))
        if stats.get("ocr_pages"):
            st.markdown(f"**文字识别（OCR）**：{stats['ocr_pages']} 页（识别文本，引用前请核对原件）")
        groups += (("格式", "by_format"),)
        st.download_button(
            "导出统计（CSV）", key="kb_csv", mime="text/csv", file_name="知识库统计.csv",
            data=Library.to_csv(["分类", "名称", "篇数"],
                        [(label, str(k), v) for label, key in groups for k, v in stats.get(key, {}).items()]),
        )
        st.caption(f"数据库 {stats['db_bytes'] / 1048576:.1f} MB，向量索引 {stats['index_type'] or '-'} "
                   f"{stats['index_bytes'] / 1048576:.1f} MB，关键词索引 {stats['keyword_index_bytes'] / 1048576:.1f} MB")

    st.divider()
    st.subheader("上传文件")
    st.caption(f"支持 {'、'.join(UPLOAD_TYPES)}，每个文件不超过 {MAX_UPLOAD_MB} MB。扫描版 PDF、图片逐页文字识别（OCR），每页约 3–5 秒。"
               f"文件保存在知识库的 {UPLOAD_DIR}/ 文件夹中；同一文件再次上传会更新原来的版本，"
               "不同的文件即使名字相同或相近也不会互相覆盖（另存为“名称 (2)”）。")
    gen = ss().get("upload_gen", 0)
    if h is not None:
        with h.lock:
            levels = h.kb.visible_levels()  # not above the account's own clearance
    else:
        levels = open_library(kb_dir).access_levels()  # the default ladder: no database yet
    if ss().get("up_access") not in levels:
        ss()["up_access"] = levels[0]
    st.selectbox("访问级别", levels, key="up_access",
                 help="本次导入的文档的访问级别：只有可阅级别不低于它的账户能检索和阅读；"
                      "文件自带（manifest.csv、文首元数据）的级别更高时以其为准。导入后可在「文档」页修改")
    files = st.file_uploader(f"选择文件（可多选，单个不超过 {MAX_UPLOAD_MB} MB）", type=UPLOAD_TYPES,
                             accept_multiple_files=True, max_upload_size=MAX_UPLOAD_MB,
                             key=f"upload_{gen}")
    if st.button("导入知识库", type="primary", key="up_go", disabled=not files):
        ss()["ingest_result"] = run_upload_ingest(kb_dir, files or [], ss().get("up_access"))
        ss()["upload_gen"] = gen + 1
        st.rerun()
    result = ss().get("ingest_result")
    if result:
        render_ingest_result(result)
    return {}


def run_upload_ingest(kb_dir: Path, files: list, access: str | None = None) -> dict[str, Any]:
    """Save the uploads and ingest them at the access level ``access``, as the session's
    account; returns what to show (rows, summary, errors)."""
    result: dict[str, Any] = {"rows": [], "summary": "", "error": None}
    with st.status("正在导入…", expanded=True) as status:
        st.write(f"保存 {len(files)} 个文件…")
        lib = open_library(kb_dir, readonly=False, actor=session_actor())
        try:
            saved, refused = lib.save_uploads(files)
        except YuanwenError as exc:  # not allowed, or the audit log cannot be written
            status.update(label="导入失败", state="error")
            return {**result, "error": str(exc)}
        for name, reason in refused:
            result["rows"].append({"文件": name, "结果": "失败", "段落": 0, "说明": reason})
        if saved:
            st.write("读取、分段、入库、向量化…（大文件、扫描件（逐页文字识别）或首次加载向量模型需要一些时间）")
            bar = st.progress(0.0, text="准备中…")

            def on_progress(stage: str, done: int, total: int) -> None:
                unit = {"读取入库": "个文件", "文字识别": "页"}.get(stage, "段")
                bar.progress(done / total if total else 1.0, text=f"{stage}：{done} / {total} {unit}")
            names = {str(p.resolve()): name for name, p in saved}
            renamed = {str(p.resolve()): f"已有同名的另一文件，另存为 {p.name}"
                       for name, p in saved if p.name != safe_filename(name)}
            try:
                report = lib.ingest(
                    [p for _, p in saved], on_progress=on_progress, access=access)
            except YuanwenError as exc:
                result["error"] = str(exc)
                status.update(label="导入失败", state="error")
            else:
                for o in report.outcomes:
                    result["rows"].append({
                        "文件": names.get(o.path, Path(o.path).name),
                        "结果": STATUS_LABELS.get(o.status, o.status),
                        "段落": o.passages,
                        "说明": "；".join(x for x in (renamed.get(o.path), o.reason, *o.warnings) if x),
                    })
                result["summary"] = (f"{ingest_summary(report, refused=len(refused))}；访问级别 {access or '公开'}；"
                                     f"入库 {report.passages_stored} 段，向量化 {report.passages_embedded} 段"
                                     + (f"，文字识别 {report.ocr_pages} 页（{report.ocr_seconds:.0f} 秒）"
                                        if report.ocr_pages else ""))
        if result["error"] is None:
            status.update(label="导入完成", state="complete")
    open_kb.clear()  # the next page load opens the knowledge base afresh and sees the new documents
    return result


def render_ingest_result(result: dict[str, Any]) -> None:
    st.markdown("**上次导入的结果**")
    if result.get("error"):
        st.error(md_literal(result["error"]))
    if result.get("summary"):
        st.success(result["summary"])
    for row in result["rows"]:
        if row["结果"] == "失败":
            st.error(md_literal(f"失败：{row['文件']}：{row['说明']}"))
    if result["rows"]:
        cols = ("文件", "结果", "段落", "说明")
        st.dataframe({k: [r[k] for r in result["rows"]] for k in cols}, hide_index=True)
        st.download_button("导出导入结果（CSV）", key="up_csv", mime="text/csv", file_name="导入结果.csv",
                           data=Library.to_csv(cols, [[r[k] for k in cols] for r in result["rows"]]))


run_page(body)
