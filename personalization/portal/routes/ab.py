"""A/B results per campaign and variant: verdicts, intervals, lift vs holdout, date filter."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Depends, Request

from personalization.portal import store
from personalization.portal.abtest import CONVERSION_DAYS, campaign_results
from personalization.portal.auth import current_user
from personalization.portal.users import User
from personalization.portal.web import render, settings_of

router = APIRouter()


@router.get("/ab")
def ab_page(request: Request, ds: str = "latest", since: date | None = None,
            until: date | None = None, user: User = Depends(current_user)):
    settings = settings_of(request)
    export = store.load_export(settings, ds)
    return render(request, "ab.html", export=export, since=since, until=until,
                  campaigns=campaign_results(settings, export, since=since, until=until),
                  conversion_days=CONVERSION_DAYS)
