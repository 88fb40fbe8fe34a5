"""Study-pack (学习材料汇编) editing: pure functions over :class:`yuanwen.models.StudyPack`.

Every function returns a new pack and leaves its argument untouched, so the app can keep
the pack in its session and a command-line tool can edit a pack saved as JSON
(``StudyPack.to_dict`` / ``StudyPack.from_dict``) the same way. Items are addressed by
(section index, item index), both from 0; a bad index raises :class:`UsageError`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from yuanwen.errors import UsageError
from yuanwen.models import Document, Hit, PackItem, PackSection, Passage, StudyPack

from .cite import cite
from .export import item_from_hit, xml_safe

DEFAULT_SECTION = "未分组"
# Bounds on a pack file: far above any real pack, low enough that a crafted file cannot
# make the app slow or large.
MAX_PACK_BYTES = 20 * 1048576
MAX_SECTIONS = 500
MAX_ITEMS = 5000
MAX_STRING = 200_000  # characters in one title, passage, citation or note
MAX_ID = 2**63 - 1  # SQLite's largest integer


def copy_pack(pack: StudyPack) -> StudyPack:
    """A deep copy of ``pack`` (edits never change their argument)."""
    return copy.deepcopy(pack)


_copy = copy_pack


def _section(pack: StudyPack, sec: int) -> PackSection:
    if not 0 <= sec < len(pack.sections):
        raise UsageError(f"汇编中没有第 {sec + 1} 个分组（共 {len(pack.sections)} 个）")
    return pack.sections[sec]


def _item_section(pack: StudyPack, sec: int, idx: int) -> PackSection:
    s = _section(pack, sec)
    if not 0 <= idx < len(s.items):
        raise UsageError(f"分组“{s.title}”中没有第 {idx + 1} 段（共 {len(s.items)} 段）")
    return s


def item_count(pack: StudyPack) -> int:
    """How many passages the pack holds, over all sections."""
    return sum(len(s.items) for s in pack.sections)


def find_item(pack: StudyPack, passage_id: int | None) -> tuple[int, int] | None:
    """(section, index) of the item for ``passage_id``, or None when it is not in the pack."""
    if passage_id is None:
        return None
    for si, s in enumerate(pack.sections):
        for ii, item in enumerate(s.items):
            if item.passage_id == passage_id:
                return si, ii
    return None


def already_in(pack: StudyPack, passage_ids: list[int]) -> list[int]:
    """Those of ``passage_ids`` that the pack holds already (adding them again does nothing)."""
    return [pid for pid in passage_ids if find_item(pack, pid) is not None]


def item_from_passage(doc: Document, passage: Passage, style: str = "footnote") -> PackItem:
    """A pack item for one passage of ``doc`` (e.g. picked while reading), cited in ``style``."""
    hit = Hit(rank=0, score=0.0, passage=passage, document=doc,
              citation=cite(doc, passage.heading_path, passage.page, (passage.start, passage.end)))
    return item_from_hit(hit, style)


def set_title(pack: StudyPack, title: str, subtitle: str | None = None) -> StudyPack:
    """The pack with a new title (and subtitle, when given)."""
    out = _copy(pack)
    out.title = title.strip() or StudyPack().title
    if subtitle is not None:
        out.subtitle = subtitle.strip()
    return out


def add_section(pack: StudyPack, title: str) -> StudyPack:
    """The pack with a new, empty section at the end."""
    title = title.strip()
    if not title:
        raise UsageError("分组标题不能为空")
    out = _copy(pack)
    out.sections.append(PackSection(title))
    return out


def rename_section(pack: StudyPack, sec: int, title: str) -> StudyPack:
    """The pack with section ``sec`` renamed."""
    title = title.strip()
    if not title:
        raise UsageError("分组标题不能为空")
    out = _copy(pack)
    _section(out, sec).title = title
    return out


def move_section(pack: StudyPack, sec: int, delta: int) -> StudyPack:
    """The pack with section ``sec`` moved ``delta`` places (-1 up, +1 down), kept in range."""
    out = _copy(pack)
    _section(out, sec)
    new = max(0, min(len(out.sections) - 1, sec + delta))
    out.sections.insert(new, out.sections.pop(sec))
    return out


def remove_section(pack: StudyPack, sec: int) -> StudyPack:
    """The pack without section ``sec``; its items move to the end of a neighbouring section
    (the previous one, else the next one), or go with it when it is the only section."""
    out = _copy(pack)
    gone = _section(out, sec)
    del out.sections[sec]
    if gone.items and out.sections:
        out.sections[max(0, sec - 1)].items.extend(gone.items)
    return out


def add_item(pack: StudyPack, item: PackItem, sec: int | None = None) -> StudyPack:
    """The pack with ``item`` appended to section ``sec`` (default: the last section; a
    section named 未分组 is made when there is none). A passage already in the pack is not
    added twice."""
    out = _copy(pack)
    if find_item(out, item.passage_id) is not None:
        return out
    if not out.sections:
        out.sections.append(PackSection(DEFAULT_SECTION))
    target = _section(out, len(out.sections) - 1 if sec is None else sec)
    target.items.append(copy.deepcopy(item))
    return out


def remove_passages(pack: StudyPack, passage_ids: list[int]) -> StudyPack:
    """The pack without the items of ``passage_ids``; an id not in the pack raises
    :class:`UsageError` and nothing is removed."""
    missing = [pid for pid in passage_ids if find_item(pack, pid) is None]
    if missing:
        raise UsageError(f"汇编中没有这些段落：{', '.join(map(str, missing))}")
    out = _copy(pack)
    drop = set(passage_ids)
    for s in out.sections:
        s.items = [i for i in s.items if i.passage_id not in drop]
    return out


def remove_item(pack: StudyPack, sec: int, idx: int) -> StudyPack:
    """The pack without item ``idx`` of section ``sec``."""
    out = _copy(pack)
    del _item_section(out, sec, idx).items[idx]
    return out


def set_note(pack: StudyPack, sec: int, idx: int, note: str) -> StudyPack:
    """The pack with the trainer's note (按语) on item ``idx`` of section ``sec`` set."""
    out = _copy(pack)
    _item_section(out, sec, idx).items[idx].note = note.strip()
    return out


def move_item(pack: StudyPack, sec: int, idx: int, delta: int) -> StudyPack:
    """The pack with an item moved one place up (``delta=-1``) or down (``+1``).

    Past the top of its section an item goes to the end of the previous section; past the
    bottom, to the start of the next one; at the very top or bottom of the pack it stays.
    """
    if delta not in (-1, 1):
        raise UsageError("只能上移或下移一位")
    out = _copy(pack)
    items = _item_section(out, sec, idx).items
    new = idx + delta
    if 0 <= new < len(items):
        items.insert(new, items.pop(idx))
    elif new < 0 and sec > 0:
        out.sections[sec - 1].items.append(items.pop(idx))
    elif new >= len(items) and sec < len(out.sections) - 1:
        out.sections[sec + 1].items.insert(0, items.pop(idx))
    return out


def move_to_section(pack: StudyPack, sec: int, idx: int, target: int) -> StudyPack:
    """The pack with item ``idx`` of section ``sec`` moved to the end of section ``target``."""
    out = _copy(pack)
    items = _item_section(out, sec, idx).items
    dest = _section(out, target)
    if target == sec:
        return out
    dest.items.append(items.pop(idx))
    return out


# -- loading a saved pack ---------------------------------------------------------------------
class _Bad(Exception):
    """One thing wrong in a pack file (a Chinese reason); becomes a UsageError naming the file."""


_LABELS = {"title": "标题", "subtitle": "副标题", "sections": "分组", "items": "段落",
           "text": "正文", "citation": "出处", "heading_path": "标题层级", "note": "按语",
           "passage_id": "段落编号", "doc_id": "文档编号", "date": "日期"}


class NotAPackError(UsageError):
    """A file that is not a pack; ``reason`` says what is wrong with it (in Chinese)."""

    def __init__(self, name: str, reason: str) -> None:
        self.reason = reason
        super().__init__(f"无法载入汇编文件 {name}：{reason}。请选择用「下载汇编文件」或 "
                         f"yuanwen pack export 导出的 .json 汇编文件")


def _refusal(name: str, reason: str) -> UsageError:
    return NotAPackError(name, reason)


def _label(key: str) -> str:
    return f"“{_LABELS.get(key, key)}”（{key}）"


def _text(obj: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    if key not in obj or (obj[key] is None and default is not None):
        if default is None:
            raise _Bad(f"{where}缺少{_label(key)}")
        return default
    value = obj[key]
    if not isinstance(value, str):
        raise _Bad(f"{where}的{_label(key)}应为文字")
    if len(value) > MAX_STRING:
        raise _Bad(f"{where}的{_label(key)}过长（{len(value)} 字，上限 {MAX_STRING} 字）")
    return xml_safe(value)


def _opt_text(obj: dict[str, Any], key: str, where: str) -> str | None:
    return None if obj.get(key) is None else _text(obj, key, where)


def _opt_id(obj: dict[str, Any], key: str, where: str) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise _Bad(f"{where}的{_label(key)}应为不大于 {MAX_ID} 的非负整数")
    return value


def _list(obj: dict[str, Any], key: str, where: str) -> list[Any]:
    value = obj.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(f"{where}的{_label(key)}应为列表")
    return value


def _item(raw: Any, where: str) -> PackItem:
    if not isinstance(raw, dict):
        raise _Bad(f"{where}应为一段材料（对象）")
    heading_path = _list(raw, "heading_path", where)
    if not all(isinstance(h, str) and len(h) <= MAX_STRING for h in heading_path):
        raise _Bad(f"{where}的{_label('heading_path')}应为文字列表")
    return PackItem(
        text=_text(raw, "text", where), title=_text(raw, "title", where),
        citation=_text(raw, "citation", where), heading_path=[xml_safe(h) for h in heading_path],
        note=_text(raw, "note", where, default=""), passage_id=_opt_id(raw, "passage_id", where),
        doc_id=_opt_id(raw, "doc_id", where), date=_opt_text(raw, "date", where),
        access=_opt_text(raw, "access", where),
    )


def pack_from_dict(data: Any, name: str = "汇编文件") -> StudyPack:
    """A pack from the parsed JSON of a saved pack (:meth:`StudyPack.to_dict`), checked key
    by key: wrong types, missing keys, out-of-range numbers and oversized content raise
    :class:`UsageError` naming ``name``. Unknown keys are ignored; every string is made
    :func:`~search.export.xml_safe`."""
    try:
        if not isinstance(data, dict):
            raise _Bad("最外层应为一个汇编（对象）")
        if "sections" not in data:  # e.g. {"foo": 1}: some other JSON file, not an empty pack
            raise _Bad(f"这不是汇编文件（没有{_label('sections')}）")
        sections_raw = _list(data, "sections", "汇编")
        if len(sections_raw) > MAX_SECTIONS:
            raise _Bad(f"分组过多（{len(sections_raw)} 个，上限 {MAX_SECTIONS} 个）")
        sections, n = [], 0
        for si, sec in enumerate(sections_raw):
            where = f"第 {si + 1} 个分组"
            if not isinstance(sec, dict):
                raise _Bad(f"{where}应为一个分组（对象）")
            items_raw = _list(sec, "items", where)
            n += len(items_raw)
            if n > MAX_ITEMS:
                raise _Bad(f"段落过多（上限 {MAX_ITEMS} 段）")
            items = [_item(it, f"{where}第 {ii + 1} 段") for ii, it in enumerate(items_raw)]
            sections.append(PackSection(_text(sec, "title", where, default=""), items))
        return StudyPack(title=_text(data, "title", "汇编", default=StudyPack().title),
                         subtitle=_text(data, "subtitle", "汇编", default=""), sections=sections)
    except _Bad as exc:
        raise _refusal(name, str(exc)) from None


def load_pack(raw: bytes | str, name: str = "汇编文件") -> StudyPack:
    """A pack from the bytes (or text) of a saved pack file; a file that is not one (not
    UTF-8, not JSON, too large, too deeply nested, wrong structure) raises
    :class:`UsageError` with a Chinese message naming ``name``."""
    return pack_from_dict(parse_pack_file(raw, name), name)


def parse_pack_file(raw: bytes | str, name: str = "汇编文件") -> Any:
    """The parsed JSON of a pack file (not yet checked as a pack: see :func:`pack_from_dict`);
    bytes that are not UTF-8 JSON of a sane size and depth raise :class:`UsageError`."""
    def bad(reason: str) -> UsageError:
        return _refusal(name, reason)

    if len(raw) > MAX_PACK_BYTES:
        raise bad(f"文件过大（上限 {MAX_PACK_BYTES // 1048576} MB）")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise bad("文件不是 UTF-8 编码的文字") from None
    if not raw.strip():
        raise bad("文件是空的")
    try:
        return json.loads(raw)
    except RecursionError:
        raise bad("文件内容嵌套过深") from None
    except json.JSONDecodeError as exc:
        raise bad(f"文件不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列有误）") from None
    except ValueError:  # an integer too long to convert
        raise bad("文件中有过长的数字") from None
