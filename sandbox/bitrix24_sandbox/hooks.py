"""What the emulator tells the outside world, without importing it: the secrets it makes (webhook codes,
client secrets, tokens), so a host that masks secrets in logs can learn them (the toolkit registers its
masking here, in ``bitrix24_sandbox``). The emulator masks them in its own reprs too."""

from __future__ import annotations

from collections.abc import Callable, Iterable

__all__ = ["SECRET_HOOKS", "mask", "share_secrets"]

SECRET_HOOKS: list[Callable[[list[str]], None]] = []
_SECRETS: set[str] = set()


def share_secrets(*values: str | None) -> None:
    """Record secrets the portal made and pass them to every hook."""
    fresh = [str(v) for v in values if v and len(str(v)) >= 6]
    _SECRETS.update(fresh)
    for hook in list(SECRET_HOOKS):
        hook(fresh)


def mask(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every recorded secret replaced by ``***`` (longest first)."""
    for secret in sorted(secrets if secrets is not None else _SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
