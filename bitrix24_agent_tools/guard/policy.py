"""Policies: which risks may run at all, and which methods never or only."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from bitrix24_agent_tools.risk import Risk


@dataclass(frozen=True)
class Policy:
    """Which risks may run at all. Destructive calls need a policy that allows them *and* a person's yes."""

    name: str
    allow_write: bool = False
    allow_destructive: bool = False
    deny: tuple[str, ...] = ()  # method patterns never allowed
    only: tuple[str, ...] = ()  # when set, only methods matching one of these may run at all
    destructive: tuple[str, ...] = ()  # method patterns treated as destructive (e.g. a template that deletes)

    @classmethod
    def read_only(cls) -> Policy:
        return cls("read_only")

    @classmethod
    def writer(cls) -> Policy:
        return cls("writer", allow_write=True)

    @classmethod
    def admin(cls) -> Policy:
        return cls("admin", allow_write=True, allow_destructive=True)

    def permits(self, risk: Risk) -> bool:
        return (
            risk == "read"
            or (risk == "write" and self.allow_write)
            or (risk == "destructive" and self.allow_destructive)
        )

    def denies(self, method: str) -> bool:
        """Is the (canonical) method outside ``only`` or on the deny list?"""
        if self.only and not any(fnmatch.fnmatchcase(method, p.strip().lower()) for p in self.only):
            return True
        return any(fnmatch.fnmatchcase(method, p.strip().lower()) for p in self.deny)

    def marks_destructive(self, method: str) -> bool:
        return any(fnmatch.fnmatchcase(method, p.strip().lower()) for p in self.destructive)
