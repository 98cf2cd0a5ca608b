"""The approval web page: each pending request at ``/approvals/<id>``, answered by a person signed in through
Bitrix24 OAuth on their own portal (settings/oauth/index.md: ``/oauth/authorize/`` on the portal, the code
exchanged at the OAuth server, then ``user.current`` on ``client_endpoint`` says who they are).

Server-rendered HTML, no script, no build step; mountable in any ASGI app (extra ``web``: Starlette). The page
shows the request's rendering exactly as the terminal does. A form counts only with the signed-in person's
session and a token bound to that session and request; the answer then goes through the approval service
(approver, expiry, single use). Pages refuse to be framed (no hidden Approve button under another site's
click).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from html import escape
from typing import Any
from urllib.parse import urlencode, urlsplit

from bitrix24_agent_tools.approvals.service import ApprovalError, ApprovalService
from bitrix24_agent_tools.approvals.signin import SignInRefused, sign_in
from bitrix24_agent_tools.masking import get_logger, register_secret
from bitrix24_agent_tools.stores import Approval

log = get_logger(__name__)
SESSION = "b24_approver"
STATE = "b24_signin"
_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
}


class ApprovalPages:
    """The approval pages for one portal's application.

    ``portal_url`` — where people sign in (``https://<portal>``); ``client_id``/``client_secret`` — the
    application (its redirect URL in the portal's settings must be ``{public_url}/approvals/oauth/callback``);
    ``oauth_server`` — the token endpoint (``https://oauth.bitrix.info/oauth/token/``; the sandbox's own);
    ``secret`` signs sessions (give the same one to every process behind a load balancer); ``transport`` —
    an httpx transport for the token exchange and ``user.current`` (tests, the in-process sandbox).
    """

    def __init__(
        self,
        service: ApprovalService,
        *,
        portal_url: str,
        client_id: str,
        client_secret: str,
        oauth_server: str = "https://oauth.bitrix.info/oauth/token/",
        secret: str | None = None,
        session_ttl: float = 8 * 3600,
        transport: Any = None,
    ) -> None:
        self.service = service
        self.portal_url = portal_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        register_secret(client_secret)
        self.oauth_server = oauth_server
        self.secret = (secret or secrets.token_hex(32)).encode()
        self.session_ttl = session_ttl
        self.transport = transport

    # -- signed values --------------------------------------------------------------------------------------
    def _sign(self, payload: dict[str, Any]) -> str:
        raw = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()
        mac = hmac.new(self.secret, raw.encode(), hashlib.sha256).hexdigest()
        return f"{raw}.{mac}"

    def _unsign(self, value: str | None) -> dict[str, Any] | None:
        if not value or "." not in value:
            return None
        raw, mac = value.rsplit(".", 1)
        expected = hmac.new(self.secret, raw.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, expected):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(raw.encode()))
        except ValueError:
            return None
        if not isinstance(payload, dict) or float(payload.get("exp", 0)) < time.time():
            return None
        return payload

    def _form_token(self, session: dict[str, Any], approval_id: str) -> str:
        return hmac.new(
            self.secret, f"form|{session['sid']}|{approval_id}".encode(), hashlib.sha256
        ).hexdigest()

    # -- the app --------------------------------------------------------------------------------------------
    def asgi_app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.routing import Route

        return Starlette(
            routes=[
                Route("/approvals/oauth/callback", self._callback, methods=["GET"]),
                Route("/approvals/{approval_id}", self._page, methods=["GET"]),
                Route("/approvals/{approval_id}", self._post, methods=["POST"]),
                Route("/approvals/{approval_id}/status", self._status, methods=["GET"]),
            ]
        )

    def _session(self, request: Any) -> dict[str, Any] | None:
        return self._unsign(request.cookies.get(SESSION))

    def _html(self, title: str, body: str, status: int = 200) -> Any:
        from starlette.responses import HTMLResponse

        page = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>{body}</main></body></html>"
        )
        return HTMLResponse(page, status_code=status, headers=_HEADERS)

    async def _sign_in(self, request: Any, next_path: str) -> Any:
        from starlette.responses import RedirectResponse

        nonce = secrets.token_urlsafe(24)
        state = self._sign({"n": nonce, "next": next_path, "exp": time.time() + 600})
        target = f"{self.portal_url}/oauth/authorize/?" + urlencode(
            {"client_id": self.client_id, "state": state}
        )
        response = RedirectResponse(target, status_code=303, headers=_HEADERS)
        response.set_cookie(STATE, nonce, max_age=600, httponly=True, samesite="lax", secure=_https(request))
        return response

    async def _callback(self, request: Any) -> Any:
        """settings/oauth/index.md, step 2: the code (30 s) for tokens at the OAuth server; then who signed
        in, from the portal itself (``user.current``)."""
        from starlette.responses import RedirectResponse

        state = self._unsign(request.query_params.get("state"))
        nonce = request.cookies.get(STATE)
        if state is None or not nonce or not hmac.compare_digest(str(state.get("n")), nonce):
            return self._html(
                "Sign-in failed", "<h1>Sign-in failed</h1><p>Start again from the link.</p>", 400
            )
        try:
            signed = await sign_in(
                request.query_params.get("code", ""),
                oauth_server=self.oauth_server,
                client_id=self.client_id,
                client_secret=self.client_secret,
                transport=self.transport,
            )
        except SignInRefused as exc:
            log.warning("approval sign-in refused: %s", exc)
            return self._html(
                "Sign-in failed", "<h1>Sign-in failed</h1><p>The portal did not confirm it.</p>", 403
            )
        user, tokens, endpoint = signed.user_id, signed.tokens, signed.endpoint
        session = {
            "sid": secrets.token_hex(16),
            "u": user,
            "t": urlsplit(endpoint).netloc,
            "m": str(tokens.get("member_id") or ""),
            "exp": time.time() + self.session_ttl,
        }
        next_path = str(state.get("next") or "/")
        if not next_path.startswith("/approvals/"):
            next_path = "/"
        response = RedirectResponse(next_path, status_code=303, headers=_HEADERS)
        response.set_cookie(
            SESSION, self._sign(session), max_age=int(self.session_ttl), httponly=True, samesite="lax",
            secure=_https(request),
        )  # fmt: skip
        response.delete_cookie(STATE)
        return response

    def _approval(self, request: Any, session: dict[str, Any]) -> Approval | None:
        return self.service.get(str(request.path_params["approval_id"]), tenant=session["t"])

    async def _page(self, request: Any) -> Any:
        session = self._session(request)
        if session is None:
            return await self._sign_in(request, request.url.path)
        approval = self._approval(request, session)
        if approval is None:
            return self._html("Not found", "<h1>No such request</h1><p>Nothing to answer here.</p>", 404)
        return self._html(f"Approve {approval.method}?", self._body(approval, session, request))

    async def _status(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        session = self._session(request)
        approval = self._approval(request, session) if session else None
        if approval is None:
            return JSONResponse({"error": "not found"}, status_code=404, headers=_HEADERS)
        state = "expired" if approval.expired(self.service.clock()) else approval.state
        return JSONResponse({"state": state, "answer": approval.answer}, headers=_HEADERS)

    async def _post(self, request: Any) -> Any:
        from starlette.responses import RedirectResponse

        session = self._session(request)
        if session is None:
            return self._html("Sign in first", "<h1>Sign in first</h1>", 403)
        approval = self._approval(request, session)
        if approval is None:
            return self._html("Not found", "<h1>No such request</h1>", 404)
        form = await request.form()
        if not hmac.compare_digest(str(form.get("token") or ""), self._form_token(session, approval.id)):
            return self._html("Refused", "<h1>Refused</h1><p>The form is not from this page.</p>", 403)
        decision = str(form.get("decision") or "")
        edit: dict[str, Any] | None = None
        if decision == "edit":
            try:
                edit = json.loads(str(form.get("fields") or ""))
            except ValueError:
                edit = None
            if not isinstance(edit, dict) or not edit:
                body = self._body(
                    approval, session, request, error="The changed fields must be a JSON object."
                )
                return self._html("Edit refused", body, 400)
        try:
            self.service.answer(
                approval.id,
                decision if decision in ("approve", "reject", "edit") else "reject",  # type: ignore[arg-type]
                user=session["u"],
                channel="web",
                tenant=session["t"],
                reason=str(form.get("reason") or "rejected on the approval page")
                if decision == "reject"
                else "",
                edit=edit,
            )
        except ApprovalError as exc:
            return self._html("Not recorded", self._body(approval, session, request, error=str(exc)), 409)
        return RedirectResponse(request.url.path, status_code=303, headers=_HEADERS)

    # -- the page -------------------------------------------------------------------------------------------
    def _body(self, approval: Approval, session: dict[str, Any], request: Any, error: str = "") -> str:
        now = self.service.clock()
        until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(approval.expires_at))
        docs = f' · <a href="{escape(approval.doc)}">docs</a>' if approval.doc.startswith("https://") else ""
        parts = [
            f"<h1>Approve this {escape(approval.risk)} call?</h1>",
            f"<p><strong>{escape(approval.method)}</strong> on portal {escape(approval.tenant)} · tool "
            f"{escape(approval.tool)}{docs}</p>",
            '<h2 id="what">What it will do</h2>',
            f'<pre aria-labelledby="what">{escape(approval.summary)}</pre>',
        ]  # fmt: skip
        if approval.flags:
            parts.append(
                "<h2>Check</h2><ul>" + "".join(f"<li>{escape(f)}</li>" for f in approval.flags) + "</ul>"
            )
        if error:
            parts.append(f'<p role="alert" class="error">{escape(error)}</p>')
        who = ", ".join(f"user {escape(u)}" for u in approval.approvers)
        if approval.state != "pending" or approval.expired(now):
            state = (
                "expired — nothing was written"
                if approval.expired(now)
                else _OUTCOME.get(str(approval.answer), str(approval.state))
            )
            by = (
                f" by user {escape(str(approval.answered_by))} ({escape(str(approval.channel))})"
                if approval.answered_by
                else ""
            )
            parts.append(f'<p role="status" class="done">This request was {escape(state)}{by}.</p>')
            return "".join(parts)
        if session["u"] not in approval.approvers:
            parts.append(f'<p role="status">You are signed in as user {escape(session["u"])}; only {who} may '
                         "answer this request.</p>")  # fmt: skip
            return "".join(parts)
        token = self._form_token(session, approval.id)
        action = escape(request.url.path)
        hidden = f'<input type="hidden" name="token" value="{token}">'
        example = escape(
            json.dumps({k: "…" for k in approval.fields[:2]} or {"TITLE": "…"}, ensure_ascii=False)
        )
        parts.append(
            f"<p>Signed in as user {escape(session['u'])}. Answer by {until}.</p>"
            f'<form method="post" action="{action}" class="answer">{hidden}'
            '<button type="submit" name="decision" value="approve" class="approve">Approve</button></form>'
            f'<form method="post" action="{action}" class="answer">{hidden}'
            '<label for="reason">Reason (optional, shown to the agent)</label>'
            '<input id="reason" name="reason" type="text" maxlength="500">'
            '<button type="submit" name="decision" value="reject" class="reject">Reject</button></form>'
            f'<form method="post" action="{action}" class="answer">{hidden}'
            f'<label for="fields">Changed fields as JSON (e.g. {example}); you will be asked again</label>'
            '<textarea id="fields" name="fields" rows="4"></textarea>'
            '<button type="submit" name="decision" value="edit">Edit</button></form>'
        )
        return "".join(parts)


_OUTCOME = {
    "approved": "approved",
    "rejected": "rejected",
    "edited": "edited (the changed call is asked again)",
}
_CSS = (
    "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#111}"
    "main{max-width:60rem;margin:2rem auto;padding:1rem 2rem;background:#fff;border-radius:8px}"
    "pre{white-space:pre-wrap;word-break:break-word;background:#f0f2f5;padding:1rem;border-radius:6px}"
    "form.answer{margin:1rem 0;display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}"
    "label{width:100%}input,textarea{font:inherit;width:100%;max-width:40rem}"
    "button{font:inherit;padding:.5rem 1.25rem;border-radius:6px;border:1px solid #555;cursor:pointer}"
    "button:focus,input:focus,textarea:focus{outline:3px solid #1a5fb4;outline-offset:2px}"
    ".approve{background:#1a7f37;color:#fff}.reject{background:#b42318;color:#fff}"
    ".error{color:#b42318;font-weight:600}.done{font-weight:600}"
)


def _https(request: Any) -> bool:
    return str(request.url.scheme) == "https"
