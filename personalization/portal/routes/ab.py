"""A/B results per campaign and variant, with lift, p-value and the holdout baseline."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from personalization.portal import store
from personalization.portal.abtest import CONVERSION_DAYS, campaign_results
from personalization.portal.auth import current_user
from personalization.portal.users import User
from personalization.portal.web import render, settings_of

router = APIRouter()


@router.get("/ab")
def ab_page(request: Request, ds: str = "latest", user: User = Depends(current_user)):
    settings = settings_of(request)
    export = store.load_export(settings, ds)
    return render(request, "ab.html", export=export, campaigns=campaign_results(settings, export),
                  conversion_days=CONVERSION_DAYS)
