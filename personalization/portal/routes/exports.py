"""Exports by date: status, row counts, downloads (single files and a streamed zip)."""

from __future__ import annotations

import csv
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, StreamingResponse

from personalization.exceptions import ExportError
from personalization.export import mailable
from personalization.observability import log_event
from personalization.portal import store
from personalization.portal.auth import current_user
from personalization.portal.changes import what_changed
from personalization.portal.security import is_ds
from personalization.portal.users import User
from personalization.portal.web import render, settings_of

logger = logging.getLogger(__name__)
router = APIRouter()

# Not for marketers' downloads: erasure emails are for the ESP sync only.
EXCLUDED_FROM_DOWNLOAD = {"erasures.csv"}
_CHUNK = 1 << 20


@router.get("/")
def exports_list(request: Request, user: User = Depends(current_user)):
    settings = settings_of(request)
    exports = store.all_exports(settings)
    latest = store.load_export(settings, "latest")
    return render(request, "exports.html", exports=exports, latest=latest.ds if latest else None,
                  people={e.ds: store.unique_people(e) for e in exports},
                  changes=what_changed(settings, latest) if latest else [])


def _export_or_404(request: Request, ds: str) -> store.Export:
    export = store.load_export(settings_of(request), ds)
    if export is None:
        raise HTTPException(404, "no such export")
    return export


@router.get("/exports/{ds}")
def export_detail(request: Request, ds: str, user: User = Depends(current_user)):
    export = _export_or_404(request, ds)
    changes = {c.name: c for c in what_changed(settings_of(request), export)}
    return render(request, "export.html", export=export, presets=mailable.load_presets(),
                  changes=changes, people=store.unique_people(export))


def _downloadable(export: store.Export) -> set[str]:
    """Files a marketer may download: the manifest and every file it lists for a segment."""
    allowed = {"manifest.json"}
    for seg in export.segments:
        for entry in (seg.get("files") or {}).values():
            if isinstance(entry, dict) and entry.get("path"):
                allowed.add(str(entry["path"]))
    return allowed - EXCLUDED_FROM_DOWNLOAD


@router.get("/exports/{ds}/files/{relative:path}")
def download(request: Request, ds: str, relative: str, user: User = Depends(current_user)):
    settings = settings_of(request)
    # The path is checked on its own (resolved, must stay inside the export folder) before
    # it is compared with the manifest: a manifest is data, not a security boundary.
    path = store.download_path(settings, ds, relative)
    export = store.load_export(settings, ds) if path else None
    if path is None or export is None or path.relative_to(export.path).as_posix() not in _downloadable(export):
        log_event(logger, "portal_download_refused", level=logging.WARNING,
                  ds=ds if is_ds(ds) else "invalid", reason="outside export or not listed")
        raise HTTPException(404, "no such file")
    log_event(logger, "portal_download", ds=export.ds, file=path.relative_to(export.path).as_posix())
    media = "text/csv" if path.suffix == ".csv" else None
    return FileResponse(path, media_type=media, filename=f"{export.ds}_{path.name}")


def _renamed_csv(path: Path, preset: str) -> Iterator[bytes]:
    """The file with its header line renamed for `preset`, streamed in chunks."""
    with path.open("rb") as fh:
        header = next(csv.reader([fh.readline().decode("utf-8")]))
        yield mailable.header_line(mailable.preset_header(header, preset))
        while chunk := fh.read(_CHUNK):
            yield chunk


@router.get("/exports/{ds}/mailable/{segment}.csv")
def download_mailable(request: Request, ds: str, segment: str, preset: str = "generic",
                      user: User = Depends(current_user)):
    """The segment's mailable list (no holdout), columns named for an ESP's CSV import."""
    export = _export_or_404(request, ds)
    entry = ((export.segment(segment) or {}).get("files") or {}).get("mailable") or {}
    path = store.download_path(settings_of(request), export.ds, str(entry.get("path", "")))
    if path is None:
        raise HTTPException(404, "this export has no mailable file for that segment "
                                 "(exports published before mailable files existed: rerun it)")
    try:
        mailable.preset_header([], preset)
    except ExportError:
        raise HTTPException(422, f"unknown import preset; choose one of "
                                 f"{', '.join(mailable.load_presets())}") from None
    log_event(logger, "portal_download_mailable", ds=export.ds, segment=segment, preset=preset)
    name = f"{export.ds}_{segment}_mailable{'' if preset == 'generic' else '_' + preset}.csv"
    return StreamingResponse(_renamed_csv(path, preset), media_type="text/csv",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


class _Sink:
    """A write-only file object whose bytes are collected and drained by the generator."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def zip_stream(root: Path, files: list[str]) -> Iterator[bytes]:
    """Zip `files` (relative to `root`) chunk by chunk, never holding the archive in memory."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:  # type: ignore[arg-type]
        for rel in files:
            with (root / rel).open("rb") as src, zf.open(rel, "w", force_zip64=True) as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
                    yield sink.drain()
            yield sink.drain()
    yield sink.drain()


@router.get("/exports/{ds}/download.zip")
def download_zip(request: Request, ds: str, user: User = Depends(current_user)):
    export = _export_or_404(request, ds)
    files = sorted(rel for rel in _downloadable(export)
                   if store.download_path(settings_of(request), export.ds, rel) is not None)
    log_event(logger, "portal_download_zip", ds=export.ds, files=len(files))
    return StreamingResponse(
        zip_stream(export.path, files), media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="export_{export.ds}.zip"'})
