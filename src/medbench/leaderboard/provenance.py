"""Where a leaderboard cell's number comes from: the training run behind a record (its own ``extra.training``, or
the checkpoint manifest copied beside it), the record's provenance and data source, and the factors and signature
that group and plot cells."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medbench.leaderboard import Cell

# Keys of a training record that name where or when it ran, not what was trained.
_VOLATILE_TRAINING_KEYS = {"run_id", "checkpoint", "created", "versions", "train_metrics", "data_hash", "seed",
                           "path", "output_dir", "run_name"}


def _read_manifest(record: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any] | None:
    """The checkpoint's medbench_manifest.json as copied into the record's own folder when the record was written
    (records.write_record), if it belongs to the run that was scored (same plugin and run, written before the
    record). Records are untrusted input: the checkpoint paths they name are never opened."""
    from medbench.record_schema import sane_json
    from medbench.records import MANIFEST_COPY, MAX_RECORD_BYTES, read_regular_text

    if not record.get("_path"):
        return None
    folder = Path(record["_path"]).parent
    path = folder / MANIFEST_COPY
    try:
        if not path.resolve().is_relative_to(folder.resolve()):
            return None  # a link out of the record's folder
        # As a record is read: never a FIFO, and what the page shows of it made sane (numbers, text, depth).
        manifest = sane_json(json.loads(read_regular_text(path, MAX_RECORD_BYTES)))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(manifest, dict):
        return None
    if extra.get("plugin") and manifest.get("plugin") != extra.get("plugin"):
        return None
    if extra.get("run_id") and manifest.get("run_id") != extra.get("run_id"):
        return None
    if str(manifest.get("created", "")) > str(record.get("created", "~")):
        return None  # the checkpoint was replaced after this record was scored
    return manifest


def training_info(record: dict[str, Any]) -> dict[str, Any] | None:
    """What trained the scored checkpoint: ``extra.training`` when the record has it, else the plugin and run
    in ``extra``, completed from the checkpoint's manifest when that is still on disk."""
    extra = record.get("extra") or {}
    if not isinstance(extra, dict):
        return None
    info: dict[str, Any] = {}
    if isinstance(extra.get("training"), dict):
        info.update(extra["training"])
    for key in ("plugin", "run_id", "checkpoint", "step", "final", "config", "trainer_config", "parent_model"):
        if key in extra and key not in info:
            info[key] = extra[key]
    if not info.get("plugin"):
        return None
    if "config" not in info:
        manifest = _read_manifest(record, {**extra, **info})
        if manifest:
            for key in ("parent_model", "config", "trainer_config", "data_hash", "seed", "train_metrics", "task",
                        "kind", "step", "final"):
                if key in manifest and key not in info:
                    info[key] = manifest[key]
            info["source"] = "checkpoint manifest"
    return info


def _shown_once(training: dict[str, Any] | None) -> dict[str, Any] | None:
    """A plain trainer's options, recorded as its config and its trainer_config alike, listed once."""
    if training and training.get("trainer_config") == training.get("config"):
        return {k: v for k, v in training.items() if k != "trainer_config"}
    return training


def provenance(record: dict[str, Any]) -> dict[str, Any]:
    """The parts of a record a reader needs to trust a number: model, task data, config, versions, when."""
    task = record.get("task") or {}
    return {
        "model": record.get("model"),
        "task": {k: task.get(k) for k in ("name", "version", "plugin", "split", "num_fewshot", "data_hash",
                                          "fewshot_hash", "config_hash", "split_size") if k in task},
        "config": record.get("config"),
        "seed": record.get("seed"),
        "versions": record.get("versions"),
        "training": _shown_once(training_info(record)),
        "created": record.get("created"),
        "rescored": record.get("rescored"),
        "duration_s": record.get("duration_s"),
        "metrics": record.get("metrics"),
        "data_source": data_source(record),
        "record": record.get("_board_path") or record.get("_path"),  # relative to the leaderboard
    }


UNKNOWN_SOURCE = {"kind": "unknown"}


def data_source(record: dict[str, Any] | None) -> dict[str, Any]:
    """Where the record's data came from (``record["data_source"]``), or ``{"kind": "unknown"}`` for records
    written before medbench recorded it."""
    source = (record or {}).get("data_source")
    return dict(source) if isinstance(source, dict) and source.get("kind") else dict(UNKNOWN_SOURCE)


def column_sources(cells: list[Cell]) -> list[dict[str, Any]]:
    """The distinct data sources of a column's cells, in a stable order."""
    found: dict[str, dict[str, Any]] = {}
    for cell in cells:
        source = data_source(cell.record)
        found.setdefault(json.dumps(source, sort_keys=True, default=str), source)
    return [found[key] for key in sorted(found)]


def _scalar(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float, str)) and value is not None:
        return value
    return None


def _factor_keys(config: dict[str, Any] | None, prefix: str) -> dict[str, Any]:
    out = {}
    for key, value in (config or {}).items():
        if key in _VOLATILE_TRAINING_KEYS or key.endswith(("_file", "_dir", "_path")) or key in ("models", "model"):
            continue
        scalar = _scalar(value)
        if scalar is not None and (not isinstance(scalar, str) or len(scalar) <= 40):
            out[f"{prefix}.{key}"] = scalar
    return out


def cell_factors(record: dict[str, Any]) -> dict[str, Any]:
    """Training and evaluation factors a score can be plotted against: method (the trainer plugin, or 'base'),
    shots, prompt format, training step, and every scalar option of the trainer (``merge.t``,
    ``curriculum.ordering``, ``dpo.beta``, ...)."""
    task = record.get("task") or {}
    config = record.get("config") or {}
    training = training_info(record)
    factors: dict[str, Any] = {
        "method": training.get("plugin") if training else "base",
        "shots": task.get("num_fewshot") or 0,
        "prompt": "chat" if config.get("chat_template") else "raw",
    }
    if training:
        plugin = str(training.get("plugin"))
        if training.get("step") is not None:
            factors["step"] = training["step"]
        config = training.get("config") if isinstance(training.get("config"), dict) else {}
        factors.update(_factor_keys(config, plugin))
        if isinstance(training.get("trainer_config"), dict):  # a wrapping plugin's inner trainer (curriculum)
            factors.update(_factor_keys(training["trainer_config"], str(config.get("base") or plugin)))
        # A trainer's per-checkpoint settings recorded as train metrics (merge_t: the point on a merge curve).
        own = {key[len(plugin) + 1:]: value for key, value in (training.get("train_metrics") or {}).items()
               if key.startswith(plugin + "_")}
        factors.update(_factor_keys(own, plugin))
    return factors


def seed_signature(record: dict[str, Any], training: dict[str, Any] | None) -> str:
    """Equal for records that differ only by seed (and by where and when they ran)."""
    model = record.get("model") or {}
    config = {k: v for k, v in (record.get("config") or {}).items() if k not in ("seed", "label")}
    if training:
        trained = {k: v for k, v in training.items() if k not in _VOLATILE_TRAINING_KEYS and k != "source"}
        for key in ("config", "trainer_config"):
            if isinstance(trained.get(key), dict):
                trained[key] = {k: v for k, v in trained[key].items() if k != "seed"}
        checkpoint = Path(str(training.get("checkpoint") or model.get("path") or "")).name
        what = {"training": trained, "checkpoint": checkpoint, "base_ref": model.get("base_ref")}
    else:
        what = {"ref": model.get("ref"), "kind": model.get("kind")}
    text = json.dumps({"what": what, "eval": config}, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
