"""Every catalog method of the packs beyond core answers on the sandbox with the documented shape, and refuses
a bad call with the documented error (bitrix24/b24restdocs, the page named in each row). State written by one
method is read back by another: the chains at the bottom."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from bitrix24_agent_tools.packs import PACKS
from bitrix24_agent_tools.sandbox import Portal
from bitrix24_agent_tools.sandbox.methods import METHODS

Check = Callable[[Any], bool] | str  # a string: the error code the docs give for that call in that state


def _keys(*names: str) -> Callable[[Any], bool]:
    return lambda r: isinstance(r, dict) and all(n in r for n in names)


def _rows(*names: str, key: str | None = None) -> Callable[[Any], bool]:
    def check(result: Any) -> bool:
        rows = result[key] if key else result
        return isinstance(rows, list) and bool(rows) and all(all(n in row for n in names) for row in rows)

    return check


def _is(kind: type) -> Callable[[Any], bool]:
    return lambda r: isinstance(r, kind) and not isinstance(r, bool) if kind is int else isinstance(r, kind)


_TRUE: Check = lambda r: r is True  # noqa: E731


_B64 = base64.b64encode(b"hello").decode()
_WEBHOOK = "https://handler.example.test/bot"

# (method, valid params, check of the result, invalid params, documented error code, docs page) — run in
# order: rows after an "add" use what it created (IDs follow the seed in
# bitrix24_agent_tools/sandbox/seed_packs.py).
# fmt: off
CASES: list[tuple[str, dict[str, Any], Check, dict[str, Any], str, str]] = [
    # comms
    ("im.message.add", {"DIALOG_ID": "2", "MESSAGE": "Are we on for Friday?"}, lambda r: r == 3,
     {"DIALOG_ID": "2", "MESSAGE": ""}, "MESSAGE_EMPTY", "chats/messages/im-message-add.md"),
    ("im.dialog.messages.get", {"DIALOG_ID": "2"},
     lambda r: next(m["text"] for m in r["messages"]) == "Are we on for Friday?",
     {}, "DIALOG_ID_EMPTY", "chats/messages/im-dialog-messages-get.md"),
    ("im.search.chat.list", {"FIND": "sales"}, lambda r: [c["name"] for c in r] == ["Sales team"],
     {"FIND": "s"}, "FIND_SHORT", "chats/search/im-search-chat-list.md"),
    ("im.chat.user.list", {"CHAT_ID": 1}, lambda r: 1 in r, {}, "CHAT_ID_EMPTY",
     "chats/chat-users/im-chat-user-list.md"),
    ("im.recent.list", {}, lambda r: r["items"][0]["id"] == 2 and "hasMore" in r, {}, "",
     "chats/im-recent-list.md"),
    ("im.notify.system.add", {"USER_ID": 2, "MESSAGE": "Report ready"}, _is(int),
     {"USER_ID": 0, "MESSAGE": "x"},
     "USER_ID_EMPTY", "chats/notifications/im-notify-system-add.md"),
    ("im.notify.personal.add", {"USER_ID": 2, "MESSAGE": "Ping"}, _is(int), {"USER_ID": 2, "MESSAGE": ""},
     "MESSAGE_EMPTY", "chats/notifications/im-notify-personal-add.md"),
    ("im.message.update", {"MESSAGE_ID": 1, "MESSAGE": "edited"}, _TRUE, {"MESSAGE_ID": 0},
     "MESSAGE_ID_ERROR",
     "chats/messages/im-message-update.md"),
    ("im.message.delete", {"MESSAGE_ID": 1}, _TRUE, {"MESSAGE_ID": 999}, "MESSAGE_ID_ERROR",
     "chats/messages/im-message-delete.md"),
    ("imbot.register", {"CODE": "helper", "EVENT_HANDLER": _WEBHOOK, "PROPERTIES": {"NAME": "Helper"}},
     _is(int),
     {"CODE": "", "EVENT_HANDLER": _WEBHOOK, "PROPERTIES": {"NAME": "x"}}, "CODE_ERROR",
     "chat-bots/outdated/bots/imbot-register.md"),
    ("imbot.command.register", {"BOT_ID": 1001, "COMMAND": "echo", "EVENT_COMMAND_ADD": _WEBHOOK,
                                "LANG": [{"LANGUAGE_ID": "en", "TITLE": "Echo"}]}, _is(int),
     {"BOT_ID": 77, "COMMAND": "echo", "EVENT_COMMAND_ADD": _WEBHOOK, "LANG": [{}]}, "BOT_ID_ERROR",
     "chat-bots/outdated/commands/imbot-command-register.md"),
    ("imbot.message.add", {"BOT_ID": 1001, "DIALOG_ID": "2", "MESSAGE": "Hi from the bot"}, _is(int),
     {"BOT_ID": 1001, "DIALOG_ID": "", "MESSAGE": "x"}, "DIALOG_ID_EMPTY",
     "chat-bots/outdated/messages/imbot-message-add.md"),
    ("imbot.command.answer", {"COMMAND_ID": 1, "COMMAND": "echo", "MESSAGE_ID": 2, "MESSAGE": "echo!"},
     _is(int),
     {"COMMAND_ID": 99, "COMMAND": "echo", "MESSAGE_ID": 2, "MESSAGE": "x"}, "COMMAND_ID_ERROR",
     "chat-bots/outdated/commands/imbot-command-answer.md"),
    ("telephony.externalCall.register", {"USER_ID": 1, "PHONE_NUMBER": "+1 555 010001", "TYPE": 2},
     _keys("CALL_ID", "CRM_ENTITY_TYPE", "CRM_ENTITY_ID", "CRM_CREATED_LEAD"),
     {"USER_ID": 1, "PHONE_NUMBER": "555", "TYPE": 9},
     "ERROR_CORE", "telephony/telephony-external-call-register.md"),
    ("telephony.externalCall.finish",
     {"CALL_ID": "externalCall.c4ca4238a0b923820dcc509a6f75849b.sbx", "USER_ID": 1,
                                       "DURATION": 95},
                                       _keys("CALL_ID", "CALL_DURATION", "CRM_ENTITY_TYPE", "CRM_ENTITY_ID"),
     {"CALL_ID": 5, "USER_ID": 1}, "INVALID_ARGUMENT", "telephony/telephony-external-call-finish.md"),
    ("messageservice.sender.list", {}, _is(list), {}, "", "messageservice/messageservice-sender-list.md"),
    ("imopenlines.config.list.get", {"PARAMS": {"filter": {"ACTIVE": "Y"}}},
     _rows("ID", "LINE_NAME", "QUEUE"),
     {"PARAMS": {"where": 1}}, "INVALID_FORMAT", "imopenlines/openlines/imopenlines-config-list-get.md"),
    ("imconnector.list", {}, lambda r: isinstance(r, dict) and r.get("livechat") == "Live Chat", {}, "",
     "imopenlines/imconnector/imconnector-list.md"),
    ("mailservice.list", {}, _rows("ID", "NAME", "SERVER", "SMTP_SERVER"), {}, "",
     "mailservice/mailservice-list.md"),
    # automation
    ("bizproc.workflow.template.list", {}, _rows("ID", "NAME", "DOCUMENT_TYPE"), {}, "",
     "bizproc/template/bizproc-workflow-template-list.md"),
    ("bizproc.workflow.start", {"TEMPLATE_ID": 1, "DOCUMENT_ID": ["crm", "CCrmDocumentDeal", "DEAL_5"]},
     _is(str),
     {"TEMPLATE_ID": 99, "DOCUMENT_ID": ["crm", "CCrmDocumentDeal", "DEAL_5"]}, "ERROR_WRONG_WORKFLOW_ID",
     "bizproc/bizproc-workflow-start.md"),
    ("bizproc.workflow.instances", {}, _rows("ID", "DOCUMENT_ID", "TEMPLATE_ID", "STARTED"), {}, "",
     "bizproc/bizproc-workflow-instances.md"),
    ("bizproc.task.list", {}, _rows("ID", "WORKFLOW_ID", "NAME", "STATUS"), {}, "",
     "bizproc/bizproc-task/bizproc-task-list.md"),
    ("bizproc.task.complete", {"TASK_ID": 1, "STATUS": "yes"}, _TRUE, {"TASK_ID": 1, "STATUS": "maybe"},
     "ERROR_TASK_VALIDATION", "bizproc/bizproc-task/bizproc-task-complete.md"),
    ("bizproc.robot.add", {"CODE": "notify_robot", "HANDLER": _WEBHOOK, "NAME": "Notify"}, _TRUE,
     {"CODE": "bad code!", "HANDLER": _WEBHOOK, "NAME": "x"}, "ERROR_ACTIVITY_VALIDATION_FAILURE",
     "bizproc/bizproc-robot/bizproc-robot-add.md"),
    ("bizproc.robot.update", {"CODE": "notify_robot", "FIELDS": {"NAME": "Notify the team"}}, _TRUE,
     {"CODE": "missing", "FIELDS": {"NAME": "x"}}, "ERROR_ACTIVITY_NOT_FOUND",
     "bizproc/bizproc-robot/bizproc-robot-update.md"),
    ("bizproc.robot.list", {}, lambda r: r == ["notify_robot"], {}, "",
     "bizproc/bizproc-robot/bizproc-robot-list.md"),
    ("bizproc.workflow.template.update", {"ID": 1, "FIELDS": {"NAME": "x"}}, "ERROR_TEMPLATE_NOT_OWNER",
     {"ID": 999, "FIELDS": {"NAME": "x"}}, "ERROR_TEMPLATE_NOT_FOUND",
     "bizproc/template/bizproc-workflow-template-update.md"),
    ("crm.automation.trigger", {"target": "DEAL_5", "code": "paid"}, _TRUE, {"code": "x"}, "",
     "crm/automation/crm-automation-trigger.md"),
    ("bizproc.workflow.terminate", {"ID": "00000001.sbx", "STATUS": "stopped"}, _TRUE, {"ID": ""},
     "ERROR_WRONG_WORKFLOW_ID", "bizproc/bizproc-workflow-terminate.md"),
    ("bizproc.workflow.kill", {"ID": "00000001.sbx"}, _TRUE, {"ID": ""}, "ERROR_WRONG_WORKFLOW_ID",
     "bizproc/bizproc-workflow-kill.md"),
    ("lists.element.get", {"IBLOCK_TYPE_ID": "lists", "IBLOCK_ID": 1}, _rows("ID", "NAME", "CREATED_BY"),
     {"IBLOCK_TYPE_ID": "lists"}, "ERROR_REQUIRED_PARAMETERS_MISSING", "lists/elements/lists-element-get.md"),
    # collab
    ("sonet_group.get", {"FILTER": {"%NAME": "mobile"}}, _rows("ID", "NAME", "OWNER_ID", "PROJECT"), {}, "",
     "sonet-group/sonet-group-get.md"),
    ("sonet_group.user.get", {"ID": 1}, _rows("USER_ID", "ROLE"), {"ID": 999}, "",
     "sonet-group/members/sonet-group-user-get.md"),
    ("sonet_group.create", {"NAME": "Partners", "PROJECT": "N"}, _is(int), {"NAME": ""}, "",
     "sonet-group/sonet-group-create.md"),
    ("sonet_group.update", {"GROUP_ID": 3, "DESCRIPTION": "Partner work"}, lambda r: r == 3, {"GROUP_ID": 0},
     "",
     "sonet-group/sonet-group-update.md"),
    ("sonet_group.delete", {"GROUP_ID": 3}, _TRUE, {"GROUP_ID": 3}, "", "sonet-group/sonet-group-delete.md"),
    ("log.blogpost.add", {"POST_MESSAGE": "Hello all", "POST_TITLE": "Hi"}, _is(int), {"POST_MESSAGE": ""},
     "SONET_CONTROLLER_LIVEFEED_BLOGPOST_ADD_ERROR", "log/log-blogpost-add.md"),
    ("log.blogpost.get", {"POST_ID": 2}, _rows("ID", "DETAIL_TEXT"), {}, "", "log/log-blogpost-get.md"),
    ("log.blogpost.update", {"POST_ID": 2, "POST_MESSAGE": "Hello everyone"}, lambda r: r == 2,
     {"POST_ID": 999},
     "SONET_CONTROLLER_LIVEFEED_BLOGPOST_UPDATE_ERROR", "log/log-blogpost-update.md"),
    ("log.blogcomment.add", {"POST_ID": 2, "TEXT": "Welcome!"}, _is(int), {"POST_ID": 999, "TEXT": "x"}, "",
     "log/blogcomment/log-blogcomment-add.md"),
    ("log.blogcomment.delete", {"COMMENT_ID": 1}, _TRUE, {"COMMENT_ID": 1}, "",
     "log/blogcomment/log-blogcomment-delete.md"),
    ("log.blogpost.delete", {"POST_ID": 2}, _TRUE, {"POST_ID": 2}, "100", "log/log-blogpost-delete.md"),
    # content
    ("disk.storage.getlist", {}, _rows("ID", "NAME", "ROOT_OBJECT_ID"), {}, "",
     "disk/storage/disk-storage-get-list.md"),
    ("disk.storage.getchildren", {"id": 1}, _rows("ID", "NAME", "TYPE"), {"id": 99}, "ERROR_NOT_FOUND",
     "disk/storage/disk-storage-get-children.md"),
    ("disk.folder.getchildren", {"id": 2}, _rows("ID", "NAME", "TYPE", "PARENT_ID"), {"id": "x"},
     "ERROR_ARGUMENT",
     "disk/folder/disk-folder-get-children.md"),
    ("disk.file.get", {"id": 3}, _keys("ID", "NAME", "SIZE", "DOWNLOAD_URL", "PARENT_ID"), {"id": 2},
     "ERROR_NOT_FOUND",
     "disk/file/disk-file-get.md"),
    ("disk.folder.addsubfolder", {"id": 1, "data": {"NAME": "Invoices"}},
     _keys("ID", "NAME", "TYPE", "PARENT_ID"),
     {"id": 1, "data": {"NAME": "Contracts"}}, "DISK_OBJ_22000", "disk/folder/disk-folder-add-subfolder.md"),
    ("disk.folder.uploadfile", {"id": 12, "data": {"NAME": "hello.txt"}, "fileContent": ["hello.txt", _B64]},
     _keys("ID", "NAME", "SIZE", "DOWNLOAD_URL"), {"id": 12, "data": {}}, "DISK_BASE_SERVICE_22001",
     "disk/folder/disk-folder-upload-file.md"),
    ("disk.file.copyto", {"id": 13, "targetFolderId": 5}, _keys("ID", "NAME", "PARENT_ID"),
     {"id": 13, "targetFolderId": 5},
     "DISK_OBJ_22000", "disk/file/disk-file-copy-to.md"),
    ("disk.file.moveto", {"id": 13, "targetFolderId": 2}, _keys("ID", "NAME", "PARENT_ID"),
     {"id": 13, "targetFolderId": 3},
     "ERROR_NOT_FOUND", "disk/file/disk-file-move-to.md"),
    ("disk.file.delete", {"id": 14}, _TRUE, {"id": 14}, "ERROR_NOT_FOUND", "disk/file/disk-file-delete.md"),
    ("documentgenerator.document.add", {"templateId": 1, "entityTypeId": 2, "entityId": 5},
     lambda r: "id" in r["document"],
     {"templateId": 1, "entityTypeId": 99, "entityId": 5}, "0",
     "crm/document-generator/documents/crm-document-generator-document-add.md"),
    # boards
    ("tasks.api.scrum.sprint.list", {"filter": {"groupId": 1}}, _rows("id", "groupId", "name", "status"),
     {"filter": "x"}, "0", "sonet-group/scrum/sprint/tasks-api-scrum-sprint-list.md"),
    ("tasks.api.scrum.sprint.add", {"fields": {"groupId": 1, "name": "Sprint 3"}},
     _keys("id", "groupId", "entityType", "name", "status", "dateStart"),
     {"fields": {"groupId": 99, "name": "x"}}, "0",
     "sonet-group/scrum/sprint/tasks-api-scrum-sprint-add.md"),
    ("tasks.api.scrum.kanban.getStages", {"sprintId": 1}, _rows("id", "name", "type", "sprintId"),
     {"sprintId": 0}, "0",
     "sonet-group/scrum/kanban/tasks-api-scrum-kanban-get-stages.md"),
    ("tasks.api.scrum.epic.list", {}, _rows("id", "groupId", "name", "color"), {"filter": "x"}, "0",
     "sonet-group/scrum/epic/tasks-api-scrum-epic-list.md"),
    ("tasks.api.scrum.epic.add", {"fields": {"groupId": 1, "name": "Payments"}},
     _keys("id", "groupId", "name"),
     {"fields": {"groupId": 1}}, "0", "sonet-group/scrum/epic/tasks-api-scrum-epic-add.md"),
    ("tasks.api.scrum.backlog.add", {"fields": {"groupId": 1}}, "0", {"fields": {"groupId": 1}}, "0",
     "sonet-group/scrum/backlog/tasks-api-scrum-backlog-add.md"),
    ("tasks.api.scrum.kanban.addTask", {"sprintId": 1, "taskId": 1, "stageId": 12}, _TRUE,
     {"sprintId": 1, "taskId": 5, "stageId": 12}, "0",
     "sonet-group/scrum/kanban/tasks-api-scrum-kanban-add-task.md"),
    ("tasks.api.scrum.task.get", {"id": 1}, lambda r: r["entityId"] == 1, {"id": 5}, "0",
     "sonet-group/scrum/task/tasks-api-scrum-task-get.md"),
    ("tasks.api.scrum.task.update", {"id": 1, "fields": {"storyPoints": "5"}}, _TRUE,
     {"id": 1, "fields": {"epicId": 999}}, "0", "sonet-group/scrum/task/tasks-api-scrum-task-update.md"),
    ("tasks.api.scrum.kanban.deleteTask", {"sprintId": 1, "taskId": 2}, _TRUE, {"sprintId": 1, "taskId": 2},
     "0",
     "sonet-group/scrum/kanban/tasks-api-scrum-kanban-delete-task.md"),
    ("tasks.api.scrum.sprint.start", {"id": 2}, "0", {"id": 2}, "0",
     "sonet-group/scrum/sprint/tasks-api-scrum-sprint-start.md"),
    ("tasks.api.scrum.sprint.complete", {"id": 1}, lambda r: r["status"] == "completed", {"id": 1}, "0",
     "sonet-group/scrum/sprint/tasks-api-scrum-sprint-complete.md"),
    # commerce
    ("catalog.catalog.list", {}, _rows("iblockId", "id", "name", "productIblockId", key="catalogs"),
     {"filter": "x"}, "0",
     "catalog/catalog/catalog-catalog-list.md"),
    ("catalog.product.list", {"select": ["id", "iblockId", "name"], "filter": {"iblockId": 23}},
     _rows("id", "iblockId", "name", key="products"), {"select": ["name"], "filter": {"iblockId": 23}}, "0",
     "catalog/product/catalog-product-list.md"),
    ("catalog.product.get", {"id": 1}, lambda r: r["product"]["name"] == "Annual license", {"id": 999}, "0",
     "catalog/product/catalog-product-get.md"),
    ("catalog.product.add", {"fields": {"iblockId": 23, "name": "Onboarding kit"}},
     lambda r: r["element"]["id"] == 6,
     {"fields": {"iblockId": 7, "name": "x"}}, "200040300000", "catalog/product/catalog-product-add.md"),
    ("catalog.product.update", {"id": 6, "fields": {"name": "Onboarding kit v2"}}, lambda r: "element" in r,
     {"id": 6}, "100", "catalog/product/catalog-product-update.md"),
    ("catalog.price.add", {"fields": {"productId": 6, "catalogGroupId": 1, "price": 99.5, "currency": "USD"}},
     lambda r: r["price"]["price"] == 99.5,
     {"fields": {"productId": 6, "catalogGroupId": 1, "price": 1, "currency": "USD"}},
     "0", "catalog/price/catalog-price-add.md"),
    ("catalog.price.list", {"filter": {"productId": 6}},
     _rows("id", "productId", "price", "currency", key="prices"),
     {"filter": "x"}, "0", "catalog/price/catalog-price-list.md"),
    ("sale.order.list", {"filter": {"payed": "N"}}, _rows("id", "price", "currency", key="orders"),
     {"filter": {"bogus": 1}},
     "0", "sale/order/sale-order-list.md"),
    ("sale.order.get", {"id": 2}, lambda r: r["order"]["id"] == 2 and "payments" in r["order"], {"id": 99},
     "201240400001",
     "sale/order/sale-order-get.md"),
    ("sale.order.add", {"fields": {"lid": "s1", "personTypeId": 1, "currency": "USD", "price": 300}},
     lambda r: r["order"]["id"] == 4, {"fields": {"lid": "s1"}}, "0", "sale/order/sale-order-add.md"),
    ("sale.order.update", {"id": 4, "fields": {"comments": "rush"}},
     lambda r: r["order"]["comments"] == "rush",
     {"id": 99, "fields": {"comments": "x"}}, "200540400001", "sale/order/sale-order-update.md"),
    ("sale.payment.add", {"fields": {"orderId": 4, "paySystemId": 1, "sum": 300, "paid": "Y"}},
     lambda r: r["payment"]["orderId"] == 4, {"fields": {"orderId": 4}}, "0",
     "sale/payment/sale-payment-add.md"),
    ("sale.payment.list", {"filter": {"orderId": 4}}, _rows("id", "orderId", "sum", "paid", key="payments"),
     {"filter": "x"}, "0", "sale/payment/sale-payment-list.md"),
    ("sale.delivery.getlist", {"FILTER": {"ACTIVE": "Y"}}, _rows("ID", "NAME", "ACTIVE"), {"FILTER": "x"},
     "ERROR_CHECK_FAILURE", "sale/delivery/delivery/sale-delivery-get-list.md"),
    # services
    ("calendar.section.get", {"type": "user", "ownerId": 1}, _rows("ID", "NAME", "CAL_TYPE", "OWNER_ID"),
     {"type": "user"}, "",
     "calendar/calendar-section-get.md"),
    ("calendar.event.add",
     {"type": "user", "ownerId": 2, "name": "Review", "from": "2026-11-03T10:00:00+03:00",
                            "to": "2026-11-03T11:00:00+03:00"}, lambda r: r == 3,
                            {"type": "user", "name": "x"}, "",
     "calendar/calendar-event/calendar-event-add.md"),
    ("calendar.event.get", {"type": "user", "ownerId": 2}, _rows("ID", "NAME", "DATE_FROM", "DATE_TO"), {},
     "",
     "calendar/calendar-event/calendar-event-get.md"),
    ("calendar.event.update", {"id": 3, "type": "user", "ownerId": 2, "name": "Review (moved)"},
     lambda r: r == 3,
     {"id": 3, "type": "user"}, "", "calendar/calendar-event/calendar-event-update.md"),
    ("calendar.accessibility.get", {"users": [2], "from": "2026-11-01", "to": "2026-11-30"},
     lambda r: [e["NAME"] for e in r["2"]] == ["Review (moved)"], {"users": [2]}, "",
     "calendar/calendar-event/calendar-accessibility-get.md"),
    ("calendar.event.delete", {"id": 3}, _TRUE, {}, "", "calendar/calendar-event/calendar-event-delete.md"),
    ("booking.v1.resource.list", {}, _rows("id", "name", key="resource"), {"filter": "x"}, "100",
     "booking/resource/booking-v1-resource-list.md"),
    ("booking.v1.booking.add", {"fields": {"resourceIds": [2], "name": "Airport run", "datePeriod": {
        "from": {"timestamp": 1800000000, "timezone": "UTC"},
        "to": {"timestamp": 1800003600, "timezone": "UTC"}}}},
     _keys("id"),
     {"fields": {"resourceIds": [2], "datePeriod": {"from": {"timestamp": 5}, "to": {"timestamp": 1}}}},
     "422", "booking/booking/booking-v1-booking-add.md"),
    ("booking.v1.booking.update", {"id": 2, "fields": {"name": "Airport run (VIP)"}}, _TRUE,
     {"id": 99, "fields": {}},
     "1019", "booking/booking/booking-v1-booking-update.md"),
    ("booking.v1.booking.list", {"filter": {"resource": [2]}},
     _rows("id", "name", "resourceIds", "datePeriod", key="booking"),
     {"filter": "x"}, "100", "booking/booking/booking-v1-booking-list.md"),
    ("timeman.status", {}, lambda r: r["STATUS"] == "CLOSED", {"USER_ID": 999}, "",
     "timeman/base/timeman-status.md"),
    ("timeman.open", {}, lambda r: r["STATUS"] == "OPENED", {"TIME": "2001-01-01T09:00:00+03:00"},
     "WRONG_DATETIME",
     "timeman/base/timeman-open.md"),
    ("timeman.close", {}, lambda r: r["STATUS"] == "CLOSED", {}, "WRONG_DATETIME",
     "timeman/base/timeman-close.md"),
    # platform
    ("ai.engine.list", {}, _rows("id", "code", "name", "category", "completions_url"), {}, "",
     "ai/ai-engine-list.md"),
    ("ai.engine.register", {"name": "Our GPT", "code": "our_gpt", "category": "text",
                            "completions_url": "https://ai.example.test/c"}, _is(int),
     {"name": "x", "code": "our_gpt", "category": "text", "completions_url": "https://ai.example.test/c"},
     "ENGINE_REGISTER_ERROR_CODE_UNIQUE", "ai/ai-engine-register.md"),
    ("ai.engine.unregister", {"code": "our_gpt"}, _TRUE, {"code": "our_gpt"}, "ENGINE_NOT_FOUND",
     "ai/ai-engine-unregister.md"),
    ("ai.prompt.register", {"code": "summary", "prompt": "Summarize: {text}"}, _is(int),
     {"code": "summary", "prompt": ""},
     "PROMPT_REGISTER_ERROR_PROMPT", "(no page: UNVERIFIED)"),
    ("entity.add", {"ENTITY": "deliveries", "NAME": "Deliveries"}, _TRUE,
     {"ENTITY": "deliveries", "NAME": "x"},
     "ERROR_ENTITY_ALREADY_EXISTS", "entity/entities/entity-add.md"),
    ("entity.get", {"ENTITY": "deliveries"}, _keys("ID", "ENTITY", "NAME"), {"ENTITY": "nothing"},
     "ERROR_ENTITY_NOT_FOUND",
     "entity/entities/entity-get.md"),
    ("entity.update", {"ENTITY": "deliveries", "NAME": "Deliveries 2026"}, _TRUE, {"ENTITY": "x" * 14},
     "ERROR_ARGUMENT",
     "entity/entities/entity-update.md"),
    ("entity.item.add", {"ENTITY": "deliveries", "NAME": "Parcel 1", "PROPERTY_VALUES": {"CITY": "Oslo"}},
     _is(int),
     {"ENTITY": "nothing", "NAME": "x"}, "ERROR_ENTITY_NOT_FOUND", "entity/items/entity-item-add.md"),
    ("entity.item.get", {"ENTITY": "deliveries", "FILTER": {"PROPERTY_CITY": "Oslo"}},
     _rows("ID", "NAME", "DATE_CREATE"),
     {"ENTITY": ""}, "ERROR_ARGUMENT", "entity/items/entity-item-get.md"),
    ("entity.item.update", {"ENTITY": "deliveries", "ID": 1, "NAME": "Parcel 1 (sent)"}, _TRUE,
     {"ENTITY": "deliveries", "ID": 99, "NAME": "x"}, "ERROR_ITEM_NOT_FOUND",
     "entity/items/entity-item-update.md"),
    ("entity.item.delete", {"ENTITY": "deliveries", "ID": 1}, _TRUE, {"ENTITY": "deliveries", "ID": 1},
     "ERROR_ITEM_NOT_FOUND", "entity/items/entity-item-delete.md"),
    ("biconnector.connector.list", {}, _rows("id", "title"), {"select": ["secret"]},
     "VALIDATION_FIELD_NOT_ALLOWED_IN_SELECT", "biconnector/connector/biconnector-connector-list.md"),
    ("biconnector.source.add",
     {"fields": {"title": "Warehouse DB", "connectorId": 1, "settings": {"host": "db"}}},
     _keys("id"), {"fields": {"title": "x", "connectorId": 99, "settings": {"a": 1}}}, "CONNECTOR_NOT_FOUND",
     "biconnector/source/biconnector-source-add.md"),
    ("biconnector.source.list", {}, _rows("id", "title", "active"), {"filter": {"secret": 1}},
     "VALIDATION_FIELD_NOT_ALLOWED_IN_FILTER", "biconnector/source/biconnector-source-list.md"),
    # sites
    ("landing.site.getList", {"params": {"select": ["ID", "TITLE"]}}, _rows("ID", "TITLE"), {"params": "x"},
     "TYPE_ERROR",
     "landing/site/landing-site-get-list.md"),
    ("landing.site.add", {"fields": {"TITLE": "Spring sale", "CODE": "spring"}}, lambda r: r == 2,
     {"fields": {"TITLE": "x", "CODE": "a/b"}}, "SLASH_IS_NOT_ALLOWED", "landing/site/landing-site-add.md"),
    ("landing.site.update", {"id": 2, "fields": {"TITLE": "Spring sale 2027"}}, _TRUE, {"fields": {}},
     "MISSING_PARAMS",
     "landing/site/landing-site-update.md"),
    ("landing.landing.add", {"fields": {"TITLE": "Offer", "SITE_ID": 2, "CODE": "offer"}}, lambda r: r == 3,
     {"fields": {"TITLE": "x", "SITE_ID": 99}}, "SITE_NOT_FOUND",
     "landing/page/methods/landing-landing-add.md"),
    ("landing.landing.update", {"lid": 3, "fields": {"TITLE": "Spring offer"}}, _TRUE, {"fields": {}},
     "MISSING_PARAMS",
     "landing/page/methods/landing-landing-update.md"),
    ("landing.landing.getList", {"params": {"filter": {"SITE_ID": 2}}}, _rows("ID", "TITLE", "SITE_ID"),
     {"params": "x"},
     "TYPE_ERROR", "landing/page/methods/landing-landing-get-list.md"),
    ("landing.landing.publication", {"lid": 1}, _TRUE, {"lid": 99}, "LANDING_NOT_EXIST",
     "landing/page/methods/landing-landing-publication.md"),
    ("landing.block.getList", {"lid": 1}, _rows("id", "lid", "code", "content"), {}, "MISSING_PARAMS",
     "landing/block/methods/landing-block-get-list.md"),
    ("landing.block.addCard",
     {"lid": 1, "block": 1, "selector": ".landing-block-card@0", "content": "<div>New</div>"},
     _TRUE, {"lid": 1, "block": 1, "selector": ".nothing@0", "content": "x"}, "CARD_NOT_FOUND",
     "landing/block/methods/landing-block-add-card.md"),
    ("landing.site.delete", {"id": 2}, "SITE_IS_NOT_EMPTY", {"id": 2}, "SITE_IS_NOT_EMPTY",
     "landing/site/landing-site-delete.md"),
    ("landing.landing.delete", {"lid": 3}, _TRUE, {"lid": 3}, "LANDING_NOT_EXIST",
     "landing/page/methods/landing-landing-delete.md"),
    # compliance
    ("userconsent.agreement.list", {}, _rows("ID", "NAME", "ACTIVE", "LANGUAGE_ID"), {}, "",
     "user-consent/user-consent-agreement-list.md"),
    ("userconsent.agreement.text", {"ID": 1}, _keys("LABEL", "TEXT"), {"ID": 999}, "ERROR_ARGUMENT",
     "user-consent/user-consent-agreement-text.md"),
    ("userconsent.consent.add", {"AGREEMENT_ID": 1, "IP": "203.0.113.5"}, _is(int), {"IP": "203.0.113.5"},
     "ERROR_ARGUMENT",
     "user-consent/user-consent-consent-add.md"),
    ("sign.b2e.personal.tail", {}, _rows("id", "title", "signed_date", "file_url"), {}, "",
     "sign/sign-b2e-personal-tail.md"),
    ("sign.b2e.mysafe.tail", {"limit": 5}, _rows("id", "title", "role", "file_url"), {}, "",
     "sign/sign-b2e-mysafe-tail.md"),
]
# fmt: on


class _Raw:
    """Calls the portal over its HTTP handler, as an application (OAuth token) or a webhook: the envelope
    as sent."""

    def __init__(self, portal: Portal, *, webhook: bool = False) -> None:
        self.portal = portal
        if webhook:
            self.base = portal.webhook_url
            self.auth: dict[str, Any] = {}
        else:
            tokens = portal.install_app(portal.register_app())
            self.base = tokens["client_endpoint"]
            self.auth = {"auth": tokens["access_token"]}

    def call(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        body = json.dumps({**params, **self.auth}).encode()
        status, _, raw, _ = self.portal.handle(
            "POST", f"{self.base.rstrip('/')}/{method}.json", {"content-type": "application/json"}, body
        )
        return status, json.loads(raw)


def test_every_catalog_method_of_every_pack_is_emulated() -> None:
    missing = [
        m
        for pack in PACKS.values()
        for m in pack.catalog
        if m.lower() not in METHODS and not m.lower().startswith("event") and m.lower() != "batch"
    ]
    assert missing == []


def test_the_cases_cover_every_method_of_the_packs_beyond_core() -> None:
    covered = {m.lower() for m, *_ in CASES}
    beyond = {
        m.lower() for name, pack in PACKS.items() if name not in ("core", "diagnostics") for m in pack.catalog
    }
    assert beyond - covered == set(), sorted(beyond - covered)


def test_each_method_answers_the_documented_shape_and_refuses_a_bad_call(portal: Portal) -> None:
    """One portal, the cases in order (a case may read what an earlier one wrote). A check given as a string
    is the error code the docs give for that call in that state (e.g. a second backlog for the same group)."""
    portal.state["message"][1] = {"id": 1, "dialogId": "2", "text": "hello", "authorId": 1}
    portal.state["message"][2] = {"id": 2, "dialogId": "2", "text": "/echo hi", "authorId": 2}
    portal._ids["message"] = 2
    app = _Raw(portal)
    failures = []
    for method, good, check, bad, code, page in CASES:
        status, envelope = app.call(method, good)
        if isinstance(check, str):
            if envelope.get("error") != check or status < 400:
                failures.append(
                    f"{method} ({page}): expected error {check!r}, got {status} {str(envelope)[:200]}"
                )
        elif "error" in envelope or status != 200 or not check(envelope["result"]):
            failures.append(f"{method} ({page}): {status} {str(envelope)[:200]}")
        if bad or code:
            status, envelope = app.call(method, bad)
            if envelope.get("error") != code or status < 400 or "error_description" not in envelope:
                failures.append(
                    f"{method} ({page}): bad call gave {status} {str(envelope)[:160]}, docs say {code!r}"
                )
    assert failures == [], "\n".join(failures)


@pytest.mark.parametrize(
    ("method", "params", "code", "status"),
    [
        ("messageservice.sender.list", {}, "ACCESS_DENIED", 403),  # messageservice-sender-list.md
        ("imconnector.list", {}, "WRONG_AUTH_TYPE", 401),  # imconnector-list.md
        (
            "bizproc.robot.list",
            {},
            "ACCESS_DENIED",
            403,
        ),  # bizproc-robot-list.md: Application context required
        ("entity.get", {"ENTITY": "x"}, "ACCESS_DENIED", 403),  # entity-get.md: Application context required
        ("sign.b2e.personal.tail", {}, "WRONG_AUTH_TYPE", 401),  # sign-b2e-personal-tail.md
        (
            "imbot.register",
            {"CODE": "b", "EVENT_HANDLER": "https://h.test/", "PROPERTIES": {"NAME": "B"}},
            "ACCESS_DENIED",
            403,
        ),
    ],
)
def test_methods_that_need_an_application_refuse_a_webhook(
    portal: Portal, method: str, params: dict[str, Any], code: str, status: int
) -> None:
    """Each method's page says "Application context required" (the row's comment names it)."""
    got_status, envelope = _Raw(portal, webhook=True).call(method, params)
    assert (got_status, envelope.get("error")) == (status, code)


def test_a_webhook_bot_names_its_client_id(portal: Portal) -> None:
    """imbot-register.md: a webhook registers a bot with CLIENT_ID, and must give the same CLIENT_ID to use
    it."""
    hook = _Raw(portal, webhook=True)
    _, bot = hook.call(
        "imbot.register",
        {"CODE": "b", "CLIENT_ID": "cid1", "EVENT_HANDLER": "https://h.test/", "PROPERTIES": {"NAME": "B"}},
    )
    assert isinstance(bot["result"], int)
    _, other = hook.call(
        "imbot.message.add", {"BOT_ID": bot["result"], "CLIENT_ID": "cid2", "DIALOG_ID": "1", "MESSAGE": "x"}
    )
    assert other["error"] == "APP_ID_ERROR"


def test_an_uploaded_file_is_listed_then_moved_and_copied(portal: Portal) -> None:
    """disk/folder/disk-folder-upload-file.md (fileContent, generateUniqueName), disk-folder-get-children.md,
    disk/file/disk-file-move-to.md and disk-file-copy-to.md."""
    app = _Raw(portal)
    content = base64.b64encode(b"Q3 numbers").decode()
    _, up = app.call(
        "disk.folder.uploadfile", {"id": 5, "data": {"NAME": "q3.txt"}, "fileContent": ["q3.txt", content]}
    )
    file_id = up["result"]["ID"]
    _, listed = app.call("disk.folder.getchildren", {"id": 5})
    assert [f["NAME"] for f in listed["result"]] == ["q3.txt"] and listed["result"][0]["SIZE"] == "10"
    app.call("disk.file.moveto", {"id": file_id, "targetFolderId": 2})
    _, copied = app.call("disk.file.copyto", {"id": file_id, "targetFolderId": 5})
    names = {
        folder: [f["NAME"] for f in app.call("disk.folder.getchildren", {"id": folder})[1]["result"]]
        for folder in (2, 5)
    }
    assert "q3.txt" in names[2] and names[5] == ["q3.txt"] and copied["result"]["ID"] != file_id
    _, duplicate = app.call(
        "disk.folder.uploadfile",
        {"id": 5, "data": {"NAME": "q3.txt"}, "fileContent": ["q3.txt", content], "generateUniqueName": True},
    )
    assert duplicate["result"]["NAME"] == "q3 (1).txt"


def test_a_started_workflow_is_listed_until_terminated(portal: Portal) -> None:
    """bizproc/bizproc-workflow-start.md, bizproc-workflow-instances.md, bizproc-workflow-terminate.md."""
    app = _Raw(portal)
    _, started = app.call(
        "bizproc.workflow.start", {"TEMPLATE_ID": 2, "DOCUMENT_ID": ["crm", "CCrmDocumentLead", "LEAD_4"]}
    )
    ids = lambda: [w["ID"] for w in app.call("bizproc.workflow.instances", {})[1]["result"]]  # noqa: E731
    assert started["result"] in ids()
    app.call("bizproc.workflow.terminate", {"ID": started["result"]})
    assert started["result"] not in ids()


def test_an_order_lists_its_payments_and_is_paid_when_they_cover_it(portal: Portal) -> None:
    """sale/order/sale-order-get.md (payments of the order, payed), sale/payment/sale-payment-add.md."""
    app = _Raw(portal)
    _, order = app.call("sale.order.get", {"id": 2})
    assert order["result"]["order"]["payed"] == "N"
    app.call(
        "sale.payment.add",
        {"fields": {"orderId": 2, "paySystemId": 3, "sum": order["result"]["order"]["price"], "paid": "Y"}},
    )
    _, after = app.call("sale.order.get", {"id": 2})
    assert after["result"]["order"]["payed"] == "Y" and len(after["result"]["order"]["payments"]) == 2


def test_a_published_page_reports_it(portal: Portal) -> None:
    """landing/page/methods/landing-landing-publication.md, landing-landing-get-list.md,
    landing/site/landing-site-get-list.md."""
    app = _Raw(portal)
    app.call("landing.landing.publication", {"lid": 2})
    _, pages = app.call("landing.landing.getList", {"params": {"filter": {"ID": 2}}})
    assert pages["result"][0]["PUBLIC"] == "Y" and pages["result"][0]["DATE_PUBLIC"]
    _, sites = app.call("landing.site.getList", {})
    assert sites["result"][0]["ACTIVE"] == "Y"


def test_a_booking_takes_the_slot_and_opening_the_day_changes_the_status(portal: Portal) -> None:
    """booking/booking/booking-v1-booking-list.md (filter resource, within), timeman/base/timeman-open.md and
    timeman-status.md."""
    app = _Raw(portal)
    slot = {
        "from": {"timestamp": 1800000000, "timezone": "UTC"},
        "to": {"timestamp": 1800001800, "timezone": "UTC"},
    }
    app.call(
        "booking.v1.booking.add",
        {"fields": {"resourceIds": [1], "name": "Board meeting", "datePeriod": slot}},
    )
    _, busy = app.call(
        "booking.v1.booking.list",
        {"filter": {"resource": [1], "within": {"dateFrom": 1800000600, "dateTo": 1800000900}}},
    )
    assert [b["name"] for b in busy["result"]["booking"]] == ["Board meeting"]
    assert app.call("timeman.status", {})[1]["result"]["STATUS"] == "CLOSED"
    app.call("timeman.open", {})
    assert app.call("timeman.status", {})[1]["result"]["STATUS"] == "OPENED"


def test_seeded_titles_agree_with_the_records_they_name(portal: Portal) -> None:
    """A deal titled "... for <company>" belongs to that company (an agent searching by title finds the
    right one)."""
    companies = {c["ID"]: c["TITLE"] for c in portal.state["company"].values()}
    for deal in portal.state["deal"].values():
        assert deal["TITLE"].endswith(f" for {companies[deal['COMPANY_ID']]}")
