"""Segment pages: definition, size over time, entered/left per day, a sample of members."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from personalization.portal import charts, store
from personalization.portal.auth import current_user
from personalization.portal.emails import NOT_TAGS
from personalization.portal.users import User
from personalization.portal.web import render, settings_of

router = APIRouter()
SAMPLE_SIZE = 20


@router.get("/segments")
def segments_list(request: Request, user: User = Depends(current_user)):
    settings = settings_of(request)
    export = store.load_export(settings, "latest")
    return render(request, "segments.html", export=export)


@router.get("/segments/{name}")
def segment_page(request: Request, name: str, ds: str = "latest",
                 page: int = Query(0, ge=0, le=2**31), user: User = Depends(current_user)):
    settings = settings_of(request)
    export = store.load_export(settings, ds)
    seg = export.segment(name) if export else None
    if export is None or seg is None:
        raise HTTPException(404, "no such segment in this export")
    history = store.segment_history(settings, name)
    # Past the end: the last page (the manifest knows the row count).
    page = min(page, max(int(seg.get("rows") or 0) - 1, 0) // SAMPLE_SIZE)
    sample = store.members(export, name, limit=SAMPLE_SIZE, offset=page * SAMPLE_SIZE)
    columns = [c for c in (sample[0].keys() if sample else []) if c not in NOT_TAGS]
    return render(
        request, "segment.html", export=export, seg=seg, history=history, sample=sample,
        columns=columns, page=page, page_size=SAMPLE_SIZE,
        size_chart=charts.line_chart([(h["ds"], h["rows"]) for h in history],
                                     f"{name}: exported contacts per day"),
        delta_chart=charts.delta_chart([(h["ds"], h["added"], h["removed"]) for h in history],
                                       f"{name}: entered and left per day"))
