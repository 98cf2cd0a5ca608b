"""The content pack's typed tools: the drives and a folder's contents, find a file or folder by name, upload a
file from text, a local path or a URL, download a file to a local path. File bytes never pass through the
model: a local path is read (and a download written) inside the toolbox's ``files_dir`` only."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from bitrix24_agent_tools.client.errors import Bitrix24Error
from bitrix24_agent_tools.packs.base import Call, Fetch, HandlerGen, ToolContext, ToolSpec
from bitrix24_agent_tools.packs.render import done_output, rows_output

_COLUMNS = ["ID", "NAME", "TYPE", "SIZE", "PARENT_ID", "UPDATE_TIME"]
_MAX_FOLDERS = 40  # folders one search reads at most (each is a call)


class FolderArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: int | None = Field(None, gt=0, description="folder id; none: the drives and their root folders")


def folder_list(ctx: ToolContext, args: FolderArgs) -> HandlerGen:
    if args.id is None:  # disk/storage/disk-storage-get-list.md: ROOT_OBJECT_ID is the drive's root folder
        response = yield Call("disk.storage.getlist", {})
        rows = [
            {
                "ID": r.get("ROOT_OBJECT_ID"),
                "NAME": r.get("NAME"),
                "TYPE": "drive",
                "OWNER": r.get("ENTITY_TYPE"),
            }
            for r in response.result or []
        ]
        return rows_output(ctx, rows, searched="the drives you can see")
    response = yield Call("disk.folder.getchildren", {"id": args.id})
    return rows_output(
        ctx, list(response.result or []), fields=_COLUMNS, searched=f"folder #{args.id}", total=response.total
    )


class FindArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255, description="part of the name")
    folder_id: int | None = Field(None, gt=0, description="search under; default: every drive")


def drive_find(ctx: ToolContext, args: FindArgs) -> HandlerGen:
    """Files and folders whose name contains ``name`` (any case), breadth first from the folder or from every
    drive's root, reading at most 40 folders (said when the search stopped early)."""
    if args.folder_id is not None:
        queue = [args.folder_id]
    else:
        storages = yield Call("disk.storage.getlist", {})
        queue = [int(s["ROOT_OBJECT_ID"]) for s in storages.result or [] if s.get("ROOT_OBJECT_ID")]
    needle = args.name.casefold()
    found: list[dict[str, Any]] = []
    read = 0
    while queue and read < _MAX_FOLDERS:
        folder = queue.pop(0)
        response = yield Call("disk.folder.getchildren", {"id": folder})
        read += 1
        for row in response.result or []:
            if needle in str(row.get("NAME", "")).casefold():
                found.append(row)
            if row.get("TYPE") == "folder":
                queue.append(int(row["ID"]))
    where = f"folder #{args.folder_id}" if args.folder_id else "every drive"
    out = rows_output(ctx, found, fields=_COLUMNS, searched=f"names containing {args.name!r} in {where}")
    if queue:
        return done_output(
            out.content[:-1] + f',"note":"stopped after {read} folders; give folder_id to search deeper"}}',
            found,
        )
    return out


def files_dir(ctx: ToolContext) -> Path:
    """The one local folder file tools may use: ``Toolbox(files_dir=...)`` or ``B24_FILES_DIR``."""
    where = ctx.extra.get("files_dir") or os.environ.get("B24_FILES_DIR")
    if not where:
        raise ValueError(
            "local files are not enabled: the operator sets files_dir "
            "(Toolbox(files_dir=...) or B24_FILES_DIR)"
        )
    return Path(str(where)).expanduser().resolve()


def local_path(ctx: ToolContext, path: str) -> Path:
    """``path`` inside ``files_dir`` (relative to it, or absolute within it); anything outside is refused."""
    root = files_dir(ctx)
    target = (root / path).resolve()
    if target != root and root not in target.parents:
        raise ValueError(f"{path!r} is outside the files folder {root}")
    return target


class UploadArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    folder_id: int = Field(gt=0)
    name: str | None = Field(
        None, min_length=1, max_length=255, pattern=r"^[^/\\]+$", description="default: the source's"
    )
    text: str | None = Field(None, description="the file's text")
    path: str | None = Field(None, description="or a local file")
    url: str | None = Field(None, description="or a web address")


def file_upload(ctx: ToolContext, args: UploadArgs) -> HandlerGen:
    """disk.folder.uploadfile with ``fileContent`` [name, base64] (disk-folder-upload-file.md), after checking
    that the folder exists and holds no file of that name (the portal would refuse with DISK_OBJ_22000)."""
    sources = [s for s in (args.text, args.path, args.url) if s is not None]
    if len(sources) != 1:
        raise ValueError("give the file's content one way: text, path (a local file) or url")
    if args.path is not None:
        source = local_path(ctx, args.path)
        if not source.is_file():
            raise ValueError(f"no file {args.path!r} in the files folder")
        raw = source.read_bytes()
        name = args.name or source.name
    elif args.url is not None:
        raw = yield Fetch(args.url, portal=False)
        name = args.name or unquote(urlsplit(args.url).path.rsplit("/", 1)[-1])
        if not name:
            raise ValueError("the URL names no file: give name")
    else:
        raw = (args.text or "").encode()
        if not args.name:
            raise ValueError("give the file's name")
        name = args.name
    try:
        listing = yield Call("disk.folder.getchildren", {"id": args.folder_id, "filter": {"NAME": name}})
    except Bitrix24Error:
        raise ValueError(
            f"folder #{args.folder_id} does not exist or is not yours (see b24_folder_list)"
        ) from None
    taken = [row for row in listing.result or [] if str(row.get("NAME", "")).lower() == name.lower()]
    if taken:
        raise ValueError(
            f"folder #{args.folder_id} already has '{name}' (#{taken[0].get('ID')}): choose another name"
        )
    response = yield Call(
        "disk.folder.uploadfile",
        {"id": args.folder_id, "data": {"NAME": name}, "fileContent": [name, base64.b64encode(raw).decode()]},
    )
    record = response.result or {}
    return done_output(
        f"uploaded '{record.get('NAME', name)}' (#{record.get('ID')}, {len(raw)} bytes) "
        f"to folder #{args.folder_id}",
        record,
    )


class DownloadArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file_id: int = Field(gt=0)
    path: str | None = Field(None, description="local path; default: the file's name")


def file_download(ctx: ToolContext, args: DownloadArgs) -> HandlerGen:
    """disk.file.get's ``DOWNLOAD_URL`` (disk-file-get.md), fetched by the client on the portal's host and
    written inside ``files_dir``; an existing local file is never overwritten."""
    files_dir(ctx)  # refused before any call when local files are off
    response = yield Call("disk.file.get", {"id": args.file_id})
    record = response.result or {}
    url = record.get("DOWNLOAD_URL")
    if not url:
        raise ValueError(f"#{args.file_id} is not a file (a folder has no download)")
    target = local_path(ctx, args.path or str(record.get("NAME") or f"file-{args.file_id}"))
    if target.exists():
        raise ValueError(f"{target.name} already exists locally: give another path")
    data = yield Fetch(str(url))
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:  # "x": never over a file that appeared meanwhile
        out.write(data)
    return done_output(
        f"downloaded '{record.get('NAME')}' (#{args.file_id}, {len(data)} bytes) to {target}",
        {"id": args.file_id, "name": record.get("NAME"), "path": str(target), "size": len(data)},
    )


def specs() -> list[ToolSpec]:
    return [
        ToolSpec(
            "b24_folder_list",
            "List a Drive folder, or the drives.",
            FolderArgs,
            "read",
            ("disk.folder.getchildren", "disk.storage.getlist"),
            folder_list,
            "content",
        ),
        ToolSpec(
            "b24_drive_find",
            "Find Drive files and folders by name.",
            FindArgs,
            "read",
            ("disk.folder.getchildren", "disk.storage.getlist"),
            drive_find,
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
        ToolSpec(
            "b24_file_download",
            "Download a Drive file to a local path.",
            DownloadArgs,
            "read",
            ("disk.file.get",),
            file_download,
            "content",
        ),
    ]
