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
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from bitrix24_sandbox import data
from bitrix24_sandbox.errors import ApiError
from bitrix24_sandbox.hooks import share_secrets
from bitrix24_sandbox.methods import METHODS, Listing
from bitrix24_sandbox.query import KeyCache, decode_body, parse_php_query
from bitrix24_sandbox.types import Caller, RequestRecord, SandboxApp

ALL_SCOPES = frozenset(
    {
        "crm",
        "task",
        "user",
        "department",
        "im",
        "imbot",
        "event",
        "basic",
        "disk",
        "bizproc",
        "sonet_group",
        "log",
        "telephony",
        "sale",
        "catalog",
        "landing",
        "calendar",
        "placement",
        "messageservice",
        "imopenlines",
        "mailservice",
        "lists",
        "booking",
        "timeman",
        "entity",
        "biconnector",
        "ai_admin",
        "userconsent",
        "sign.b2e",
        "documentgenerator",
    }
)
PLANS = {"standard": (2.0, 50), "enterprise": (5.0, 250)}
V3_PREFIX = "BITRIX_REST_V3_EXCEPTION_"


@dataclass
class CostModel:
    """Latency and processing cost per request (benchmarks): seconds are slept on the serving side."""

    round_trip: float = 0.0
    per_item: float = 0.0
    count_cost: float = 0.0
    per_offset: float = 0.0

    @classmethod
    def docs_example(cls) -> CostModel:
        """The docs' only measured example (settings/performance/huge-data.md, 2,387,743 items): a
        ``start=-1`` page of 50 took 0.0685 s of processing (0.0979 s in all), and a page that counted the
        total 49.9 s — about 0.0209 s per 1,000 rows counted. UNVERIFIED: the docs measure no offset cost; the
        offset term stays as in the default model."""
        return cls(
            round_trip=0.0979 - 0.0685, per_item=0.0685 / 50, count_cost=49.9 / 2387.743, per_offset=0.001
        )

    def seconds(self, items: int, counted: bool, offset: int) -> float:
        return (
            self.per_item * min(items, 50)
            + (self.count_cost * items / 1000 if counted else 0.0)
            + self.per_offset * offset / 1000
        )


@dataclass
class Faults:
    """Fault injection: scripted errors, random 5xx storms, dropped connections, slow answers."""

    _queue: deque[tuple[str, int, str | None]] = field(default_factory=deque)
    storm_probability: float = 0.0
    storm_code: str = "INTERNAL_SERVER_ERROR"
    storm_status: int = 500
    storm_until: float | None = None
    drops: int = 0
    drop_after_processing: bool = False
    delay: float = 0.0
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def fail_next(
        self, n: int, code: str = "INTERNAL_SERVER_ERROR", status: int = 500, method: str | None = None
    ) -> None:
        for _ in range(n):
            self._queue.append((code, status, method.lower() if method else None))

    def storm(
        self,
        probability: float,
        *,
        code: str = "INTERNAL_SERVER_ERROR",
        status: int = 500,
        until: float | None = None,
        seed: int = 7,
    ) -> None:
        self.storm_probability, self.storm_code, self.storm_status, self.storm_until = (
            probability,
            code,
            status,
            until,
        )
        self.rng = random.Random(seed)

    def drop_next(self, n: int, *, after_processing: bool = False) -> None:
        self.drops, self.drop_after_processing = n, after_processing

    def slow(self, seconds: float) -> None:
        self.delay = seconds

    def clear(self) -> None:
        self._queue.clear()
        self.storm_probability, self.drops, self.delay = 0.0, 0, 0.0

    def take(self, method: str, now: float) -> tuple[str, int] | None:
        for i, (code, status, only) in enumerate(self._queue):
            if only is None or only == method:
                del self._queue[i]
                return code, status
        storming = self.storm_probability and (self.storm_until is None or now < self.storm_until)
        if storming and self.rng.random() < self.storm_probability:
            return self.storm_code, self.storm_status
        return None


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
        self.signed_in: int | None = 1  # who is signed in at the portal's /oauth/authorize/ (None: ask)
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
        from bitrix24_sandbox.methods import normalize_multifields

        for kind in (
            "lead",
            "contact",
            "company",
            "deal",
        ):  # stored in the portal's shape from the start: a read
            for record in self.state.get(kind, {}).values():  # never changes state
                normalize_multifields(self, record)
        self.smart_types: dict[int, str] = {1030: "Projects"}
        self.webhooks: dict[str, tuple[int, frozenset[str]]] = {}
        code = webhook_code or f"sbx{secrets.token_hex(8)}"
        share_secrets(code)  # the sandbox's secrets are masked in every repr and log, like real ones
        self.webhooks[code] = (1, ALL_SCOPES)
        self._admin_code = code
        self.apps: dict[str, SandboxApp] = {}
        self.tokens: dict[str, tuple[str, int, float]] = {}  # access token → (client_id, user, expires_at)
        self.refresh_tokens: dict[str, tuple[str, int]] = {}  # refresh token → (client_id, user)
        self.auth_codes: dict[str, tuple[str, int, float]] = {}
        self.extended_offline_mode = True
        self.requests: list[RequestRecord] = []
        self._hooks: list[Callable[[RequestRecord], None]] = []
        self.faults = Faults()
        self.cost_model = cost_model
        self.rate = PLANS[rate_limit] if isinstance(rate_limit, str) else rate_limit
        self._bucket: dict[str, tuple[float, float]] = {}
        self.operating_limit = operating_limit
        self._operating: dict[tuple[str, str], deque[tuple[float, float]]] = defaultdict(deque)
        self._operating_total: dict[tuple[str, str], float] = {}
        self.rejected: dict[str, int] = defaultdict(int)
        self.v3_replays: dict[tuple[Any, ...], tuple[bytes, bytes]] = {}  # REST 3.0 Idempotency-Key replays
        self._charge = threading.local()
        self.events: Any = None
        self.public_url: str | None = None
        try:
            from bitrix24_sandbox.events import EventHub
        except ImportError:  # the events module is optional for a bare portal
            pass
        else:
            self.events = EventHub(self)

    # --- state helpers
    # ---------------------------------------------------------------------------------------
    def next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

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
        return f"{self.base_url}/rest/1/{self._admin_code}/"

    @property
    def webhook_code(self) -> str:
        return self._admin_code

    def add_webhook(self, user_id: int = 1, scopes: set[str] | frozenset[str] | None = None) -> str:
        code = f"sbx{secrets.token_hex(8)}"
        share_secrets(code)
        self.webhooks[code] = (user_id, frozenset(scopes) if scopes is not None else ALL_SCOPES)
        return f"{self.base_url}/rest/{user_id}/{code}/"

    def register_app(
        self, scopes: set[str] | None = None, access_lifetime: float = 3600.0, redirect_uri: str = ""
    ) -> SandboxApp:
        app = SandboxApp(
            client_id=f"local.{secrets.token_hex(6)}",
            client_secret=secrets.token_hex(16),
            application_token=secrets.token_hex(16),
            scopes=frozenset(scopes) if scopes else ALL_SCOPES,
            access_lifetime=access_lifetime,
            redirect_uri=redirect_uri,
        )
        share_secrets(app.client_secret, app.application_token)
        self.apps[app.client_id] = app
        return app

    def issue_tokens(self, app: SandboxApp, user_id: int = 1) -> dict[str, Any]:
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        share_secrets(access, refresh)
        with self.lock:
            self.tokens[access] = (app.client_id, user_id, self.clock() + app.access_lifetime)
            self.refresh_tokens[refresh] = (app.client_id, user_id)
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
            self.tokens = {k: (c, u, self.clock() - 1) for k, (c, u, _) in self.tokens.items()}

    def on_request(self, hook: Callable[[RequestRecord], None]) -> None:
        self._hooks.append(hook)

    # --- limits
    # ----------------------------------------------------------------------------------------------
    def _rate_ok(self, source: str) -> bool:
        if self.rate is None:
            return True
        rate, burst = self.rate
        now = self.clock()
        level, last = self._bucket.get(source, (0.0, now))
        level = max(0.0, level - (now - last) * rate)
        if level + 1 > burst + 1e-9:
            self._bucket[source] = (level, now)
            return False
        self._bucket[source] = (level + 1, now)
        return True

    def reset_operating(self) -> None:
        """Forget every method's operating time (benchmarks give each client a fresh budget)."""
        with self.lock:
            self._operating.clear()
            self._operating_total.clear()

    def _operating_check(self, key: tuple[str, str]) -> tuple[float, float | None]:
        """(operating seconds in the last 10 minutes, reset_at) for one method and credential."""
        with self.lock:
            return self._operating_window(key)

    def _operating_window(self, key: tuple[str, str]) -> tuple[float, float | None]:
        window = self._operating[key]
        now = self.clock()
        total = self._operating_total.get(key, 0.0)
        while window and window[0][0] <= now - 600:
            total -= window.popleft()[1]
        total = (
            max(total, 0.0) if window else 0.0
        )  # a running total: no re-summing the window on every command
        self._operating_total[key] = total
        reset_at = window[0][0] + 600 if window else None
        return total, reset_at

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
                data = download(self, dict(parse_qsl(parts.query)).get("token", ""))
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
                if not self._rate_ok(self.domain):
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
                if api == "v3" and err.code.startswith(V3_PREFIX)
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
        if len(segs) >= 3 and segs[0].isdigit():
            user_id, code = int(segs[0]), segs[1]
            known = self.webhooks.get(code)
            record.auth_kind = "webhook"
            if known is None or known[0] != user_id:
                raise ApiError("NO_AUTH_FOUND", "Wrong authorization data", 401)
            user = self.state["user"].get(user_id, {})
            return Caller("webhook", user_id, bool(user.get("IS_ADMIN")), known[1], None, code)
        token = params.pop("auth", None)
        record.auth_kind = "oauth"
        if not token:
            raise ApiError("NO_AUTH_FOUND", "Wrong authorization data", 401)
        entry = self.tokens.get(str(token))
        if entry is None:
            raise ApiError("invalid_token", "Unable to authorize user", 401)
        client_id, user_id, expires_at = entry
        if expires_at <= self.clock():
            raise ApiError("expired_token", "The access token provided has expired.", 401)
        app = self.apps[client_id]
        user = self.state["user"].get(user_id, {})
        return Caller("oauth", user_id, bool(user.get("IS_ADMIN")), app.scopes, client_id, str(token))

    def wall(self, moment: float | None = None) -> float:
        """A portal-clock moment as a unix timestamp."""
        return (self.clock() if moment is None else moment) + self._wall_offset

    def _envelope_time(self, started: float, method: str, caller: Caller) -> dict[str, Any]:
        finish = self.clock()
        used, reset_at = self._operating_check((_budget(caller), method))
        processing = finish - started + getattr(self._charge, "seconds", 0.0)
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
        if self.operating_limit is not None:
            used, reset_at = self._operating_check((budget, method))
            if used >= self.operating_limit:
                # UNVERIFIED: whether the 429 envelope carries `time`; we send operating_reset_at so clients
                # can wait.
                raise ApiError(
                    "OPERATION_TIME_LIMIT",
                    "Method is blocked due to operation time limit.",
                    429,
                    time={"operating": used, "operating_reset_at": self.wall(reset_at or self.clock() + 60)},
                )
        before = getattr(self._charge, "seconds", 0.0)
        result = handler(self, params, caller)
        cost = getattr(self._charge, "seconds", 0.0) - before
        key = (budget, method)
        with self.lock:
            self._operating[key].append((self.clock(), max(cost, 0.001)))
            self._operating_total[key] = self._operating_total.get(key, 0.0) + max(cost, 0.001)
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
            times[key] = self._envelope_time(started, method, caller)
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
        code = secrets.token_hex(12)
        self.auth_codes[code] = (app.client_id, user_id, self.clock() + 30)
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
                entry = self.auth_codes.pop(args.get("code", ""), None)
                if entry is None or entry[2] < self.clock() or entry[0] != app.client_id:
                    return fail("invalid_grant", "Invalid authorization code")
                tokens = self.issue_tokens(app, entry[1])
            elif grant == "refresh_token":
                entry2 = self.refresh_tokens.pop(args.get("refresh_token", ""), None)  # one use only
                if entry2 is None or entry2[0] != app.client_id:
                    return fail("invalid_grant", "Invalid refresh token")
                tokens = self.issue_tokens(app, entry2[1])
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
