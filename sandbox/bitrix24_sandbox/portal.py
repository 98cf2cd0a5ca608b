"""The sandbox portal: state, auth, limits, faults and the request router that answers like a real
Bitrix24."""

from __future__ import annotations

import contextlib
import json
import random
import re
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from bitrix24_sandbox import data
from bitrix24_sandbox.credentials import Credentials
from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.limits import PLANS, CostModel, Faults, Limits
from bitrix24_sandbox.methods import METHODS, Listing
from bitrix24_sandbox.query import KeyCache, decode_body, parse_php_query
from bitrix24_sandbox.store import Store
from bitrix24_sandbox.types import Caller, RequestRecord, SandboxApp

V3_PREFIX = "BITRIX_REST_V3_EXCEPTION_"


class DroppedConnection(Exception):
    """The transport closes the connection without an answer."""


class Portal:
    """An in-memory Bitrix24 portal. Deterministic for a seed; served in-process or on loopback."""

    def __init__(
        self,
        seed: int = 0,
        *,
        deals: int = 30,
        leads: int = 12,
        contacts: int = 15,
        companies: int = 8,
        tasks: int = 10,
        users: int = 6,
        domain: str = "sandbox.bitrix24.test",
        rate_limit: str | tuple[float, int] | None = None,
        operating_limit: float | None = None,
        cost_model: CostModel | None = None,
        persist: str | Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        webhook_code: str | None = None,
    ) -> None:
        self.domain = domain
        self.clock = clock
        self.started_at = clock()
        # Envelopes carry wall-clock (unix) times like a real portal; a test's fake clock is taken as wall
        # time.
        self._wall_offset = time.time() - clock() if clock is time.monotonic else 0.0
        self.download_secret = secrets.token_bytes(16)  # signs Drive download URLs
        self.lock = threading.RLock()  # the portal's bookkeeping: admission, logs, counters, tokens
        self.state_lock = ReadWriteLock()  # the data: reads share it, writes hold it alone
        self.key_cache: KeyCache = {}  # each store's ids, listed once per change (query.id_window)
        self.member_id = f"sbx{random.Random(seed).getrandbits(64):016x}"
        self.persist = Path(persist) if persist else None
        if self.persist and self.persist.exists():
            self.state, self._ids = self._load(self.persist)
        else:
            self.state = data.seed_state(
                seed,
                users=max(1, users),
                deals=deals,
                leads=leads,
                contacts=contacts,
                companies=companies,
                tasks=tasks,
            )
            self._ids = {
                k: max(v) if v else 0
                for k, v in self.state.items()
                if isinstance(v, dict) and all(isinstance(i, int) for i in v)
            }
        self.smart_types: dict[int, str] = {1030: "Projects"}
        # Webhooks, applications, tokens and authorization codes (credentials.py).
        self.credentials = Credentials(webhook_code or f"sbx{secrets.token_hex(8)}", clock)
        self.apps = self.credentials.apps
        self.events: Any = None
        self.public_url: str | None = None
        # What methods see of the portal (store.py): its data and a method's services, not the portal.
        self.store = Store(
            self.state,
            self._ids,
            clock=clock,
            started_at=self.started_at,
            wall=self.wall,
            emit=self.emit,
            charge=self.charge,
            base_url=lambda: self.base_url,
            download_secret=self.download_secret,
            apps=self.apps,
            events=None,
            smart_types=self.smart_types,
            key_cache=self.key_cache,
        )
        from bitrix24_sandbox.methods import normalize_multifields

        for kind in (
            "lead",
            "contact",
            "company",
            "deal",
        ):  # stored in the portal's shape from the start: a read
            for record in self.state.get(kind, {}).values():  # never changes state
                normalize_multifields(self.store, record)
        self.extended_offline_mode = True
        self.requests: list[RequestRecord] = []
        self._hooks: list[Callable[[RequestRecord], None]] = []
        self.faults = Faults()
        # The plan's leaky bucket, each method's operating budget and the cost model (limits.py).
        self.limits = Limits(
            PLANS[rate_limit] if isinstance(rate_limit, str) else rate_limit,
            operating_limit,
            cost_model,
            clock,
        )
        self.rejected: dict[str, int] = defaultdict(int)
        self.v3_replays: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}  # REST 3.0 Idempotency-Key replays
        self._charge = threading.local()
        try:
            from bitrix24_sandbox.events import EventHub
        except ImportError:  # the events module is optional for a bare portal
            pass
        else:
            self.events = EventHub(self)
            self.store.events = self.events

    # --- state helpers
    # ---------------------------------------------------------------------------------------
    def next_id(self, kind: str) -> int:
        return self.store.next_id(kind)

    def entity(self, kind: str, entity_id: int) -> dict[str, Any] | None:
        record = self.state[kind].get(int(entity_id))
        return dict(record) if record is not None else None

    def entities(self, kind: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.state[kind].values()]

    def save(self, path: str | Path | None = None) -> None:
        target = Path(path) if path else self.persist
        if target is None:
            raise ValueError("no persistence path given")
        payload = {
            "ids": self._ids,
            "state": {
                k: {str(i): r for i, r in v.items()} for k, v in self.state.items() if k != "smart_item"
            },
        }
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(payload, ensure_ascii=False))
        tmp.replace(target)

    @staticmethod
    def _load(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
        payload = json.loads(path.read_text())
        state = {
            k: {(int(i) if i.isdigit() else i): r for i, r in v.items()} for k, v in payload["state"].items()
        }
        state.setdefault("smart_item", {})
        return state, {k: int(v) for k, v in payload["ids"].items()}

    def emit(self, event: str, data_: dict[str, Any], params: dict[str, Any] | None = None) -> None:
        if self.events is not None:
            connector = (params or {}).get("auth_connector")
            self.events.emit(
                event, data_, caller=getattr(self._charge, "caller", None), auth_connector=connector
            )

    # --- credentials
    # -----------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """Where clients reach this portal: the loopback server's URL while served, else
        ``https://<domain>``."""
        return self.public_url or f"https://{self.domain}"

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/rest/1/{self.credentials.admin_code}/"

    @property
    def webhook_code(self) -> str:
        return self.credentials.admin_code

    def add_webhook(self, user_id: int = 1, scopes: set[str] | frozenset[str] | None = None) -> str:
        """Another inbound webhook (a user's, with these scopes; all by default); its URL."""
        code = self.credentials.add_webhook(user_id, scopes)
        return f"{self.base_url}/rest/{user_id}/{code}/"

    def register_app(
        self, scopes: set[str] | None = None, access_lifetime: float = 3600.0, redirect_uri: str = ""
    ) -> SandboxApp:
        """A local application (client id and secret, application token); install it with install_app."""
        return self.credentials.register_app(scopes, access_lifetime, redirect_uri)

    @property
    def tokens(self) -> dict[str, tuple[str, int, float]]:
        return self.credentials.tokens

    @property
    def refresh_tokens(self) -> dict[str, tuple[str, int]]:
        return self.credentials.refresh_tokens

    @property
    def signed_in(self) -> int | None:
        """Who is signed in at the portal's /oauth/authorize/ (None: the sign-in form asks)."""
        return self.credentials.signed_in

    @signed_in.setter
    def signed_in(self, user_id: int | None) -> None:
        self.credentials.signed_in = user_id

    def issue_tokens(self, app: SandboxApp, user_id: int = 1) -> dict[str, Any]:
        with self.lock:
            access, refresh = self.credentials.issue(app, user_id)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": int(app.access_lifetime),
            "expires": int(time.time() + app.access_lifetime),
            "scope": ",".join(sorted(app.scopes)),
            # the domain clients reach this portal at (the loopback server's host:port while served)
            "domain": urlsplit(self.base_url).netloc,
            "server_endpoint": f"{self.base_url}/oauth/rest/",
            "client_endpoint": f"{self.base_url}/rest/",
            "member_id": self.member_id,
            "user_id": user_id,
            "status": "L",
            "application_token": app.application_token,
        }

    def install_app(self, app: SandboxApp, user_id: int = 1) -> dict[str, Any]:
        tokens = self.issue_tokens(app, user_id)
        if self.events is not None:
            self.events.emit("ONAPPINSTALL", {"VERSION": "1", "LANGUAGE_ID": "en"}, app_id=app.client_id)
        return tokens

    @property
    def oauth_server(self) -> str:
        return f"{self.base_url}/oauth/token/"

    def app_credentials(self, app: SandboxApp, tokens: dict[str, Any]) -> dict[str, str]:
        """What an installed ``app`` keeps to call this portal: its install's tokens and endpoints and its own
        id and secret, by the names the OAuth docs give them (oauth/index.md) - any client's OAuth settings
        are built from these."""
        return {
            "domain": self.domain,
            "access_token": str(tokens["access_token"]),
            "refresh_token": str(tokens["refresh_token"]),
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "oauth_server": self.oauth_server,
            "client_endpoint": str(tokens["client_endpoint"]),
        }

    def expire_all_tokens(self) -> None:
        with self.lock:
            self.credentials.expire_all()

    def on_request(self, hook: Callable[[RequestRecord], None]) -> None:
        self._hooks.append(hook)

    # --- limits (limits.py)
    # ----------------------------------------------------------------------------------------------
    def reset_operating(self) -> None:
        """Forget every method's operating time (benchmarks give each client a fresh budget)."""
        self.limits.reset_operating()

    def _operating_check(self, key: tuple[str, str]) -> tuple[float, float | None]:
        return self.limits.operating(key)

    @property
    def rate(self) -> tuple[float, int] | None:
        return self.limits.rate

    @property
    def operating_limit(self) -> float | None:
        return self.limits.operating_limit

    @property
    def cost_model(self) -> CostModel | None:
        return self.limits.cost_model

    @cost_model.setter
    def cost_model(self, model: CostModel | None) -> None:
        self.limits.cost_model = model

    @property
    def _bucket(self) -> dict[str, tuple[float, float]]:
        return self.limits.bucket

    def charge(self, *, items: int = 0, counted: bool = False, offset: Any = 0) -> None:
        """List handlers report their work; the cost model turns it into processing time."""
        try:
            off = max(0, int(offset or 0))
        except (TypeError, ValueError):
            off = 0
        if self.cost_model is not None:
            self._charge.seconds = getattr(self._charge, "seconds", 0.0) + self.cost_model.seconds(
                items, counted, off
            )

    # --- request handling
    # ------------------------------------------------------------------------------------
    def handle(
        self, http_method: str, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes, float]:
        """Answer one HTTP request: (status, headers, body, seconds to delay the answer)."""
        parts = urlsplit(url)
        path = unquote(parts.path)
        if path.startswith("/oauth/token"):
            return self._oauth_token(parts.query, body, headers)
        if path.startswith("/oauth/authorize"):
            if http_method.upper() == "POST":  # the sign-in form below, submitted
                return self._oauth_authorize(body.decode("utf-8", "replace"))
            return self._oauth_authorize(parts.query)
        if path == "/rest/download.json":  # a Drive file's DOWNLOAD_URL (disk/file/disk-file-get.md)
            from bitrix24_sandbox.disk import download

            with self.state_lock.reading():
                data = download(self.store, dict(parse_qsl(parts.query)).get("token", ""))
            if data is None:
                return 404, {"content-type": "text/plain"}, b"Not found", 0.0
            return 200, {"content-type": "application/octet-stream"}, data, 0.0
        api = "v3" if path.startswith("/rest/api/") else "v2"
        segs = [s for s in path.split("/") if s][2 if api == "v3" else 1 :]
        content_type = headers.get("content-type", "")
        record = RequestRecord(method="", api=api, auth_kind="none", at=self.clock(), path=_mask_path(path))
        self._charge.seconds = 0.0
        self._charge.began = time.perf_counter()
        try:
            if not segs:
                raise ApiError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
            method = segs[-1]
            if method.lower().endswith(".json"):
                method = method[:-5]
            record.method = method.lower()
            if api == "v3" and body and "json" not in content_type:
                raise ApiError(V3_PREFIX + "INVALIDJSONEXCEPTION", "REST 3.0 accepts JSON bodies only", 400)
            params, record.encoding = decode_body(body, content_type, "" if api == "v3" else parts.query)
            if api == "v3" and parts.query and not body:
                params = {}
            if api == "v2" and "__array__" in params:
                raise ApiError("INVALID_REQUEST", "the JSON body must be an object", 400)
            record.params = {k: v for k, v in params.items() if k != "auth"}
            drop_after = False
            with self.lock:  # admission: hooks, injected drops, auth, the rate limit, injected faults
                for hook in self._hooks:
                    hook(record)
                if self.faults.drops:
                    self.faults.drops -= 1
                    if not self.faults.drop_after_processing:
                        raise DroppedConnection()
                    drop_after = True
                caller = self._authenticate(segs, params, record)
                credential = caller.credential
                if not self.limits.admit(self.domain):
                    self.rejected["QUERY_LIMIT_EXCEEDED"] += 1
                    raise ApiError("QUERY_LIMIT_EXCEEDED", "Too many requests", 503)
                fault = self.faults.take(record.method, self.clock())
                if fault:
                    raise ApiError(fault[0], "injected fault", fault[1])
            self._charge.caller = caller
            # Reads run side by side, as on a portal; a write (or anything not known to be a read) runs alone.
            keyed = api == "v3" and "idempotency-key" in {k.lower() for k in headers}
            shared = not keyed and _reads_only(record.method, params)
            with self.state_lock.reading() if shared else self.state_lock.writing():
                if api == "v3":
                    from bitrix24_sandbox import v3

                    v3_params: Any = params.get("__array__", params)
                    status, payload, extra = v3.handle(self, record.method, v3_params, caller, headers, body)
                else:
                    payload = self._v2(record.method, params, caller, credential)
                    status, extra = 200, {}
            if drop_after:
                raise DroppedConnection()
        except ApiError as err:
            record.status, record.error = err.status, err.code
            self._log(record)
            body_out: dict[str, Any] = (
                {
                    "error": {
                        "code": err.code,
                        "message": err.description,
                        **({"validation": err.validation} if err.validation else {}),
                    }
                }
                if api == "v3"
                and err.code.startswith("BITRIX_REST_V3_")  # EXCEPTION_, REALISATION_EXCEPTION_
                else {"error": err.code, "error_description": err.description}
            )
            if err.time is not None:
                body_out["time"] = err.time
            return (
                err.status,
                {"content-type": "application/json"},
                json.dumps(body_out).encode(),
                self.faults.delay,
            )
        record.status = status
        self._log(record)
        encoded = json.dumps(payload, ensure_ascii=False).encode()
        # The cost model's processing time is what the request costs a portal; the sandbox's own work on it
        # (CPU, its lock) already took part of that time, so only the rest is slept — the client sees the
        # modelled time, not the model plus the emulation.
        modelled = getattr(self._charge, "seconds", 0.0)
        spent = time.perf_counter() - getattr(self._charge, "began", time.perf_counter())
        delay = (
            self.faults.delay
            + (self.cost_model.round_trip if self.cost_model else 0.0)
            + max(0.0, modelled - spent)
        )
        return status, {"content-type": "application/json; charset=utf-8", **extra}, encoded, delay

    def _log(self, record: RequestRecord) -> None:
        with self.lock:
            self.requests.append(record)

    def _authenticate(self, segs: list[str], params: dict[str, Any], record: RequestRecord) -> Caller:
        return self.credentials.authenticate(segs, params, record, self.state["user"])

    def wall(self, moment: float | None = None) -> float:
        """A portal-clock moment as a unix timestamp."""
        return (self.clock() if moment is None else moment) + self._wall_offset

    def _envelope_time(
        self, started: float, method: str, caller: Caller, charged: float | None = None
    ) -> dict[str, Any]:
        """A ``time`` block; ``charged`` is the modelled processing of this call alone (a batch's command),
        else everything charged in this request."""
        finish = self.clock()
        used, reset_at = self._operating_check((_budget(caller), method))
        modelled = getattr(self._charge, "seconds", 0.0) if charged is None else charged
        processing = finish - started + modelled
        return {
            "start": self.wall(started),
            "finish": self.wall(finish),
            "duration": processing,
            "processing": processing,
            "date_start": _iso(self.wall(started)),
            "date_finish": _iso(self.wall(finish)),
            "operating_reset_at": self.wall(reset_at if reset_at is not None else finish),
            "operating": used,
        }

    def _run_method(self, method: str, params: dict[str, Any], caller: Caller) -> Any:
        if self.events is not None and self.events.handles(method):
            return self.events.call(method, params, caller)
        entry = METHODS.get(method)
        if entry is None:
            raise ApiError("ERROR_METHOD_NOT_FOUND", "Method not found!", 404)
        scope, handler = entry
        if scope != "basic" and scope not in caller.scopes:
            raise ApiError(
                "insufficient_scope",
                "The request requires higher privileges than provided by the webhook token",
                403,
            )
        # settings/performance/limits.md: `operating` is kept per method "separately for an application or a
        # webhook" — every user's token of one application shares its budget.
        budget = _budget(caller)
        if self.limits.operating_limit is not None:
            used, reset_at = self.limits.operating((budget, method))
            if used >= self.limits.operating_limit:
                with self.lock:
                    self.rejected["OPERATION_TIME_LIMIT"] += 1
                # UNVERIFIED: whether the 429 envelope carries `time`; we send operating_reset_at so clients
                # can wait.
                raise ApiError(
                    "OPERATION_TIME_LIMIT",
                    "Method is blocked due to operation time limit.",
                    429,
                    time={"operating": used, "operating_reset_at": self.wall(reset_at or self.clock() + 60)},
                )
        before = getattr(self._charge, "seconds", 0.0)
        result = handler(self.store, params, caller)
        cost = getattr(self._charge, "seconds", 0.0) - before
        self.limits.spend((budget, method), cost)
        return result

    def _v2(self, method: str, params: dict[str, Any], caller: Caller, credential: str) -> dict[str, Any]:
        started = self.clock()
        if method == "batch":
            return {
                "result": self._batch(params, caller),
                "time": self._envelope_time(started, method, caller),
            }
        result = self._run_method(method, params, caller)
        envelope: dict[str, Any] = {}
        if isinstance(result, Listing):
            envelope["result"] = result.result
            if result.next is not None:
                envelope["next"] = result.next
            if result.total is not None:
                envelope["total"] = result.total
        else:
            envelope["result"] = result
        envelope["time"] = self._envelope_time(started, method, caller)
        return envelope

    def _batch(self, params: dict[str, Any], caller: Caller) -> dict[str, Any]:
        """``batch`` as ``CRestProvider::methodsBatch`` runs it (rest_provider.php; protocol.md §5, §7).

        The batch's own keys are upper-cased (of two case variants the later wins); each command's method and
        query come from its string (``parse_url``); the method is tried lower-cased, then as written; the
        caller's auth replaces any in the command; sections are PHP arrays: a list while their keys are
        0..n-1, else a map.
        """
        upper: dict[str, Any] = {}
        for key, value in params.items():
            upper[str(key).upper()] = value
        halt = _php_bool(upper.get("HALT"))
        cmd = upper.get("CMD")
        if isinstance(cmd, list):
            items = [(str(i), c) for i, c in enumerate(cmd)]
        elif isinstance(cmd, dict):
            items = [(str(k), c) for k, c in cmd.items()]
        else:
            items = []
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        totals: dict[str, int] = {}
        nexts: dict[str, int] = {}
        times: dict[str, Any] = {}
        for index, (key, command) in enumerate(items):
            started = self.clock()
            charged_before = getattr(self._charge, "seconds", 0.0)
            try:
                if index >= 50:
                    raise ApiError("ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
                text = str(command).split("#", 1)[0]  # parse_url drops a fragment
                method, _, query = text.partition("?")
                method = method.lower()
                if method == "batch":
                    raise ApiError(
                        "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch usage", 405
                    )
                sub = _substitute(parse_php_query(query), results)
                for auth_key in [k for k in sub if k.lower() == "auth"]:
                    sub.pop(auth_key)
                out = self._run_method(method, sub, caller)
            except ApiError as err:
                errors[key] = {"error": err.code, "error_description": err.description}
                if halt:
                    break
                continue
            if isinstance(out, Listing):
                results[key] = out.result
                if out.total is not None:
                    totals[key] = out.total
                if out.next is not None:
                    nexts[key] = out.next
            else:
                results[key] = out
            # batch.md: result_time is each command's own time (its processing, not the batch's so far)
            own = getattr(self._charge, "seconds", 0.0) - charged_before
            times[key] = self._envelope_time(started, method, caller, charged=own)
        return {
            "result": _php_array(results),
            "result_error": _php_array(errors),
            "result_total": _php_array(totals),
            "result_next": _php_array(nexts),
            "result_time": _php_array(times),
        }

    def envelope_time(self, started: float, method: str, caller: Caller) -> dict[str, Any]:
        return self._envelope_time(started, method, caller)

    # --- OAuth server
    # ----------------------------------------------------------------------------------------
    def _oauth_authorize(self, query: str) -> tuple[int, dict[str, str], bytes, float]:
        args = dict(parse_qsl(query))
        app = self.apps.get(args.get("client_id", ""))
        if app is None:
            return (
                400,
                {"content-type": "application/json"},
                b'{"error":"invalid_client","error_description":"unknown client"}',
                0.0,
            )
        if "user_id" not in args:
            # settings/oauth/index.md: a person already signed in to the portal sees no form (``signed_in``,
            # default the admin); with ``signed_in = None`` the portal's sign-in form is shown — here, a form
            # to choose who signs in.
            if self.signed_in is None:
                return 200, {"content-type": "text/html; charset=utf-8"}, self._sign_in_page(args), 0.0
            args["user_id"] = str(self.signed_in)
        user_id = int(args["user_id"]) if str(args["user_id"]).isdigit() else 0
        if user_id not in self.state["user"]:
            return 400, {"content-type": "text/plain"}, b"unknown user", 0.0
        code = self.credentials.new_auth_code(app, user_id)
        # settings/oauth/index.md: the redirect carries code, state, domain, member_id, scope and
        # server_domain
        server_domain = urlsplit(self.oauth_server).netloc or "oauth.bitrix.info"
        back = app.redirect_uri or "https://app.example/callback"
        location = (
            f"{back}{'&' if '?' in back else '?'}code={code}&state={quote(args.get('state', ''))}"
            f"&domain={self.domain}"
            f"&member_id={self.member_id}&scope={','.join(sorted(app.scopes))}&server_domain={server_domain}"
        )
        return 302, {"location": location, "content-type": "text/plain"}, b"", 0.0

    def _sign_in_page(self, args: dict[str, str]) -> bytes:
        """The sandbox's stand-in for the portal's sign-in form: choose the user who signs in."""
        from html import escape

        options = "".join(
            f'<option value="{int(u["ID"])}">{escape(str(u.get("NAME", "")))} '
            f"{escape(str(u.get('LAST_NAME', '')))} (user {int(u['ID'])})</option>"
            for u in self.state["user"].values()
            if str(u.get("ACTIVE", True)).lower() not in ("false", "n")
        )
        hidden = "".join(
            f'<input type="hidden" name="{escape(k)}" value="{escape(args.get(k, ""))}">'
            for k in ("client_id", "state")
        )
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in to the sandbox portal'
            f'</title></head><body><main><h1>Sign in to {escape(self.domain)}</h1><form method="post">'
            f'{hidden}<label for="user">User</label> <select id="user" name="user_id">{options}</select> '
            '<button type="submit">Sign in</button></form></main></body></html>'
        ).encode()

    def _oauth_token(
        self, query: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes, float]:
        args = {**dict(parse_qsl(query)), **dict(parse_qsl(body.decode("utf-8", "replace")))}
        record = RequestRecord(
            method="oauth.token",
            api="oauth",
            auth_kind="oauth",
            at=self.clock(),
            params={"grant_type": args.get("grant_type")},
        )
        for hook in self._hooks:
            hook(record)

        def fail(code: str, text: str, status: int = 400) -> tuple[int, dict[str, str], bytes, float]:
            record.status, record.error = status, code
            self._log(record)
            return (
                status,
                {"content-type": "application/json"},
                json.dumps({"error": code, "error_description": text}).encode(),
                0.0,
            )

        app = self.apps.get(args.get("client_id", ""))
        if app is None or not secrets.compare_digest(app.client_secret, args.get("client_secret", "")):
            return fail("invalid_client", "Invalid client credentials", 401)
        with self.lock:
            grant = args.get("grant_type")
            if grant == "authorization_code":
                user = self.credentials.take_auth_code(args.get("code", ""), app)
                if user is None:
                    return fail("invalid_grant", "Invalid authorization code")
                tokens = self.issue_tokens(app, user)
            elif grant == "refresh_token":
                holder = self.credentials.take_refresh_token(args.get("refresh_token", ""), app)
                if holder is None:
                    return fail("invalid_grant", "Invalid refresh token")
                tokens = self.issue_tokens(app, holder)
            else:
                return fail("invalid_request", "unsupported grant_type")
        record.status = 200
        self._log(record)
        return 200, {"content-type": "application/json"}, json.dumps(tokens).encode(), 0.0

    # --- serving
    # ---------------------------------------------------------------------------------------------
    def transport(self) -> Any:
        from bitrix24_sandbox.server import SandboxTransport

        return SandboxTransport(self)

    def async_transport(self) -> Any:
        from bitrix24_sandbox.server import AsyncSandboxTransport

        return AsyncSandboxTransport(self)

    def serve(self, host: str = "127.0.0.1", port: int = 0, https: bool = False) -> Any:
        from bitrix24_sandbox.server import serve

        return serve(self, host=host, port=port, https=https)

    def __repr__(self) -> str:
        return f"Portal(domain={self.domain!r}, deals={len(self.state['deal'])})"


def _iso(unix: float) -> str:
    from datetime import datetime, timedelta, timezone

    return datetime.fromtimestamp(unix, timezone(timedelta(hours=3))).isoformat(timespec="seconds")


def _php_bool(value: Any) -> bool:
    """PHP's (bool) cast of a request value."""
    if isinstance(value, (dict, list)):
        return bool(value)
    return value not in (None, "", "0", 0, False)


def _php_array(section: dict[str, Any]) -> Any:
    """How PHP's json_encode writes an array: a JSON list when its keys are 0..n-1 in order, else an
    object."""
    if list(section) == [str(i) for i in range(len(section))]:
        return list(section.values())
    return section


def _mask_path(path: str) -> str:
    segs = path.split("/")
    if len(segs) > 3 and segs[2].isdigit():
        segs[3] = "***"
    if len(segs) > 4 and segs[2] == "api" and segs[3].isdigit():
        segs[4] = "***"
    return "/".join(segs)


def _substitute(value: Any, results: dict[str, Any]) -> Any:
    """Replace ``$result[key][path…]`` with an earlier command's result (protocol.md §5)."""
    if isinstance(value, dict):
        return {k: _substitute(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, results) for v in value]
    if isinstance(value, str) and value.startswith("$result["):
        import re

        parts = re.findall(r"\[([^\]]*)\]", value)
        if not parts or parts[0] not in results:
            return value
        current: Any = results[parts[0]]
        for part in parts[1:]:
            if isinstance(current, list) and part.isdigit() and int(part) < len(current):
                current = current[int(part)]
            elif isinstance(current, dict) and part in current:
                current = current[part]
            else:
                return ""
        return current
    return value


class ReadWriteLock:
    """Many readers or one writer; a waiting writer holds back new readers (no writer starves)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer: int | None = None
        self._waiting = 0

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        me = threading.get_ident()
        if self._writer == me:  # a writer's own nested read
            yield
            return
        with self._cond:
            while self._writer is not None or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        me = threading.get_ident()
        if self._writer == me:
            yield
            return
        with self._cond:
            self._waiting += 1
            while self._writer is not None or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writer = me
        try:
            yield
        finally:
            with self._cond:
                self._writer = None
                self._cond.notify_all()


# Verbs of methods that only read (a method the portal does not know answers an error and changes nothing).
_READ_VERBS = re.compile(
    r"(?:^|\.)(?:list|get|fields|getlist|getchildren|getfields|getstages|search|status|current|time|info|"
    r"text|tail|instances|findbycomm|scope|methods|profile|events|accessibility|getList|getStages)$",
    re.IGNORECASE,
)


def _reads_only(method: str, params: dict[str, Any]) -> bool:
    """Whether a request only reads, so it may run beside other reads (the sandbox's own scheduling: a method
    this portal implements whose last name part reads; a batch when every command does).
    ``event.offline.get`` reserves the rows it returns (and clears them unless ``clear`` is 0): a write. A
    method the portal does not implement runs alone, whatever its name."""
    name = method.lower()
    if name.startswith("event.offline."):
        return name == "event.offline.list"
    if name == "batch":
        cmd = next((v for k, v in params.items() if str(k).lower() == "cmd"), None)
        commands = list(cmd.values()) if isinstance(cmd, dict) else list(cmd) if isinstance(cmd, list) else []
        names = [str(c).split("?", 1)[0].strip() for c in commands]
        return bool(names) and all(n.lower() != "batch" and _reads_only(n, {}) for n in names)
    return name in METHODS and _READ_VERBS.search(name) is not None


def _budget(caller: Caller) -> str:
    """Whose operating budget a call spends (settings/performance/limits.md: per method, "separately for an
    application or a webhook"): an application's, whichever user's token it came with; else the webhook's."""
    return caller.app_id if caller.kind == "oauth" and caller.app_id else caller.credential
