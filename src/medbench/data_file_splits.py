"""Which split of a task each ``--data-file`` fills. ``--data-file TASK=PATH`` (no split) is recorded as the
``test`` split: for a task that scores a split of another name (lm-eval's med_text_classification, medtext and
med_prescriptions score ``train``) it means the split the task scores, as it means ``test`` for the rest."""

from __future__ import annotations

from typing import Any

from medbench.errors import MedbenchError

BARE = "test"  # the split a --data-file with no split is recorded under (medbench.commands.common, recipes, api)


def task_splits(config: dict[str, Any]) -> list[str]:
    """The splits a task's YAML names, once each."""
    splits = [config.get(key) for key in ("training_split", "validation_split", "test_split", "fewshot_split")]
    return [split for split in dict.fromkeys(splits) if split]


def scored_split(config: dict[str, Any]) -> str | None:
    return config.get("test_split") or config.get("validation_split")


def with_scored_split(files: Any, config: dict[str, Any]) -> Any:
    """``files`` ({split: path}) with a bare file's ``test`` key renamed to the split the task scores, where the
    task names no ``test`` split and no file was given for its scored split by name."""
    scored = scored_split(config)
    if not isinstance(files, dict) or BARE not in files or not scored or BARE in task_splits(config) \
            or scored in files:
        return files
    return {scored if split == BARE else split: path for split, path in files.items()}


def checked_data_files(metadata: dict[str, dict[str, Any]], names: list[str],
                       registry: Any) -> dict[str, dict[str, Any]]:
    """``metadata`` (task -> {"data_files": {split: path}}) with bare files on the splits their tasks score, once
    every --data-file is known to name a task being scored and a split it has: a typo or a task left out of
    --tasks is an error, not silently ignored."""
    checked = {}
    for target, overrides in metadata.items():
        if target not in names:
            try:
                registry.get(target)
            except MedbenchError as exc:  # an unknown task: the registry's one line, with close names
                raise MedbenchError(f"--data-file names {exc.problem}", exc.fix) from None
            raise MedbenchError(f"--data-file names task {target!r}, which is not among the tasks scored "
                                f"({', '.join(names)})", f"add {target} to --tasks, or drop that --data-file")
        config = registry.get(target).config
        files = with_scored_split((overrides or {}).get("data_files"), config)
        splits = task_splits(config)
        for split in files if isinstance(files, dict) else []:
            if splits and split not in splits:
                raise MedbenchError(f"--data-file {target}:{split} names a split task {target!r} does not have",
                                    f"name one of {', '.join(splits)} (--data-file {target}:{splits[-1]}=PATH)")
        checked[target] = {**overrides, "data_files": files} if isinstance(files, dict) else overrides
    return checked
