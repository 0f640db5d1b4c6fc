"""Quality-gate results and Data Docs (static, read-only), model cards."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from personalization.portal import store
from personalization.portal.auth import current_user
from personalization.portal.datadocs import render_offline
from personalization.portal.markdown import render as render_markdown
from personalization.portal.security import safe_child
from personalization.portal.users import User
from personalization.portal.web import render, settings_of

router = APIRouter()
# Data Docs pages are rewritten to run no script at all (datadocs.py); GX's inline styles stay.
DOCS_CSP = ("default-src 'self'; script-src 'none'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; font-src 'self'; frame-ancestors 'self'; base-uri 'none'; "
            "form-action 'self'")


@router.get("/quality")
def quality_page(request: Request, user: User = Depends(current_user)):
    settings = settings_of(request)
    runs = [(ds, store.gate_results(settings, ds)) for ds in store.export_dates(settings)]
    has_docs = (settings.quality_dir / "data_docs" / "index.html").is_file()
    return render(request, "quality.html", runs=runs, has_docs=has_docs)


@router.get("/quality/docs/{relative:path}")
def data_docs(request: Request, relative: str = "", user: User = Depends(current_user)):
    root = settings_of(request).quality_dir / "data_docs"
    path = safe_child(root, relative or "index.html") if root.is_dir() else None
    if path is None:
        raise HTTPException(404, "no such Data Docs page")
    headers = {"Content-Security-Policy": DOCS_CSP}
    if path.suffix == ".html":
        return HTMLResponse(render_offline(path.read_text(encoding="utf-8")), headers=headers)
    return FileResponse(path, headers=headers)


@router.get("/models")
def models_page(request: Request, user: User = Depends(current_user)):
    return render(request, "models.html", cards=store.model_cards(settings_of(request)))


@router.get("/models/{model}/{version}")
def model_card_page(request: Request, model: str, version: str, user: User = Depends(current_user)):
    text = store.model_card(settings_of(request), model, version)
    if text is None:
        raise HTTPException(404, "no such model card")
    return render(request, "model_card.html", model=model, version=version,
                  card_html=render_markdown(text))
