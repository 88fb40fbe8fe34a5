"""Accounts of a shared knowledge base, logins, and the audit log.

Passwords are hashed with argon2id (``argon2-cffi``, its default parameters: RFC 9106's
second recommended option). A login that fails is logged; after :data:`MAX_FAILURES` failures
of one account (or :data:`MAX_CLIENT_FAILURES` from one client address) within
:data:`LOCK_MINUTES` minutes, further attempts are refused until the window has passed, even
with the right password. The counts come from the audit log itself, so they hold across
restarts and app replicas.

Every action of a shared knowledge base is written to the audit log (``audit`` table of the
knowledge base, append-only, chained by hash; see ``yuanwen/store.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from . import access
from .errors import AuditError, KnowledgeBaseError, LoginError, UsageError
from .models import Account, Actor, AuditEntry
from .store import AUDIT_RETENTION_DAYS, AUDIT_RETENTION_KEY, Store, audit_hash

MAX_FAILURES = 5
MAX_CLIENT_FAILURES = 20
LOCK_MINUTES = 15
MIN_PASSWORD_CHARS = 10
MIN_RETENTION_DAYS = 30
RETENTION_META = AUDIT_RETENTION_KEY
OIDC_SYSTEM = "统一身份认证"  # who makes and updates single sign-on accounts, in the audit log
RESERVED_NAMES = frozenset({OIDC_SYSTEM, "system"})
NAME_RE = re.compile(r"[A-Za-z0-9_.@\-\u3400-\u9fff]{2,64}")
_HASHER = PasswordHasher()
# verified against when the account does not exist, so a wrong name takes as long as a wrong
# password (the time it takes does not tell which names exist)
_DUMMY_HASH = _HASHER.hash("yuanwen-no-such-account")

ACTION_LABELS = {
    "login": "登录", "login_failed": "登录失败", "logout": "退出登录", "search": "检索",
    "quote": "引文核对", "related": "相关论述", "excerpts": "论述摘编", "timeline": "提法演变",
    "view": "阅读文档", "page_image": "查看原件页面", "upload": "上传", "ingest": "导入",
    "delete": "删除文档", "set_access": "设置访问级别", "export": "导出", "pack_save": "保存汇编",
    "pack_delete": "删除汇编", "account_add": "新建账户", "account_update": "修改账户",
    "account_password": "修改密码", "levels": "设置级别表", "retention": "设置日志保存期",
    "audit_export": "导出审计日志", "denied": "越权操作",
}


def now_iso(delta: timedelta | None = None) -> str:
    """The time now (plus ``delta``), UTC, as the audit log writes it."""
    t = datetime.now(timezone.utc) + (delta or timedelta())
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_name(name: str) -> str:
    """An account name: 2-64 letters, digits, Chinese characters or ``_.@-``."""
    name = (name or "").strip()
    # not starting with a dot: the name is a folder name (<kb>/accounts/<name>), and ".."
    # would be the knowledge base folder itself
    if not NAME_RE.fullmatch(name) or name.startswith("."):
        raise UsageError(f"账户名 {name!r} 不可用：2～64 个字符，只能用字母、数字、汉字和 _ . @ -，不能以 . 开头")
    if name.casefold() in RESERVED_NAMES:  # names the audit log uses for the system itself
        raise UsageError(f"账户名 {name} 是系统保留的名称，请换一个")
    return name


def check_password(password: str, name: str = "") -> str:
    """A new password: at least :data:`MIN_PASSWORD_CHARS` characters, not the name itself."""
    if len(password or "") < MIN_PASSWORD_CHARS:
        raise UsageError(f"密码太短：至少 {MIN_PASSWORD_CHARS} 个字符")
    if name and password.strip().lower() == name.lower():
        raise UsageError("密码不能与账户名相同")
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


class Accounts:
    """Accounts, logins and the audit log of one knowledge base's store."""

    def __init__(self, store: Store, ladder: list[str]) -> None:
        self.store = store
        self.ladder = ladder

    # -- the audit log -----------------------------------------------------------------------
    def enabled(self) -> bool:
        """Whether the knowledge base is shared (has accounts): then everything is audited."""
        return self.store.count_accounts() > 0

    def record(self, actor: Actor, action: str, target: str = "", outcome: str = "ok",
               **detail: Any) -> None:
        """Append one line to the audit log. In a shared knowledge base a line that cannot be
        written raises AuditError (the caller refuses the action); a desktop one logs nothing."""
        if actor.local and not self.enabled():
            return
        entry = AuditEntry(ts=now_iso(), account=actor.name, client=actor.client or "", action=action,
                           target=str(target)[:500], detail=_clip(detail), outcome=outcome)
        try:
            self.store.append_audit([entry])
        except (KnowledgeBaseError, OSError) as exc:
            raise AuditError(f"审计日志无法写入（{exc}），为保证可追溯，本次操作未执行；请联系管理员检查知识库磁盘") from exc
        except Exception as exc:  # sqlite3 errors: locked for too long, damaged
            raise AuditError(f"审计日志无法写入（{exc}），为保证可追溯，本次操作未执行；请联系管理员") from exc

    def entries(self, since: str | None = None, until: str | None = None, user: str | None = None,
                actions: Sequence[str] = (), limit: int | None = None) -> list[AuditEntry]:
        """Audit lines, newest first, filtered by time (ISO date or time, inclusive), account
        and action."""
        return self.store.audit_rows(since, until, user, actions, limit)

    def verify_chain(self) -> list[int]:
        """Ids of audit lines whose hash does not follow from the line before (changed or
        removed behind the program's back); empty when the log is intact. The oldest line
        kept may follow a line removed by retention: its predecessor is not checked."""
        bad: list[int] = []
        prev: str | None = None
        for row_id, stored, fields in self.store.audit_chain():
            if prev is not None and audit_hash(prev, *fields) != stored:
                bad.append(row_id)
            prev = stored
        return bad

    def retention_days(self) -> int:
        raw = self.store.audit_meta(RETENTION_META)
        return int(raw) if raw and raw.isdigit() else AUDIT_RETENTION_DAYS

    def set_retention(self, actor: Actor, days: int) -> int:
        """Keep audit lines ``days`` days (at least :data:`MIN_RETENTION_DAYS`); older ones
        are deleted now and by every later purge. Returns how many were deleted."""
        if days < MIN_RETENTION_DAYS:
            raise UsageError(f"审计日志至少保存 {MIN_RETENTION_DAYS} 天（《网络安全法》要求网络日志留存不少于六个月，即 180 天）")
        self.record(actor, "retention", str(days), days=days)  # recorded first: unrecorded, nothing changes
        self.store.set_audit_meta(RETENTION_META, str(int(days)))
        return self.purge()

    def purge(self) -> int:
        """Delete audit lines older than the retention period."""
        return self.store.purge_audit(now_iso(-timedelta(days=self.retention_days())))

    # -- accounts ----------------------------------------------------------------------------
    def list(self) -> list[Account]:
        return self.store.accounts()

    def get(self, name: str) -> Account | None:
        found = self.store.account(name)
        return found[0] if found else None

    def add(self, actor: Actor, name: str, role: str, password: str | None,
            clearance: str | None = None, source: str = "local") -> Account:
        """A new account (UsageError when the name is taken or a value is not allowed)."""
        name = check_name(name)
        access.check_role(role)
        clearance = access.check_level(clearance or access.PUBLIC, self.ladder)
        if self.store.account(name) is not None:
            raise UsageError(f"账户 {name} 已存在；修改请用 yuanwen user set / passwd")
        if source == "local":
            check_password(password or "", name)
        account = Account(name=name, role=role, clearance=clearance, source=source, created=now_iso())
        pw = hash_password(password) if password else None
        self.store.save_account(account, pw, self._entry(actor, "account_add", name, role=role,
                                                         clearance=clearance, source=source), new=True)
        return account

    def update(self, actor: Actor, name: str, role: str | None = None, clearance: str | None = None,
               disabled: bool | None = None) -> Account:
        """Change an account's role, clearance or whether it is disabled."""
        account = self._existing(name)
        was_admin = account.role == "admin" and not account.disabled
        changes: dict[str, Any] = {}
        if role is not None and role != account.role:
            account.role = changes["role"] = access.check_role(role)
        if clearance is not None and clearance != account.clearance:
            account.clearance = changes["clearance"] = access.check_level(clearance, self.ladder)
        if disabled is not None and disabled != account.disabled:
            account.disabled = changes["disabled"] = bool(disabled)
        if was_admin and (account.role != "admin" or account.disabled):
            self._keep_an_admin(account.name)
        self.store.save_account(account, None, self._entry(actor, "account_update", account.name, **changes))
        return account

    def set_password(self, actor: Actor, name: str, password: str) -> None:
        account = self._existing(name)
        if account.source != "local":
            raise UsageError(f"账户 {account.name} 通过统一身份认证登录，没有本地密码")
        check_password(password, account.name)
        self.store.save_account(account, hash_password(password),
                                self._entry(actor, "account_password", account.name))

    def _existing(self, name: str) -> Account:
        account = self.get(name)
        if account is None:
            raise UsageError(f"没有账户 {name}；现有账户见 yuanwen user list")
        return account

    def _keep_an_admin(self, changing: str) -> None:
        others = [a for a in self.list() if a.role == "admin" and not a.disabled
                  and a.name.lower() != changing.lower()]
        if not others:
            raise UsageError("不能停用或降级最后一个管理员账户：请先为另一账户授予管理员角色")

    # -- logins ------------------------------------------------------------------------------
    def login(self, name: str, password: str, client: str) -> Actor:
        """The actor for ``name`` when ``password`` is right; LoginError otherwise (the same
        message for a wrong name and a wrong password), and after too many failures."""
        name = (name or "").strip()
        since = now_iso(-timedelta(minutes=LOCK_MINUTES))
        fails = self.store.count_audit("login_failed", since, account=name)
        client_fails = self.store.count_audit("login_failed", since, client=client)
        found = self.store.account(name) if name else None
        if fails >= MAX_FAILURES or client_fails >= MAX_CLIENT_FAILURES:
            self._failed(name or "?", client, "locked")
            raise LoginError(f"登录失败次数过多，请 {LOCK_MINUTES} 分钟后再试，或请管理员协助")
        account, stored = found if found else (None, None)
        ok = False
        try:
            ok = _HASHER.verify(stored or _DUMMY_HASH, password or "") and stored is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or account is None or account.source != "local":
            self._failed(name or "?", client, "bad_password")
            raise LoginError("账户名或密码不正确")
        if account.disabled:
            self._failed(account.name, client, "disabled")
            raise LoginError(f"账户 {account.name} 已停用，请联系管理员")
        # hashes made with older, weaker parameters are renewed while the password is at hand
        rehash = hash_password(password) if _HASHER.check_needs_rehash(stored or "") else None
        return self._logged_in(account, client, "password", rehash)

    def login_oidc(self, claims: Mapping[str, Any], client: str, mapping: Mapping[str, Any]) -> Actor:
        """The actor for a user the office's identity provider vouched for (``claims`` of its
        ID token): the account is made on first login; the role and clearance come from claims
        as ``mapping`` says (see docs/deploy.md), and an admin may disable the account here."""
        name = oidc_name(claims, mapping)
        role = _claim_role(claims, mapping)
        clearance = _claim_clearance(claims, mapping, self.ladder)
        account = self.get(name)
        system = Actor(name=OIDC_SYSTEM, role="admin", clearance=self.ladder[-1], client=client, via="oidc")
        if account is None:
            account = self.add(system, name, role, None, clearance, source="oidc")
        elif account.source != "oidc":
            self._failed(name, client, "local_account")
            raise LoginError(f"账户 {name} 是本地账户，请用密码登录")
        elif account.disabled:
            self._failed(account.name, client, "disabled")
            raise LoginError(f"账户 {account.name} 已停用，请联系管理员")
        elif (account.role, account.clearance) != (role, clearance):
            account = self.update(system, name, role=role, clearance=clearance)
        return self._logged_in(account, client, "oidc", None)

    def _logged_in(self, account: Account, client: str, via: str, rehash: str | None) -> Actor:
        account.last_login = now_iso()
        actor = Actor(name=account.name, role=account.role, clearance=account.clearance,
                      client=client, via=via)
        self.store.save_account(account, rehash, self._entry(actor, "login", account.name, via=via))
        return actor

    def _failed(self, name: str, client: str, reason: str) -> None:
        self.store.append_audit([AuditEntry(ts=now_iso(), account=name[:64], client=client,
                                            action="login_failed", target=name[:64],
                                            detail={"reason": reason}, outcome="failed")])

    def current(self, actor: Actor) -> Actor | None:
        """``actor`` as the accounts say now (role or clearance changed since login), or None
        when the account is gone or disabled: checked on every page of the app."""
        if actor.local:
            return actor
        account = self.get(actor.name)
        if account is None or account.disabled:
            return None
        return Actor(name=account.name, role=account.role, clearance=account.clearance,
                     client=actor.client, via=actor.via)

    @staticmethod
    def _entry(actor: Actor, action: str, target: str, **detail: Any) -> AuditEntry:
        return AuditEntry(ts=now_iso(), account=actor.name, client=actor.client or "", action=action,
                          target=target, detail=_clip(detail))


def oidc_name(claims: Mapping[str, Any], mapping: Mapping[str, Any]) -> str:
    """The account name of an OIDC user: the claim ``mapping['name_claim']`` (default
    ``preferred_username``, then ``email``, then ``sub``)."""
    for key in (mapping.get("name_claim"), "preferred_username", "email", "sub"):
        value = claims.get(key) if key else None
        if isinstance(value, str) and value.strip():
            try:
                return check_name(value.strip()[:64])
            except UsageError as exc:
                raise LoginError(f"统一身份认证给出的用户名不可用：{exc}；请联系管理员") from exc
    raise LoginError("统一身份认证没有给出用户名，请联系管理员检查认证配置")


def _claim_values(claims: Mapping[str, Any], key: str) -> list[str]:
    value = claims.get(key)
    if isinstance(value, str):
        return [v for v in re.split(r"[\s,]+", value) if v]
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return []


def _claim_role(claims: Mapping[str, Any], mapping: Mapping[str, Any]) -> str:
    """The highest role the user's role claim maps to, else the default role."""
    # with a mapping, only the values it names count (an unrelated IdP group called "admin"
    # grants nothing); without one, the claim must hold the role names themselves
    table = dict(mapping.get("roles") or {})
    values = _claim_values(claims, mapping.get("role_claim", "roles"))
    got = {table[v] for v in values if v in table} if table else set(values)
    for role in reversed(access.ROLES):
        if role in got:
            return role
    return access.check_role(mapping.get("default_role", "reader"))


def _claim_clearance(claims: Mapping[str, Any], mapping: Mapping[str, Any], ladder: list[str]) -> str:
    """The highest level of the ladder the clearance claim names, else the default clearance."""
    key = mapping.get("clearance_claim", "clearance")
    got = [v for v in _claim_values(claims, key) if v in ladder]
    if got:
        return max(got, key=ladder.index)
    default = mapping.get("default_clearance", access.PUBLIC)
    return default if default in ladder else access.PUBLIC


def _clip(detail: dict[str, Any]) -> dict[str, Any]:
    """Audit details, with long strings cut (a pasted quote can be long)."""
    return {k: (v[:500] if isinstance(v, str) else v) for k, v in detail.items() if v is not None}


def audit_table(entries: Sequence[AuditEntry]) -> list[list[str]]:
    """The audit lines as table rows (header first), as the CSV export writes them."""
    rows = [["时间（UTC）", "账户", "客户端地址", "操作", "对象", "结果", "详情"]]
    for e in entries:
        detail = "；".join(f"{k}={v}" for k, v in sorted(e.detail.items()))
        rows.append([e.ts, e.account, e.client, ACTION_LABELS.get(e.action, e.action), e.target,
                     {"ok": "成功", "denied": "拒绝", "failed": "失败"}.get(e.outcome, e.outcome), detail])
    return rows
