"""Task data from the Hugging Face hub, for medbench.taskdata.load_splits: downloaded when online, read from the
local datasets cache when offline (as stock lm-eval reads it), then normalised like any other rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from medbench.data_reading import MAX_DATA_FILE_BYTES, MAX_DATA_VALUES, ROW_WEIGHT, check_dataset_folder
from medbench.errors import MedbenchError
from medbench.taskdata import Normalizer, PerFile, RowSource, to_dataset_dict, with_source



def fetch_hub(hub: str):
    import datasets

    return datasets.load_dataset(hub)


def from_cache(hub: str):
    """``hub`` as `datasets` cached it on an earlier download, read with the network off; None when not cached."""
    import datasets

    if not datasets.config.HF_HUB_OFFLINE:  # imported before medbench went offline: never risk a download
        return None
    folder = cached_dataset_folder(hub)
    if not any(path.is_dir() for path in folder.glob("*/*/*")):  # where datasets looks: config/version/hash
        return None  # not cached: the bundled sample is scored
    check_dataset_folder(folder, f"the datasets cache of {hub}", _CACHE_FIX.format(folder=folder))
    try:
        return datasets.load_dataset(hub)
    except Exception as exc:  # cached, yet unreadable: scoring the bundled sample instead would go unnoticed
        detail = " ".join(str(exc).split())[:200]
        raise MedbenchError(f"the datasets cache of {hub} ({folder}) cannot be read ({type(exc).__name__}: {detail})",
                            _CACHE_FIX.format(folder=folder)) from None


_CACHE_FIX = "delete {folder} and download the dataset again (medbench --online eval ...), or pass --data-file"


def cached_dataset_folder(hub: str) -> Path:
    """The folder `datasets` caches ``hub`` in, named as its CachedDatasetModuleFactory names it."""
    import datasets
    from datasets.naming import camelcase_to_snakecase

    parts = hub.split("/")
    parts[-1] = camelcase_to_snakecase(parts[-1])
    return Path(str(datasets.config.HF_DATASETS_CACHE)).expanduser() / "___".join(parts)


def hub_dataset_dict(raw: Any, hub: str, hub_splits: dict[str, str] | None, normalize: Normalizer | PerFile,
                     bundled: dict[str, str], cached: bool = False):
    rows_by_split = {}
    for split, spec in (hub_splits or {s: s for s in raw}).items():
        picked = hub_rows(raw, spec, hub)
        if picked is not None:
            rows, where = picked
            rows_by_split[split] = (rows, RowSource.hub(f"{hub}[{where}]"))
    revision = None
    try:  # the commit the hub served, when the hub says
        from huggingface_hub import HfApi

        revision = None if cached else HfApi().dataset_info(hub).sha
    except Exception:
        pass
    where = " (read offline from the local datasets cache)" if cached else ""
    return with_source(to_dataset_dict(rows_by_split, normalize, bundled),
                       {"kind": "hub", "name": hub, "revision": revision, "description": f"hub dataset {hub}{where}"})


def hub_rows(raw: Any, spec: Any, hub: str) -> tuple[list[dict[str, Any]], str] | None:
    """The rows ``spec`` names: a hub split (``validation``), or part of one, ``{split: train, holdout: 2000}``
    (a seeded sample of 2000 rows, in their order) or ``{split: train, holdout: 2000, part: rest}`` (the others):
    a validation split carved out of train where the hub's validation split is already the test split."""
    if isinstance(spec, str):
        return (_split_rows(raw[spec], hub, spec), spec) if spec in raw else None
    holdout, seed = spec.get("holdout") if isinstance(spec, dict) else None, \
        spec.get("seed", 0) if isinstance(spec, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("split"), str) or \
            type(holdout) is not int or holdout < 0 or type(seed) is not int or \
            spec.get("part", "holdout") not in ("holdout", "rest"):
        raise MedbenchError(f"hub_splits entry {spec!r} for {hub} is neither a split name nor "
                            "{split: NAME, holdout: N, part: holdout|rest}",
                            "fix metadata.hub_splits in the task's YAML")
    if spec["split"] not in raw:
        return None
    import random

    rows = _split_rows(raw[spec["split"]], hub, spec["split"])
    held = set(random.Random(seed).sample(range(len(rows)), min(holdout, len(rows))))
    rest = spec.get("part", "holdout") == "rest"
    where = f"{spec['split']} {'without' if rest else ''} {len(held)}-row holdout".replace("  ", " ")
    return [row for i, row in enumerate(rows) if (i in held) != rest], where


def _split_rows(split: Any, hub: str, name: str) -> list[dict[str, Any]]:
    """A hub split's rows as Python objects, within the bounds a data file's rows keep (medbench.data_reading):
    a cached or downloaded split is memory-mapped arrow, cheap until it is turned into rows here."""
    values = len(split) * (len(getattr(split, "column_names", None) or ()) + ROW_WEIGHT)
    size = getattr(getattr(split, "data", None), "nbytes", 0)
    if values > MAX_DATA_VALUES or size > MAX_DATA_FILE_BYTES:
        raise MedbenchError(f"hub dataset {hub} split {name} holds {len(split):,} rows ({size >> 20:,} MiB), more "
                            "than medbench reads into memory at once", "score a sample of it with --data-file")
    return list(split)
