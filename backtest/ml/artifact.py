"""Versioned model artefacts: ``<models dir>/<name>/v<N>/`` holding ``model.txt`` (LightGBM's text
format: no pickle, so loading a model cannot run code) and ``meta.json`` (features, data range and
hash, label, metrics, feature distributions for drift, the signal backtest). The models dir is
``BOT_MODELS_DIR`` or ``var/models``.

Versions only grow: a new training run writes ``v<latest+1>`` into a temporary folder and renames
it into place, so ``read_model`` (the one place models are read) never sees half a version.
``install_loader`` makes ``read_model`` the loader of ``strategy.ml_classifier`` in this process
(each front end that builds bots calls it once)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from strategy.ml_classifier import ModelUnavailable, model_loader, set_model_loader
from strategy.ml_features import FEATURES

MODEL_FILE, META_FILE = "model.txt", "meta.json"
ROOT = Path(__file__).resolve().parents[2]


def models_dir() -> Path:
    return Path(os.environ.get("BOT_MODELS_DIR") or ROOT / "var" / "models")


def latest_version(folder: Path) -> int | None:
    found = [int(p.name[1:]) for p in folder.glob("v*") if p.is_dir() and p.name[1:].isdigit()]
    return max(found) if found else None


class Booster:
    """A LightGBM booster read from a model version folder (``strategy.ml_classifier.Predictor``)."""

    def __init__(self, source: str, version: int, booster: Any, meta: dict[str, Any]) -> None:
        self.source, self.version, self.booster, self.meta = source, version, booster, meta
        self.features = list(meta["features"])

    def predict(self, x: Any) -> Any:
        import numpy as np

        return np.asarray(self.booster.predict(x, num_threads=1), dtype=np.float64)


_CACHE: dict[tuple[str, int, int], Booster] = {}
_LOCK = threading.Lock()


def read_model(name: str, version: int | None = None) -> Booster:
    """Read model ``name`` (``version``, or the latest) from the models dir; ModelUnavailable naming the
    file otherwise. Read once per file version (cached on path, size and modification time)."""
    folder = models_dir() / name
    v = version if version is not None else latest_version(folder)
    if v is None:
        raise ModelUnavailable(f"model {name!r}: no versions in {folder} (train one: bot_manager.py ml train)")
    vdir = folder / f"v{v}"
    model_path, meta_path = vdir / MODEL_FILE, vdir / META_FILE
    for p in (meta_path, model_path):
        if not p.is_file():
            raise ModelUnavailable(f"model {name!r} v{v}: missing file {p}")
    st = model_path.stat()
    key = (str(model_path), st.st_size, st.st_mtime_ns)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        feats = meta["features"]
        if not isinstance(feats, list) or not feats:
            raise ValueError("'features' must be a non-empty list")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelUnavailable(f"model {name!r} v{v}: corrupt metadata file {meta_path}: {exc}") from None
    unknown = [f for f in feats if f not in FEATURES]
    if unknown:
        raise ModelUnavailable(f"model {name!r} v{v}: {meta_path} names features this version does not compute: "
                               f"{', '.join(map(str, unknown))}")
    try:
        import lightgbm as lgb

        booster = lgb.Booster(model_str=model_path.read_text(encoding="utf-8"))
        if booster.num_feature() != len(feats):
            raise ValueError(f"{booster.num_feature()} features in the model, {len(feats)} in {META_FILE}")
    except Exception as exc:  # noqa: BLE001 - LightGBM raises its own error types on a bad file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelUnavailable(f"model {name!r} v{v}: corrupt model file {model_path}: {first}") from None
    out = Booster(str(vdir), v, booster, meta)
    with _LOCK:
        _CACHE[key] = out
    return out


def install_loader() -> None:
    """Make ``read_model`` where ``ml_classifier`` bots of this process get their model (idempotent;
    a loader injected before, e.g. by a test, is kept)."""
    if model_loader() is None:
        set_model_loader(read_model)


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
