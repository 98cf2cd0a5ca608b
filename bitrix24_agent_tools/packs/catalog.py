"""Each pack's allowlist with the risk of every method (catalog.md), and risk classification for the rest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bitrix24_agent_tools.packs.base import Risk


def _parse(spec: str) -> dict[str, Risk]:
    out: dict[str, Risk] = {}
    for line in spec.split(";"):
        line = line.strip()
        if not line:
            continue
        risk, names = line.split(":", 1)
        for name in names.split():
            out[name.strip()] = risk.strip()  # type: ignore[assignment]
    return out


CATALOG: dict[str, dict[str, Risk]] = {
    "core": _parse("""
        read: user.current user.get user.search department.get crm.lead.list crm.lead.get crm.lead.fields
              crm.deal.list crm.deal.get crm.deal.fields crm.contact.list crm.contact.get crm.contact.fields
              crm.company.list crm.company.get crm.company.fields crm.item.list crm.item.get crm.item.fields
              crm.category.list crm.status.list crm.activity.list tasks.task.list tasks.task.get event.get
              event.offline.list;
        write: crm.lead.add crm.lead.update crm.deal.add crm.deal.update crm.contact.add crm.contact.update
               crm.company.add crm.company.update crm.item.add crm.item.update crm.activity.todo.add
               crm.timeline.comment.add tasks.task.add tasks.task.update tasks.task.complete task.commentitem.add
               event.bind event.offline.error event.offline.get batch;
        destructive: crm.lead.delete crm.deal.delete crm.contact.delete crm.company.delete crm.item.delete
                     tasks.task.delete event.unbind event.offline.clear"""),
    "comms": _parse("""
        write: im.message.add im.message.update im.notify.system.add im.notify.personal.add imbot.register
               imbot.command.register imbot.command.answer imbot.message.add telephony.externalCall.register
               telephony.externalCall.finish;
        destructive: im.message.delete;
        read: im.dialog.messages.get messageservice.sender.list imopenlines.config.list.get imconnector.list
              mailservice.list"""),
    "automation": _parse("""
        write: bizproc.workflow.start bizproc.task.complete bizproc.robot.add bizproc.robot.update
               bizproc.workflow.template.update crm.automation.trigger;
        destructive: bizproc.workflow.terminate bizproc.workflow.kill;
        read: bizproc.workflow.instances bizproc.task.list bizproc.robot.list bizproc.workflow.template.list
              lists.element.get"""),
    "collab": _parse("""
        read: sonet_group.get sonet_group.user.get log.blogpost.get;
        write: sonet_group.create sonet_group.update log.blogpost.add log.blogpost.update log.blogcomment.add;
        destructive: sonet_group.delete log.blogpost.delete log.blogcomment.delete"""),
    "content": _parse("""
        read: disk.storage.getlist disk.storage.getchildren disk.folder.getchildren disk.file.get;
        write: disk.folder.addsubfolder disk.folder.uploadfile disk.file.copyto disk.file.moveto
               documentgenerator.document.add;
        destructive: disk.file.delete"""),
    "boards": _parse("""
        read: tasks.api.scrum.sprint.list tasks.api.scrum.kanban.getStages tasks.api.scrum.epic.list;
        write: tasks.api.scrum.sprint.add tasks.api.scrum.sprint.start tasks.api.scrum.sprint.complete
               tasks.api.scrum.kanban.addTask tasks.api.scrum.epic.add tasks.api.scrum.backlog.add;
        destructive: tasks.api.scrum.kanban.deleteTask"""),
    "commerce": _parse("""
        read: sale.order.list sale.order.get sale.payment.list sale.delivery.getlist catalog.product.list
              catalog.product.get catalog.price.list;
        write: sale.order.add sale.order.update sale.payment.add catalog.product.add catalog.product.update
               catalog.price.add"""),
    "services": _parse("""
        read: booking.v1.booking.list booking.v1.resource.list calendar.event.get calendar.section.get
              calendar.accessibility.get timeman.status;
        write: booking.v1.booking.add booking.v1.booking.update calendar.event.add calendar.event.update
               timeman.open timeman.close;
        destructive: calendar.event.delete"""),
    "platform": _parse("""
        read: ai.engine.list entity.get entity.item.get biconnector.source.list biconnector.connector.list;
        write: ai.engine.register ai.prompt.register entity.add entity.update entity.item.add entity.item.update
               biconnector.source.add;
        destructive: ai.engine.unregister entity.item.delete"""),
    "sites": _parse("""
        read: landing.site.getList landing.landing.getList landing.block.getList;
        write: landing.site.add landing.site.update landing.landing.add landing.landing.update
               landing.landing.publication landing.block.addCard;
        destructive: landing.site.delete landing.landing.delete"""),
    "compliance": _parse("""
        read: userconsent.agreement.list userconsent.agreement.text sign.b2e.personal.tail sign.b2e.mysafe.tail;
        write: userconsent.consent.add"""),
    "diagnostics": _parse("read: server.time scope methods method.get events feature.get app.info profile"),
}

_BY_METHOD: dict[str, tuple[str, Risk]] = {}
for _pack, _methods in CATALOG.items():
    for _method, _risk in _methods.items():
        _BY_METHOD.setdefault(_method.lower(), (_pack, _risk))

_WRITE = frozenset(["add", "update", "set", "register", "bind", "import", "complete", "start", "stop", "move", "attach", "send"])
_DESTRUCTIVE = frozenset(["delete", "remove", "unregister", "unbind", "terminate", "kill", "clear", "recyclebin"])


def pack_of(method: str) -> str | None:
    """The pack whose catalog lists ``method`` (case-insensitive), or None."""
    found = _BY_METHOD.get(method.lower())
    return found[0] if found else None


def _is_false(value: Any) -> bool:
    return str(value).strip().lower() in ("0", "false", "n", "no")


def catalog_risk(method: str, params: Mapping[str, Any] | None = None) -> Risk | None:
    """The catalog's risk for a call, including the parameter-dependent ones; None if not in any catalog."""
    lower = method.lower()
    if lower == "event.offline.get":
        # The portal deletes what it returns unless clear=0 (protocol.md §7).
        return "write" if params is not None and "clear" in params and _is_false(params["clear"]) else "destructive"
    found = _BY_METHOD.get(lower)
    return found[1] if found else None


def name_risk(method: str) -> Risk:
    """Risk by the method's last name part (catalog.md), for methods no catalog lists."""
    last = method.lower().rsplit(".", 1)[-1]
    if last in _DESTRUCTIVE or any(last.startswith(v) for v in _DESTRUCTIVE):
        return "destructive"
    if last in _WRITE or any(last.startswith(v) for v in _WRITE):
        return "write"
    return "read"


def classify(method: str, params: Mapping[str, Any] | None = None) -> Risk:
    """Catalog first, then the method name; ``batch`` is judged by the guard command by command."""
    return catalog_risk(method, params) or name_risk(method)
