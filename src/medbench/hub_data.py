"""Task data from the Hugging Face hub, for medbench.taskdata.load_splits: downloaded when online, read from the
local datasets cache when offline (as stock lm-eval reads it), then normalised like any other rows."""

from __future__ import annotations

from typing import Any

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
    try:
        return datasets.load_dataset(hub)
    except (ConnectionError, FileNotFoundError, ValueError):  # not cached (datasets' own offline errors)
        return None


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
        return (list(raw[spec]), spec) if spec in raw else None
    if not isinstance(spec, dict) or not isinstance(spec.get("split"), str) or \
            not isinstance(spec.get("holdout"), int) or spec.get("part", "holdout") not in ("holdout", "rest"):
        raise MedbenchError(f"hub_splits entry {spec!r} for {hub} is neither a split name nor "
                            "{split: NAME, holdout: N, part: holdout|rest}",
                            "fix metadata.hub_splits in the task's YAML")
    if spec["split"] not in raw:
        return None
    import random

    rows = list(raw[spec["split"]])
    held = set(random.Random(int(spec.get("seed", 0))).sample(range(len(rows)), min(spec["holdout"], len(rows))))
    rest = spec.get("part", "holdout") == "rest"
    where = f"{spec['split']} {'without' if rest else ''} {len(held)}-row holdout".replace("  ", " ")
    return [row for i, row in enumerate(rows) if (i in held) != rest], where
