"""The content pack's typed tools: list a Drive folder, upload a file."""

from __future__ import annotations

import base64
import binascii

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.client.errors import Bitrix24Error
from bitrix24_agent_tools.packs.base import Call, HandlerGen, ToolContext, ToolSpec
from bitrix24_agent_tools.packs.render import done_output, rows_output


class FolderArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int = Field(gt=0)


def folder_list(ctx: ToolContext, args: FolderArgs) -> HandlerGen:
    response = yield Call("disk.folder.getchildren", {"id": args.id})
    return rows_output(ctx, list(response.result or []), fields=["ID", "NAME", "TYPE", "SIZE"])


class UploadArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    folder_id: int = Field(gt=0)
    name: str = Field(min_length=1, max_length=255, pattern=r"^[^/\\]+$")
    text: str | None = Field(None, description="the file's text")
    base64: str | None = Field(None, description="or its bytes, base64")


def file_upload(ctx: ToolContext, args: UploadArgs) -> HandlerGen:
    """disk.folder.uploadfile with ``fileContent`` [name, base64] (disk-folder-upload-file.md), after checking
    that the folder exists and holds no file of that name (the portal would refuse with DISK_OBJ_22000)."""
    if (args.text is None) == (args.base64 is None):
        raise ValueError("give the file's content as text or as base64, one of them")
    if args.base64 is not None:
        try:
            raw = base64.b64decode(args.base64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("base64 is not valid base64") from None
    else:
        raw = (args.text or "").encode()
    try:
        listing = yield Call("disk.folder.getchildren", {"id": args.folder_id, "filter": {"NAME": args.name}})
    except Bitrix24Error:
        raise ValueError(
            f"folder #{args.folder_id} does not exist or is not yours (see b24_folder_list)"
        ) from None
    taken = [row for row in listing.result or [] if str(row.get("NAME", "")).lower() == args.name.lower()]
    if taken:
        raise ValueError(
            f"folder #{args.folder_id} already has '{args.name}' (#{taken[0].get('ID')}): choose another name"
        )
    response = yield Call(
        "disk.folder.uploadfile",
        {
            "id": args.folder_id,
            "data": {"NAME": args.name},
            "fileContent": [args.name, base64.b64encode(raw).decode()],
        },
    )
    record = response.result or {}
    return done_output(
        f"uploaded '{record.get('NAME', args.name)}' (#{record.get('ID')}, {len(raw)} bytes) "
        f"to folder #{args.folder_id}",
        record,
    )


def specs() -> list[ToolSpec]:
    return [
        ToolSpec(
            "b24_folder_list",
            "List a Drive folder.",
            FolderArgs,
            "read",
            ("disk.folder.getchildren",),
            folder_list,
            "content",
        ),
        ToolSpec(
            "b24_file_upload",
            "Upload a file to a Drive folder.",
            UploadArgs,
            "write",
            ("disk.folder.uploadfile", "disk.folder.getchildren"),
            file_upload,
            "content",
        ),
    ]
