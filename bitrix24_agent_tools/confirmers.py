"""Ready-made confirmation callbacks: terminal prompt, notebook prompt, allow/deny lists, deferred plans."""

from __future__ import annotations

import fnmatch
import json
import sys
from collections.abc import Callable, Iterable

from bitrix24_agent_tools.guard import ConfirmationRequest, Decision


class AutoConfirmer:
    """Approve calls whose method matches ``approve`` patterns, reject ``deny`` ones, and decide the rest by
    ``default``.

    For tests and scripted runs. Every decision is recorded in ``seen`` so a test can assert what was asked.
    """

    def __init__(
        self,
        approve: Iterable[str] = ("*",),
        deny: Iterable[str] = (),
        *,
        default: bool = False,
        destructive: bool = False,
        by: str = "auto",
    ) -> None:
        self.approve_patterns = tuple(approve)
        self.deny_patterns = tuple(deny)
        self.default = default
        self.destructive = destructive
        self.by = by
        self.seen: list[ConfirmationRequest] = []

    def __call__(self, request: ConfirmationRequest) -> Decision:
        self.seen.append(request)
        method = request.method.lower()
        for name in (method, *_batch_methods(request)):
            if any(fnmatch.fnmatchcase(name, p.lower()) for p in self.deny_patterns):
                return Decision.reject(f"{name} is on the deny list", by=self.by)
        if request.risk == "destructive" and not self.destructive:
            return Decision.reject("destructive calls are not auto-approved", by=self.by)
        names = _batch_methods(request) or [method]  # a batch is approved only if every command is
        if all(any(fnmatch.fnmatchcase(n, p.lower()) for p in self.approve_patterns) for n in names):
            return Decision.approve(by=self.by)
        return (
            Decision.approve(by=self.by)
            if self.default
            else Decision.reject("not on the approve list", by=self.by)
        )


def _batch_methods(request: ConfirmationRequest) -> list[str]:
    """The methods of a batch's commands (any that cannot be read is ``?``, which no approve pattern but
    ``*`` matches)."""
    if request.method.lower() != "batch":
        return []
    from bitrix24_agent_tools.guard.canonical import lenient

    return [c.method for c in lenient("batch", request.params).commands] or ["?"]


def approve_all(request: ConfirmationRequest) -> Decision:
    """Approve every write (not destructive ones). Only for sandboxes and tests."""
    if request.risk == "destructive":
        return Decision.reject("destructive calls need a person")
    return Decision.approve(by="approve_all")


def deny_all(request: ConfirmationRequest) -> Decision:
    return Decision.reject("writes are disabled in this session")


class TerminalConfirmer:
    """Ask a person at the terminal: y = approve, n = reject (with an optional reason), e = edit fields as
    JSON."""

    def __init__(
        self,
        ask: Callable[[str], str] = input,
        show: Callable[[str], None] | None = None,
        by: str = "terminal",
    ) -> None:
        self.ask = ask
        self.show = show or (lambda text: print(text, file=sys.stderr))
        self.by = by

    def __call__(self, request: ConfirmationRequest) -> Decision:
        self.show(
            f"\n[{request.risk.upper()}] {request.summary}\n  tool {request.tool} · method {request.method} "
            f"· portal {request.tenant}" + (f" · docs {request.doc}" if request.doc else "")
        )
        try:
            answer = self.ask("Approve? [y]es / [n]o / [e]dit: ").strip().lower()
        except EOFError:
            return Decision.reject("no answer (stdin closed)", by=self.by)
        if answer in ("y", "yes", "да", "д"):
            return Decision.approve(by=self.by)
        if answer in ("e", "edit"):
            raw = self.ask('New fields as JSON (e.g. {"OPPORTUNITY": 5000}): ')
            try:
                fields = json.loads(raw)
            except ValueError:
                return Decision.reject("edit was not valid JSON", by=self.by)
            if not isinstance(fields, dict):
                return Decision.reject("edit must be a JSON object", by=self.by)
            # Keys as shown (TITLE or fields.TITLE, any case): the guard applies them through the method's
            # contract, refuses a key that matches nothing, and shows the edited call here again.
            return Decision.edit(fields, by=self.by)
        reason = self.ask("Reason (optional): ").strip() if answer in ("n", "no", "нет") else ""
        return Decision.reject(reason or "declined at the terminal", by=self.by)


class NotebookConfirmer(TerminalConfirmer):
    """The terminal prompt, rendered for Jupyter (input() works in notebooks; the summary is shown as
    Markdown)."""

    def __init__(self, ask: Callable[[str], str] = input, by: str = "notebook") -> None:
        def show(text: str) -> None:
            try:
                from IPython.display import Markdown, display

                display(Markdown("**Confirm:** " + text.strip().replace("\n", "  \n")))  # type: ignore[no-untyped-call]
            except ImportError:
                print(text)

        super().__init__(ask=ask, show=show, by=by)


class DeferredConfirmer:
    """Never runs a write now: the guard stores it as a plan and the model gets the plan id (two-phase
    mode)."""

    def __call__(self, request: ConfirmationRequest) -> Decision:
        return Decision.defer(by="deferred")
