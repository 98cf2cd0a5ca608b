"""The ``core`` pack: CRM records, pipelines and stages, timeline comments, tasks and users."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bitrix24_agent_tools.client import Bitrix24Error
from bitrix24_agent_tools.client._batch import php_query
from bitrix24_agent_tools.packs import names, preflight
from bitrix24_agent_tools.packs.base import Call, CallRefused, HandlerGen, ToolContext, ToolOutput, ToolSpec
from bitrix24_agent_tools.packs.render import done_output, dumps, record_output, rows_output

ENTITY_TYPE_ID = {"lead": 1, "deal": 2, "contact": 3, "company": 4}
DEFAULT_FIELDS = {
    "deal": [
        "ID",
        "TITLE",
        "STAGE_ID",
        "CATEGORY_ID",
        "OPPORTUNITY",
        "CURRENCY_ID",
        "ASSIGNED_BY_ID",
        "COMPANY_ID",
    ],
    "lead": ["ID", "TITLE", "NAME", "STATUS_ID", "OPPORTUNITY", "ASSIGNED_BY_ID"],
    "contact": ["ID", "NAME", "LAST_NAME", "EMAIL", "PHONE", "COMPANY_ID"],
    "company": ["ID", "TITLE", "COMPANY_TYPE", "PHONE", "ASSIGNED_BY_ID"],
    "item": ["id", "title", "stageId", "opportunity", "assignedById"],
}
TASK_FIELDS = ["id", "title", "status", "responsibleId", "deadline"]
USER_FIELDS = ["ID", "NAME", "LAST_NAME", "EMAIL", "WORK_POSITION"]


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


_ENTITY_HELP = "lead, deal, contact, company, item:<typeId>"


class _EntityArgs(_Args):
    # One field instead of an enum plus a type id: smart processes (entityTypeId ≥ 1030) cost no extra schema
    # tokens.
    entity: str = Field(description=_ENTITY_HELP)

    @field_validator("entity")
    @classmethod
    def _known(cls, value: str) -> str:
        value = value.strip().lower()
        if value in ENTITY_TYPE_ID:
            return value
        kind, _, type_id = value.partition(":")
        if kind == "item" and type_id.isdigit() and int(type_id) > 0:
            return value
        raise ValueError(f"entity must be {_ENTITY_HELP} (e.g. item:1030)")

    @property
    def kind(self) -> str:
        return self.entity.partition(":")[0]


def _prefix(args: _EntityArgs) -> tuple[str, dict[str, Any]]:
    if args.kind == "item":
        return "crm.item", {"entityTypeId": int(args.entity.partition(":")[2])}
    return f"crm.{args.entity}", {}


class ListArgs(_EntityArgs):
    filter: dict[str, Any] = Field(
        default_factory=dict, description='e.g. {">OPPORTUNITY":1000,"%TITLE":"x"}'
    )
    select: list[str] = Field(default_factory=list)
    order: dict[str, Any] = Field(default_factory=dict)  # values ASC or DESC: checked below, not shown

    @field_validator("order")
    @classmethod
    def _directions(cls, value: dict[str, Any]) -> dict[str, str]:
        bad = [k for k, v in value.items() if str(v).upper() not in ("ASC", "DESC")]
        if bad:
            raise ValueError(f"order direction of {bad[0]} must be ASC or DESC")
        return {k: str(v).upper() for k, v in value.items()}

    limit: int = Field(20, ge=1, le=500)
    offset: int = Field(0, ge=0)


def crm_list(ctx: ToolContext, args: ListArgs) -> HandlerGen:
    prefix, extra = _prefix(args)
    fields = args.select or DEFAULT_FIELDS[args.kind]
    flt = dict(args.filter)
    comms = {k: v for k, v in flt.items() if str(k).lstrip("=%").upper() in ("PHONE", "EMAIL")}
    if comms and args.kind in ("lead", "contact", "company"):
        # A phone or e-mail is found the way the portal matches them (normalised numbers), not as the exact
        # stored string: crm.duplicate.findbycomm, then the records by ID.
        ids: set[int] | None = None
        for key, value in comms.items():
            kind = str(key).lstrip("=%").upper()
            found = yield Call(
                "crm.duplicate.findbycomm",
                {
                    "type": kind,
                    "values": value if isinstance(value, list) else [value],
                    "entity_type": args.kind.upper(),
                },
            )
            hit = (
                set((found.result or {}).get(args.kind.upper(), []))
                if isinstance(found.result, dict)
                else set()
            )
            ids = hit if ids is None else ids & hit
            flt.pop(key)
        if not ids:
            return rows_output(ctx, [], fields=fields, total=0, searched=f"{args.entity} by {dumps(comms)}")
        flt["@ID"] = sorted(ids)
    if (
        args.kind in preflight.LEGACY and flt
    ):  # an unknown field would match nothing: the model would answer "none"
        flt = yield from preflight.check_filter(ctx, args.kind, flt)
    params: dict[str, Any] = {**extra, "filter": flt, "select": fields, "order": args.order or {"ID": "DESC"}}
    rows: list[Any] = []
    total: int | None = None
    # Legacy lists page by page number (start 75 answers rows 50-99): ask from the page boundary, skip the
    # rest.
    start, skip = args.offset - args.offset % 50, args.offset % 50
    while len(rows) < args.limit:
        response = yield Call(f"{prefix}.list", {**params, "start": start})
        page = (
            response.result.get("items", [])
            if isinstance(response.result, dict)
            else list(response.result or [])
        )
        rows.extend(page[skip:])
        skip = 0
        total = response.total if response.total is not None else total
        if response.next is None:
            break
        start = response.next
    rows = rows[: args.limit]
    following = args.offset + min(len(rows), ctx.max_items)  # the model pages through the rows it is shown
    more = total is not None and total > following
    # CATEGORY_ID is read to name the stages; the stage id ("C1:NEW") already says the pipeline.
    shown_fields = [f for f in fields if args.select or f != "CATEGORY_ID"]
    if args.kind in preflight.LEGACY and rows:
        names = yield from _names(ctx, rows)
        for row in rows:
            for column, (label, lookup) in names.items():
                value = row.get(column)
                if value not in (None, "", "0") and str(value) in lookup:
                    row[label] = lookup[str(value)]
        shown_fields += [label for column, (label, _) in names.items() if column in fields]
    return rows_output(
        ctx,
        rows,
        fields=shown_fields,
        total=total,
        more=more,
        hint=f"more rows: call again with offset={following}" if more else "",
        searched=f"{args.entity} with filter {dumps(flt)}" if flt else f"every {args.entity}",
        asked=args.limit,
    )


def _names(ctx: ToolContext, rows: list[Any]) -> Generator[Call, Any, dict[str, tuple[str, dict[str, str]]]]:
    """Names beside the IDs a list shows (responsible user, company, contact, stage), read in one call each
    (cached)."""

    def ids(column: str) -> list[int]:
        return sorted(
            {
                int(r[column])
                for r in rows
                if isinstance(r, dict) and str(r.get(column) or "").isdigit() and int(r[column]) > 0
            }
        )

    out: dict[str, tuple[str, dict[str, str]]] = {}
    users = ids("ASSIGNED_BY_ID")
    if users:
        out["ASSIGNED_BY_ID"] = ("ASSIGNED_BY", (yield from preflight.user_names(ctx, users)))
    companies = ids("COMPANY_ID")
    if companies:
        found = yield from preflight.cached(
            ctx, "crm.company.list", {"filter": {"@ID": companies}, "select": ["ID", "TITLE"]}
        )
        out["COMPANY_ID"] = (
            "COMPANY",
            {str(c.get("ID")): str(c.get("TITLE")) for c in found or [] if isinstance(c, dict)},
        )
    contacts = ids("CONTACT_ID")
    if contacts:
        found = yield from preflight.cached(
            ctx, "crm.contact.list", {"filter": {"@ID": contacts}, "select": ["ID", "NAME", "LAST_NAME"]}
        )
        out["CONTACT_ID"] = (
            "CONTACT",
            {
                str(c.get("ID")): f"{c.get('NAME') or ''} {c.get('LAST_NAME') or ''}".strip()
                for c in found or []
                if isinstance(c, dict)
            },
        )
    if any(isinstance(r, dict) and r.get("STAGE_ID") for r in rows):
        stage_names: dict[str, str] = {}
        for category in sorted(
            {preflight.as_id(r.get("CATEGORY_ID")) or 0 for r in rows if isinstance(r, dict)}
        ):
            stages = yield from preflight.stages_of(ctx, category)
            stage_names.update({k: str(v.get("NAME")) for k, v in stages.items()})
        out["STAGE_ID"] = ("STAGE", stage_names)
    return out


class GetArgs(_EntityArgs):
    id: int = Field(gt=0)


def crm_get(ctx: ToolContext, args: GetArgs) -> HandlerGen:
    prefix, extra = _prefix(args)
    response = yield Call(f"{prefix}.get", {**extra, "id": args.id})
    record = response.result.get("item", response.result) if args.kind == "item" else response.result
    if args.kind in preflight.LEGACY and isinstance(record, dict):  # names beside IDs, as the list shows them
        names = yield from _names(ctx, [record])
        for column, (label, lookup) in names.items():
            value = record.get(column)
            if value not in (None, "", "0") and str(value) in lookup:
                record = {**record, label: lookup[str(value)]}
    return record_output(ctx, record)


class CreateArgs(_EntityArgs):
    fields: dict[str, Any] = Field(description="UPPER_CASE keys; camelCase for item")

    @field_validator("fields")
    @classmethod
    def _not_empty(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("fields must not be empty")
        return value


def _existing(entity: str, record_id: int) -> Generator[Call, Any, dict[str, Any]]:
    """The current record (read before a write is checked); ValueError when it does not exist."""
    try:
        response = yield Call(f"crm.{entity}.get", {"id": record_id})
    except (Bitrix24Error, CallRefused) as exc:
        if isinstance(exc, Bitrix24Error) and exc.code == "NOT_FOUND":
            raise ValueError(
                f"{entity} #{record_id} does not exist (find it with b24_crm_list {entity})"
            ) from None
        raise
    return response.result if isinstance(response.result, dict) else {}


def crm_create(ctx: ToolContext, args: CreateArgs) -> HandlerGen:
    prefix, extra = _prefix(args)
    fields = args.fields
    if (
        args.kind in preflight.LEGACY
    ):  # checked before anyone is asked: nothing dropped, nothing that would fail
        fields = yield from preflight.check_crm_fields(ctx, args.kind, fields, creating=True)
    response = yield Call(f"{prefix}.add", {**extra, "fields": fields})
    new_id = (
        response.result.get("item", {}).get("id") if isinstance(response.result, dict) else response.result
    )
    return done_output(f"created {args.entity} #{new_id}", {"id": new_id})


class UpdateArgs(CreateArgs):
    id: int = Field(gt=0)
    fields: dict[str, Any] = Field(description='PHONE: {"add":[..]} / remove / replace')


def crm_update(ctx: ToolContext, args: UpdateArgs) -> HandlerGen:
    prefix, extra = _prefix(args)
    fields = args.fields
    record: dict[str, Any] = {}
    if args.kind in preflight.LEGACY:
        record = yield from _existing(args.kind, args.id)
        fields = yield from preflight.check_crm_fields(ctx, args.kind, fields, creating=False, record=record)
    yield Call(f"{prefix}.update", {**extra, "id": args.id, "fields": fields}, current=record or None)
    return done_output(f"updated {args.entity} #{args.id}: {', '.join(args.fields)}", {"id": args.id})


def crm_fields(ctx: ToolContext, args: _EntityArgs) -> HandlerGen:
    prefix, extra = _prefix(args)
    response = yield Call(f"{prefix}.fields", extra)
    fields = response.result.get("fields", response.result) if isinstance(response.result, dict) else {}
    compact: dict[str, Any] = {}
    for name, info in fields.items():
        if not isinstance(info, dict):
            continue
        entry: dict[str, Any] = {"t": info.get("type")}
        label = info.get("listLabel") or info.get("title")
        if label and str(label).upper() != name.upper():
            entry["label"] = label
        if info.get("isRequired"):
            entry["req"] = True
        if info.get("isReadOnly"):
            entry["ro"] = True
        if info.get("items"):
            entry["enum"] = {str(i.get("ID")): i.get("VALUE") for i in info["items"] if isinstance(i, dict)}
        compact[name] = entry
    # Said once and explicitly, also when empty: a model must not infer "nothing is required" from silence.
    compact["required"] = [
        name for name, entry in compact.items() if isinstance(entry, dict) and entry.get("req")
    ]
    if args.kind == "deal":  # a deal's stage depends on its pipeline: every pipeline with its stages
        compact["pipelines"] = yield from _pipelines(ctx)
    return ToolOutput(content=dumps(compact), artifact=fields)


def _pipelines(ctx: ToolContext) -> Generator[Call, Any, list[dict[str, Any]]]:
    """Deal pipelines with their stages (``C1:WON=Won``), read once per tenant (cached)."""
    cats = yield from preflight.cached(ctx, "crm.category.list", {"entityTypeId": 2})
    statuses = yield from preflight.cached(ctx, "crm.status.list", {"filter": {"%ENTITY_ID": "DEAL_STAGE"}})
    pipelines = []
    for cat in (cats or {}).get("categories", []) if isinstance(cats, dict) else []:
        entity = "DEAL_STAGE" if int(cat["id"]) == 0 else f"DEAL_STAGE_{cat['id']}"
        stages = [f"{s['STATUS_ID']}={s['NAME']}" for s in statuses or [] if s.get("ENTITY_ID") == entity]
        pipelines.append({"id": cat["id"], "name": cat["name"], "stages": stages})
    return pipelines


class ConvertArgs(_Args):
    id: int = Field(gt=0)


_PERSON = ("NAME", "LAST_NAME", "SECOND_NAME", "POST", "PHONE", "EMAIL", "ADDRESS")


def _copy(lead: dict[str, Any], keys: tuple[str, ...], **extra: Any) -> dict[str, Any]:
    fields = {k: lead[k] for k in keys if lead.get(k) not in (None, "", [], {})}
    return {**fields, **{k: v for k, v in extra.items() if v not in (None, "")}}


def lead_convert(ctx: ToolContext, args: ConvertArgs) -> HandlerGen:
    """A lead becomes a deal with its contact (and company): the docs say REST has no conversion method
    (crm/leads/index.md), so it is the records created by crm.contact.add / crm.company.add / crm.deal.add and
    the lead moved to its converted status by crm.lead.update — one batch, one approval, stopping at the first
    error."""
    lead = yield from _existing("lead", args.id)
    if lead.get("STATUS_ID") == "CONVERTED":
        raise ValueError(f"lead #{args.id} is already converted")
    # LEAD_ID is read-only on contacts, companies and deals (crm-contact-fields.md; no add page lists it):
    # sent, the portal would drop it, so it is not sent.
    common = {
        "ASSIGNED_BY_ID": lead.get("ASSIGNED_BY_ID"),
        "SOURCE_ID": lead.get("SOURCE_ID"),
    }
    cmd: dict[str, str] = {}
    deal = _copy(
        lead,
        ("OPPORTUNITY", "CURRENCY_ID", "COMMENTS"),
        TITLE=lead.get("TITLE") or f"Lead #{args.id}",
        **common,
    )
    if any(lead.get(k) for k in _PERSON):
        cmd["contact"] = "crm.contact.add?" + php_query({"fields": _copy(lead, _PERSON, **common)})
    if lead.get("COMPANY_TITLE"):
        # A company has no source (crm-company-add.md lists no SOURCE_ID).
        company = {k: v for k, v in common.items() if k != "SOURCE_ID"}
        cmd["company"] = "crm.company.add?" + php_query(
            {"fields": {"TITLE": lead["COMPANY_TITLE"], **company}}
        )
    refs = "".join(
        f"&fields[{key.upper()}_ID]=$result[{key}]" for key in ("contact", "company") if key in cmd
    )
    cmd["deal"] = "crm.deal.add?" + php_query({"fields": deal}) + refs
    cmd["lead"] = "crm.lead.update?" + php_query({"id": args.id, "fields": {"STATUS_ID": "CONVERTED"}})
    response = yield Call("batch", {"halt": 1, "cmd": cmd})
    result = response.result if isinstance(response.result, dict) else {}
    made = result.get("result") or {}
    if result.get("result_error"):
        done = ", ".join(f"{k} #{v}" for k, v in made.items() if k != "lead") or "nothing"
        raise ValueError(f"conversion stopped: {result['result_error']}; created before the error: {done}")
    parts = [f"{k} #{made[k]}" for k in ("deal", "contact", "company") if k in made]
    return done_output(
        f"lead #{args.id} converted: {', '.join(parts)}",
        {k: made.get(k) for k in ("deal", "contact", "company")},
    )


class MoveArgs(_Args):
    id: int = Field(gt=0)
    stage_id: str = Field(min_length=1, max_length=64, description="e.g. WON, C1:NEW")


def deal_move(ctx: ToolContext, args: MoveArgs) -> HandlerGen:
    deal = yield from _existing("deal", args.id)
    category = preflight.as_id(deal.get("CATEGORY_ID")) or 0
    stages = yield from preflight.stages_of(ctx, category)
    stage = (
        preflight.fix_stage(stages, args.stage_id, category, f"deal #{args.id}") if stages else args.stage_id
    )
    yield Call("crm.deal.update", {"id": args.id, "fields": {"STAGE_ID": stage}}, current=deal)
    name = (stages.get(stage) or {}).get("NAME") if stages else None
    return done_output(
        f"deal #{args.id} moved to {stage}" + (f" ({name})" if name else ""),
        {"id": args.id, "stage_id": stage},
    )


class CommentArgs(_Args):
    entity: Literal["lead", "deal", "contact", "company", "task"]
    id: int = Field(gt=0)
    text: str = Field(min_length=1, max_length=10000)


def crm_comment(ctx: ToolContext, args: CommentArgs) -> HandlerGen:
    if (
        args.entity == "task"
    ):  # a task's comments live in the task (task.commentitem.add takes [taskId, fields])
        try:
            yield Call("tasks.task.get", {"taskId": args.id})
        except Bitrix24Error:
            raise ValueError(f"task #{args.id} does not exist (find it with b24_task_list)") from None
        response = yield Call(
            "task.commentitem.add", {"TASKID": args.id, "FIELDS": {"POST_MESSAGE": args.text}}
        )
        return done_output(f"comment #{response.result} added to task #{args.id}", {"id": response.result})
    yield from _existing(args.entity, args.id)
    response = yield Call(
        "crm.timeline.comment.add",
        {"fields": {"ENTITY_TYPE": args.entity, "ENTITY_ID": args.id, "COMMENT": args.text}},
    )
    return done_output(
        f"comment #{response.result} added to {args.entity} #{args.id}", {"id": response.result}
    )


class TaskListArgs(_Args):
    filter: dict[str, Any] = Field(default_factory=dict, description='e.g. {"RESPONSIBLE_ID":5}')
    limit: int = Field(20, ge=1, le=200)


def task_list(ctx: ToolContext, args: TaskListArgs) -> HandlerGen:
    response = yield Call(
        "tasks.task.list",
        {
            "filter": args.filter,
            "select": ["ID", "TITLE", "STATUS", "RESPONSIBLE_ID", "DEADLINE"],
            "order": {"ID": "desc"},
        },
    )
    rows = (response.result or {}).get("tasks", []) if isinstance(response.result, dict) else []
    return rows_output(
        ctx,
        rows[: args.limit],
        fields=TASK_FIELDS,
        total=response.total,
        more=bool(response.total and response.total > args.limit),
    )


# UF_CRM_TASK codes (api-reference/tasks/fields.md): the model names the kind of record, the code is ours —
# a prefix left to the model read C_3 as a company (it is contact 3).
_LINK_PREFIX = {"deal": "D", "lead": "L", "contact": "C", "company": "CO"}


class TaskCreateArgs(_Args):
    title: str = Field(min_length=1, max_length=255)
    responsible_id: int | None = Field(None, gt=0)
    deadline: str | None = Field(None, description="ISO 8601")
    description: str | None = Field(None, max_length=10000)
    crm: dict[str, Any] = Field(default_factory=dict, description='links, e.g. {"deal":[12],"contact":[3]}')

    @field_validator("crm")
    @classmethod
    def _kinds(cls, value: dict[str, Any]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for kind, ids in value.items():
            if kind not in _LINK_PREFIX:
                raise ValueError(f"crm links are keyed by deal, company, contact or lead, not {kind!r}")
            items = ids if isinstance(ids, list) else [ids]
            if not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in items):
                raise ValueError(f"crm.{kind} takes record IDs (numbers), e.g. [12]")
            out[kind] = items
        return out


def _crm_links(crm: Mapping[str, list[int]]) -> Generator[Call, Any, list[str]]:
    """UF_CRM_TASK values for the linked records, each checked to exist before anyone is asked."""
    out = []
    for entity, ids in crm.items():
        for ident in ids:
            yield from _existing(entity, int(ident))
            out.append(f"{_LINK_PREFIX[entity]}_{int(ident)}")
    return out


def _check_task(ctx: ToolContext, responsible: Any, deadline: Any) -> Generator[Call, Any, None]:
    if responsible is not None:
        users = yield from preflight.cached(ctx, "user.get", {"ID": responsible})
        if not users:
            raise ValueError(f"user #{responsible} does not exist (find it with b24_user_find)")
    if deadline is not None and not preflight.parse_date(deadline):
        raise ValueError(
            f"deadline must be an ISO 8601 date (e.g. 2026-12-04T18:00:00+03:00), got {deadline!r}"
        )


def task_create(ctx: ToolContext, args: TaskCreateArgs) -> HandlerGen:
    yield from _check_task(ctx, args.responsible_id, args.deadline)
    fields: dict[str, Any] = {"TITLE": args.title}
    responsible = args.responsible_id
    if not responsible:  # tasks-task-add.md: RESPONSIBLE_ID is required ("Responsible person not specified")
        responsible = yield from preflight.current_user(ctx)
    fields["RESPONSIBLE_ID"] = responsible
    if args.deadline:
        fields["DEADLINE"] = args.deadline
    if args.description:
        fields["DESCRIPTION"] = args.description
    links = yield from _crm_links(args.crm)
    if links:
        fields["UF_CRM_TASK"] = links
    response = yield Call("tasks.task.add", {"fields": fields})
    task = (response.result or {}).get("task", {})
    return done_output(f"created task #{task.get('id')}", task)


class TaskUpdateArgs(_Args):
    id: int = Field(gt=0)
    fields: dict[str, Any] = Field(description="e.g. TITLE, DEADLINE")


def task_update(ctx: ToolContext, args: TaskUpdateArgs) -> HandlerGen:
    upper = {str(k).upper(): v for k, v in args.fields.items()}
    unknown = [k for k in upper if k not in _TASK_WRITABLE]
    if unknown:
        raise ValueError(f"unknown task field {unknown[0]}; writable: {', '.join(sorted(_TASK_WRITABLE))}")
    yield from _check_task(ctx, upper.get("RESPONSIBLE_ID"), upper.get("DEADLINE"))
    fields = dict(args.fields)
    if "UF_CRM_TASK" in upper:
        links = upper["UF_CRM_TASK"] if isinstance(upper["UF_CRM_TASK"], list) else [upper["UF_CRM_TASK"]]
        fields = {k: v for k, v in fields.items() if str(k).upper() != "UF_CRM_TASK"}
        by_kind: dict[str, list[int]] = {}
        kinds = {code: kind for kind, code in _LINK_PREFIX.items()}
        for link in links:  # the field's own codes (D_12, CO_2): read strictly, never guessed
            prefix, _, raw = str(link).strip().upper().partition("_")
            if prefix not in kinds or not raw.isdigit():
                raise ValueError(
                    f"UF_CRM_TASK {link!r}: use D_12 (deal), L_3 (lead), C_7 (contact), CO_2 (company)"
                )
            by_kind.setdefault(kinds[prefix], []).append(int(raw))
        fields["UF_CRM_TASK"] = yield from _crm_links(by_kind)
    yield Call("tasks.task.update", {"taskId": args.id, "fields": fields})
    return done_output(f"updated task #{args.id}: {', '.join(args.fields)}", {"id": args.id})


_TASK_WRITABLE = {
    "TITLE",
    "DESCRIPTION",
    "RESPONSIBLE_ID",
    "DEADLINE",
    "PRIORITY",
    "STATUS",
    "GROUP_ID",
    "UF_CRM_TASK",
    "ACCOMPLICES",
    "AUDITORS",
    "START_DATE_PLAN",
    "END_DATE_PLAN",
}


class IdArgs(_Args):
    id: int = Field(gt=0)


def task_complete(ctx: ToolContext, args: IdArgs) -> HandlerGen:
    yield Call("tasks.task.complete", {"taskId": args.id})
    return done_output(f"task #{args.id} completed", {"id": args.id})


class UserFindArgs(_Args):
    query: str = Field(min_length=1, max_length=200)


def user_find(ctx: ToolContext, args: UserFindArgs) -> HandlerGen:
    query = args.query.strip()
    if query.lstrip("#").isdigit():  # an ID
        response = yield Call("user.get", {"filter": {"ID": int(query.lstrip("#"))}})
        return rows_output(ctx, list(response.result or []), fields=USER_FIELDS, total=response.total)
    response = yield Call("user.search", {"FILTER": {"FIND": query}})
    found = list(response.result or [])
    if not found:  # the portal's search folds neither accents nor scripts: compare over the active users
        start: int | None = 0
        while start is not None and start < 500:
            page = yield Call("user.get", {"filter": {"ACTIVE": True}, "start": start})
            for user in page.result or []:
                text = " ".join(str(user.get(k) or "") for k in ("NAME", "LAST_NAME", "EMAIL"))
                if names.name_matches(query, text):
                    found.append(user)
            start = page.next
    departments = yield from _departments(query)
    return rows_output(
        ctx,
        [*found, *departments],
        fields=[*USER_FIELDS, "DEPARTMENT", "HEAD"],
        total=len(found) + len(departments),
        searched=f"users and departments matching {query!r} (names in any script, departments by kind)",
    )


def _departments(query: str) -> Generator[Call, Any, list[dict[str, Any]]]:
    """Departments the query names — by name, or by kind in any of the router's languages ("отдел продаж"
    finds "Sales") — with their head's name ("who heads Sales?")."""
    try:
        response = yield Call("department.get", {})
    except (Bitrix24Error, CallRefused):
        return []  # no department scope: users only
    out = []
    for dept in response.result or []:
        if not isinstance(dept, dict) or not names.department_matches(query, str(dept.get("NAME") or "")):
            continue
        head = None
        if str(dept.get("UF_HEAD") or "").isdigit():
            try:
                users = yield Call("user.get", {"filter": {"ID": int(dept["UF_HEAD"])}})
                first = (users.result or [None])[0]
                head = (
                    f"{first.get('NAME', '')} {first.get('LAST_NAME', '')}".strip()
                    if isinstance(first, dict)
                    else None
                )
            except (Bitrix24Error, CallRefused):
                head = None
        out.append(
            {
                "ID": dept.get("ID"),
                "DEPARTMENT": dept.get("NAME"),
                "HEAD": f"{head} (#{dept.get('UF_HEAD')})" if head else dept.get("UF_HEAD"),
            }
        )
    return out


def specs() -> list[ToolSpec]:
    crm = ("crm.lead", "crm.deal", "crm.contact", "crm.company", "crm.item")
    return [
        ToolSpec(
            "b24_crm_list",
            "List/search CRM records.",
            ListArgs,
            "read",
            (*(f"{p}.list" for p in crm), "crm.duplicate.findbycomm", *preflight.METHODS),
            crm_list,
            "core",
        ),
        ToolSpec(
            "b24_crm_get",
            "Get one CRM record.",
            GetArgs,
            "read",
            (*(f"{p}.get" for p in crm), *preflight.METHODS),
            crm_get,
            "core",
        ),
        ToolSpec(
            "b24_crm_create",
            "Create a CRM record.",
            CreateArgs,
            "write",
            (*(f"{p}.add" for p in crm), *preflight.METHODS),
            crm_create,
            "core",
        ),
        ToolSpec(
            "b24_crm_update",
            "Update a CRM record.",
            UpdateArgs,
            "write",
            (*(f"{p}.update" for p in crm), *preflight.METHODS),
            crm_update,
            "core",
        ),
        ToolSpec(
            "b24_crm_fields",
            "CRM entity fields, enum values, deal pipelines.",
            _EntityArgs,
            "read",
            (*(f"{p}.fields" for p in crm), "crm.category.list", "crm.status.list"),
            crm_fields,
            "core",
        ),
        ToolSpec(
            "b24_lead_convert",
            "Convert a lead to a deal (+contact, company).",
            ConvertArgs,
            "write",
            (
                "batch",
                "crm.lead.get",
                "crm.contact.add",
                "crm.company.add",
                "crm.deal.add",
                "crm.lead.update",
            ),
            lead_convert,
            "core",
        ),
        ToolSpec(
            "b24_deal_move",
            "Move a deal to a stage.",
            MoveArgs,
            "write",
            ("crm.deal.update", *preflight.METHODS),
            deal_move,
            "core",
        ),
        ToolSpec(
            "b24_crm_comment",
            "Comment on a CRM record or a task.",
            CommentArgs,
            "write",
            ("crm.timeline.comment.add", "task.commentitem.add", "tasks.task.get", *preflight.METHODS),
            crm_comment,
            "core",
        ),
        ToolSpec(
            "b24_task_list", "List tasks.", TaskListArgs, "read", ("tasks.task.list",), task_list, "core"
        ),
        ToolSpec(
            "b24_task_create",
            "Create a task.",
            TaskCreateArgs,
            "write",
            ("tasks.task.add", "user.current", *preflight.METHODS),
            task_create,
            "core",
        ),
        ToolSpec(
            "b24_task_update",
            "Update a task.",
            TaskUpdateArgs,
            "write",
            ("tasks.task.update", *preflight.METHODS),
            task_update,
            "core",
        ),
        ToolSpec(
            "b24_task_complete",
            "Complete a task.",
            IdArgs,
            "write",
            ("tasks.task.complete",),
            task_complete,
            "core",
        ),
        ToolSpec(
            "b24_user_find",
            "Find users or a department and its head.",
            UserFindArgs,
            "read",
            ("user.search", "user.get", "department.get"),
            user_find,
            "core",
        ),
    ]
