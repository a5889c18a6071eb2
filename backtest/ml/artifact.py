"""Versioned model artefacts: ``<models dir>/<name>/v<N>/`` holding ``model.txt`` (LightGBM's text
format: no pickle, so loading a model cannot run code) and ``meta.json`` (features, data range and
hash, label, metrics, feature distributions for drift, the signal backtest).

Versions only grow: a new training run writes ``v<latest+1>`` into a temporary folder and renames
it into place, so a reader (``strategy.ml_classifier.read_model``, the one place models are read)
never sees half a version."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from strategy.ml_classifier import META_FILE, MODEL_FILE, latest_version, models_dir


def check_name(name: str) -> str:
    if not name or len(name) > 64 or name.startswith(".") or not all(c.isalnum() or c in "-_." for c in name):
        raise ValueError(f"--model {name!r}: use 1-64 letters, digits, '-', '_' or '.'")
    return name


def save(name: str, model_text: str, meta: dict[str, Any], root: Path | None = None) -> Path:
    """Write a new version of model ``name``; returns its folder. ``meta['version']`` is set here."""
    folder = (root or models_dir()) / check_name(name)
    folder.mkdir(parents=True, exist_ok=True)
    version = (latest_version(folder) or 0) + 1
    tmp = Path(tempfile.mkdtemp(prefix=f".v{version}-", dir=folder))
    try:
        meta = {**meta, "name": name, "version": version}
        (tmp / MODEL_FILE).write_text(model_text, encoding="utf-8")
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1, allow_nan=False, default=str), encoding="utf-8")
        final = folder / f"v{version}"
        os.rename(tmp, final)  # atomic on one filesystem; fails if a concurrent run took the number
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def list_models(root: Path | None = None) -> list[dict[str, Any]]:
    """Every stored version's metadata (unreadable ones with their error), newest version first."""
    base = root or models_dir()
    out: list[dict[str, Any]] = []
    if not base.is_dir():
        return out
    for folder in sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for v in sorted((p for p in folder.glob("v*") if p.name[1:].isdigit()), key=lambda p: -int(p.name[1:])):
            try:
                meta = json.loads((v / META_FILE).read_text(encoding="utf-8"))
                if not isinstance(meta, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as exc:
                meta = {"name": folder.name, "version": int(v.name[1:]), "error": f"{v / META_FILE}: {exc}"}
            out.append(meta)
    return out


def rewrite_meta(folder: Path, meta: dict[str, Any]) -> None:
    """Replace a version's metadata (adding what is known only after it is saved: its backtest)."""
    tmp = folder / f".{META_FILE}.tmp"
    tmp.write_text(json.dumps(meta, indent=1, allow_nan=False, default=str), encoding="utf-8")
    os.replace(tmp, folder / META_FILE)
