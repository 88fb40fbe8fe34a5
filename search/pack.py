"""Study-pack (学习材料汇编) editing: pure functions over :class:`yuanwen.models.StudyPack`.

Every function returns a new pack and leaves its argument untouched, so the app can keep
the pack in its session and a command-line tool can edit a pack saved as JSON
(``StudyPack.to_dict`` / ``StudyPack.from_dict``) the same way. Items are addressed by
(section index, item index), both from 0; a bad index raises :class:`UsageError`.
"""

from __future__ import annotations

import copy

from yuanwen.errors import UsageError
from yuanwen.models import Document, Hit, PackItem, PackSection, Passage, StudyPack

from .cite import cite
from .export import item_from_hit

DEFAULT_SECTION = "未分组"


def _copy(pack: StudyPack) -> StudyPack:
    return copy.deepcopy(pack)


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


def item_from_passage(doc: Document, passage: Passage, style: str = "footnote") -> PackItem:
    """A pack item for one passage of ``doc`` (e.g. picked while reading), cited in ``style``."""
    hit = Hit(rank=0, score=0.0, passage=passage, document=doc,
              citation=cite(doc, passage.heading_path, passage.page))
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
