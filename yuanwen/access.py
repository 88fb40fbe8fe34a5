"""Who may do what: roles and their permissions, and the ladder of access levels.

A shared knowledge base has accounts (``yuanwen/accounts.py``). Each account has a **role**,
which says what it may do, and a **clearance**, which says what it may read: documents whose
access level is at or below the clearance on the knowledge base's ladder (default
``公开 < 内部``; an office sets its own, e.g. ``公开, 内部, 党员内部, 领导干部``). A knowledge base
without accounts is a desktop one: its one user acts as the local actor, who may do
everything and read everything.
"""

from __future__ import annotations

import getpass
import json
import re

from .errors import AccessDenied, UsageError
from .models import Actor

ROLES = ("reader", "editor", "admin")
ROLE_LABELS = {"reader": "读者", "editor": "编辑", "admin": "管理员"}

#: What each role may do; each role may also do all that the roles before it may.
PERMISSIONS: dict[str, frozenset[str]] = {
    "reader": frozenset({"search", "read", "packs"}),
    "editor": frozenset({"upload", "ingest", "delete", "set_access", "share_packs"}),
    "admin": frozenset({"accounts", "audit", "levels"}),
}
PERMISSION_LABELS = {
    "search": "检索与引文核对", "read": "阅读文档", "packs": "编辑自己的汇编",
    "upload": "上传文件", "ingest": "导入文件", "delete": "删除文档", "set_access": "设置文档访问级别",
    "share_packs": "编辑共享汇编", "accounts": "管理账户", "audit": "查看审计日志",
    "levels": "设置访问级别表",
}

PUBLIC = "公开"
DEFAULT_LEVELS = (PUBLIC, "内部")
LEVELS_META = "access_levels"  # the ladder, as a JSON list in the knowledge base's meta
MAX_LEVEL_CHARS = 20
LOCAL_CLIENT = "本机命令行"


def role_permissions(role: str) -> frozenset[str]:
    """Everything ``role`` may do."""
    if role not in ROLES:
        return frozenset()
    out: set[str] = set()
    for r in ROLES[: ROLES.index(role) + 1]:
        out |= PERMISSIONS[r]
    return frozenset(out)


def can(actor: Actor, permission: str) -> bool:
    """Whether ``actor`` may do ``permission``."""
    return permission in role_permissions(actor.role)


def require(actor: Actor, permission: str) -> None:
    """AccessDenied unless ``actor`` may do ``permission`` (the message names the role needed)."""
    if can(actor, permission):
        return
    need = next((r for r in ROLES if permission in role_permissions(r)), "admin")
    raise AccessDenied(
        f"账户 {actor.name}（{ROLE_LABELS.get(actor.role, actor.role)}）无权{PERMISSION_LABELS.get(permission, permission)}；"
        f"需要「{ROLE_LABELS[need]}」角色，请联系管理员")


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`ROLES`, else a UsageError listing them."""
    if role not in ROLES:
        raise UsageError(f"未知的角色 {role!r}，可选：{'、'.join(ROLES)}（读者、编辑、管理员）")
    return role


def parse_levels(raw: str | None) -> list[str]:
    """The ladder stored in the knowledge base's meta (the default when none is stored)."""
    if not raw:
        return list(DEFAULT_LEVELS)
    try:
        levels = json.loads(raw)
    except ValueError:
        return list(DEFAULT_LEVELS)
    return [str(x) for x in levels] if isinstance(levels, list) and levels else list(DEFAULT_LEVELS)


def check_ladder(levels: list[str]) -> list[str]:
    """A new ladder, lowest first, checked: 公开 first, names short, none repeated."""
    out = [re.sub(r"\s+", "", x) for x in levels if x and x.strip()]
    if not out or out[0] != PUBLIC:
        raise UsageError(f"访问级别表须以「{PUBLIC}」开头，由低到高排列，如：公开,内部,党员内部")
    if len(set(out)) != len(out):
        raise UsageError("访问级别表中有重复的级别名")
    for x in out:
        if len(x) > MAX_LEVEL_CHARS or not re.fullmatch(r"[\w\u3400-\u9fff\uf900-\ufaff-]+", x):
            raise UsageError(f"级别名 {x!r} 不可用：只能用汉字、字母、数字，最长 {MAX_LEVEL_CHARS} 字")
    return out


def check_level(level: str, ladder: list[str]) -> str:
    """``level`` if it is on ``ladder``, else a UsageError listing the levels."""
    level = (level or "").strip()
    if level not in ladder:
        raise UsageError(f"未知的访问级别 {level!r}，本知识库的级别（由低到高）：{'、'.join(ladder)}")
    return level


def visible_levels(ladder: list[str], clearance: str) -> list[str]:
    """The levels a clearance may read: itself and those below it. A clearance that is no
    longer on the ladder (the ladder was changed) reads only 公开."""
    if clearance not in ladder:
        return [PUBLIC]
    return ladder[: ladder.index(clearance) + 1]


def stricter(ladder: list[str], *levels: str | None) -> str | None:
    """The highest of ``levels`` on the ladder (None when none is given)."""
    given = [x for x in levels if x]
    if not given:
        return None
    return max(given, key=lambda x: ladder.index(x) if x in ladder else len(ladder))


def local_actor(ladder: list[str], client: str = LOCAL_CLIENT) -> Actor:
    """The machine's own user: whoever runs the CLI (or the desktop app) has the files, so
    may do and read everything."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without passwd entry)
        user = "?"
    return Actor(name=f"本机:{user}", role="admin", clearance=ladder[-1], client=client,
                 local=True, via="local")
