"""Model registry on disk: `<models_dir>/<model>/<version>/{model.joblib, metadata.json,
model_card.md}`.

A version is written to a temporary directory next to its final place and renamed into it,
so readers never see half a version. Versions are `<training ds as YYYYMMDD>-<data hash>`:
retraining the same date on the same data gives the same version (and replaces it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import joblib

from personalization.exceptions import ScoringError

logger = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
CARD_FILE = "model_card.md"


def make_version(trained_ds: date, content_hash: str) -> str:
    """Deterministic version string from the training date and the data hash."""
    return f"{trained_ds:%Y%m%d}-{content_hash[:12]}"


def save_version(models_dir: Path, model: str, version: str, metadata: dict[str, Any],
                 card: str, estimator: Any | None = None) -> Path:
    """Write one version atomically (temp directory + rename); replaces an identical version.

    Returns:
        The version's directory.
    """
    parent = Path(models_dir) / model
    parent.mkdir(parents=True, exist_ok=True)
    final = parent / version
    tmp = parent / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        if estimator is not None:
            joblib.dump(estimator, tmp / MODEL_FILE)
        (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True,
                                                    default=str))
        (tmp / CARD_FILE).write_text(card)
        if final.exists():
            old = parent / f".old-{version}-{os.getpid()}"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ScoringError(f"cannot write model version {final}: {e}") from e
    return final


def list_versions(models_dir: Path, model: str, as_of: date | None = None) -> list[dict]:
    """Metadata of every stored version, oldest first; only those trained on or before `as_of`.

    A backfill of an old date must not use a model trained on later data.
    """
    parent = Path(models_dir) / model
    if not parent.exists():
        return []
    found = []
    for meta_path in parent.glob(f"*/{METADATA_FILE}"):
        if meta_path.parent.name.startswith("."):
            continue
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            logger.warning("skipping unreadable model metadata %s: %s", meta_path, e)
            continue
        if as_of is not None and date.fromisoformat(meta["trained_ds"]) > as_of:
            continue
        found.append(meta)
    return sorted(found, key=lambda m: (m["trained_ds"], m["version"]))


def select_version(models_dir: Path, model: str, as_of: date) -> tuple[dict | None, str]:
    """The version scoring should use, and why.

    Latest approved version trained on or before `as_of`; if none is approved, the latest
    version (with the reason saying so); if there is none at all, `(None, reason)`.
    """
    versions = [v for v in list_versions(models_dir, model, as_of) if v.get("has_model", True)]
    if not versions:
        return None, f"no {model} model trained on or before {as_of}"
    approved = [v for v in versions if v.get("approved")]
    if approved:
        return approved[-1], "latest approved version"
    return versions[-1], ("no approved version exists: using the latest unapproved one "
                          f"({versions[-1].get('approval_reason', 'not approved')})")


def load_estimator(models_dir: Path, model: str, version: str) -> Any:
    """Load a stored estimator."""
    path = Path(models_dir) / model / version / MODEL_FILE
    try:
        return joblib.load(path)
    except (OSError, EOFError, ValueError) as e:
        raise ScoringError(f"cannot load model {path}: {e}") from e
