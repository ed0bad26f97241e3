"""Which split of a task each ``--data-file`` fills. ``--data-file TASK=PATH`` (no split) is recorded as the
``test`` split: for a task that scores a split of another name (lm-eval's med_text_classification, medtext and
med_prescriptions score ``train``) it means the split the task scores, as it means ``test`` for the rest."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

from medbench.errors import MedbenchError

# Set by `medbench eval` / medbench.evaluate(): the user's files for this scoring alone. A sweep's or a training run's
# scoring shares files with training (medqa:train), so it never refuses one its scoring does not read.
_SCORING_ONLY: ContextVar[bool] = ContextVar("data files given for scoring alone", default=False)


@contextmanager
def files_for_scoring_only() -> Iterator[None]:
    token = _SCORING_ONLY.set(True)
    try:
        yield
    finally:
        _SCORING_ONLY.reset(token)


def scoring_only() -> bool:
    return _SCORING_ONLY.get()

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


def splits_read(config: dict[str, Any], split: str, asked_shots: int | None) -> tuple[str | None, str | None, int]:
    """(the split an eval scores, the split its demonstrations come from, the shots), from the task's YAML as
    lm-eval reads it: ``--split validation`` scores the validation split; shots are --num-fewshot unless the YAML
    fixes 0 (medbench.evaluation.scored_shots); the pool is fewshot_split, else the training, validation or scored
    split; none zero-shot, nor where fewshot_config lists its own samples."""
    scored = config.get("validation_split") if split == "validation" else scored_split(config)
    own = config.get("num_fewshot")
    # --num-fewshot N on a YAML that fixes 0: evaluation warns that N does not apply; its pool file goes with it
    shots = (own if asked_shots is None else asked_shots) or 0
    fewshot = config.get("fewshot_config")
    if not shots or (isinstance(fewshot, dict) and fewshot.get("samples") is not None
                     and not config.get("fewshot_split")):
        return scored, None, shots
    pool = config.get("fewshot_split") or config.get("training_split") or config.get("validation_split") or scored
    return scored, pool, shots


def refuse_unread_files(eval_config: Any, registry: Any, trained: str | None = None) -> None:
    """A --data-file for a split the scoring never reads, where no file is given for the split it scores, is one
    line before any model loads: ``medqa:train`` alone on a zero-shot eval (only demonstrations come from it),
    ``medqa`` (test) alone under ``--split validation``: the user's data would go unscored. Beside a file for the
    scored split it is a warning: a script giving every split of a dataset, as stock reads them all. For `train`
    (``trained``: the task trained on, whose splits its trainer reads) the other scored tasks are checked."""
    names = registry.expand(eval_config.tasks)
    metadata = {target: overrides for target, overrides in (eval_config.task_metadata or {}).items()
                if target != trained and (trained is None or target in names)}
    if not metadata:
        return
    for target, overrides in checked_data_files(metadata, names, registry).items():
        files = (overrides or {}).get("data_files")
        config = registry.get(target).config
        scored, pool, shots = splits_read(config, eval_config.split, eval_config.num_fewshot)
        if not isinstance(files, dict) or scored is None:  # no such split: scoring says so in its own words
            continue
        for split in files:
            if split in (scored, pool):
                continue
            drawn = f"draws its demonstrations from {pool!r}" if pool else \
                "takes its demonstrations from its YAML's fewshot_config" if shots else \
                "draws no demonstrations (zero-shot)"
            problem = f"--data-file {target}:{split} would never be read: scoring {target} reads its {scored!r} " \
                      f"split and {drawn}"
            if trained is not None:
                fix = f"leave it out: only the task trained (--task {trained}) has splits read beyond scoring's"
            elif not shots and split == splits_read(config, eval_config.split, 1)[1]:
                fix = "pass --num-fewshot N to draw demonstrations from it, or leave that --data-file out"
            else:
                fix = f"leave that --data-file out, or give the file for {target}:{scored} (the split scored)"
            if scored in files:
                warnings.warn(f"{problem}; {fix}", stacklevel=2)
                continue
            raise MedbenchError(problem, fix)
