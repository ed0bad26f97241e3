"""lm-eval building a task, checked as it goes: the splits the YAML names must exist, a user's file must have the
columns the templates read, and the first document (which lm-eval indexes with its target while building) is
checked before lm-eval meets it, so none of these ends in a bare KeyError or IndexError."""

from __future__ import annotations

import contextlib
import random
from typing import Any, Iterator

from medbench.console import short_repr
from medbench.errors import MedbenchError
from medbench.task_documents import SPLIT_KEYS, _check_sources, _listed, _raise_for, _where, template_reads


def _require_columns(entry: Any, task: Any, dataset: Any) -> None:
    """A user's file given to a task it was not written for (the original MMLU CSV for lm-eval's MMLU task, which
    reads the hub's columns) stops here, naming the columns it lacks, not in a template as "'question' is
    undefined"."""
    from medbench.task_facts import data_source

    if data_source(entry, task).get("kind") != "file" or task.config.process_docs is not None:
        return  # process_docs makes the fields the templates read (hellaswag's query): its own errors name them
    for split in dict.fromkeys(getattr(task.config, key, None) for key in SPLIT_KEYS):
        columns = getattr(dataset[split], "column_names", None) if split in dataset else None
        missing = sorted(template_reads(task, set(columns)) - set(columns)) if columns is not None else []
        if missing:
            raise MedbenchError(f"{_where(entry)}: the {split!r} data file lacks the column"
                                f"{'s' if len(missing) > 1 else ''} {_listed(missing)}, which its templates read "
                                f"(its columns: {_listed(columns)})",
                                f"give a file with the columns task {entry.name} reads, as in its published dataset")


@contextlib.contextmanager
def construction_checked(entry: Any) -> Iterator[None]:
    """While lm-eval builds the task: its splits must exist, and its first document (which lm-eval indexes
    with its target while building) is checked first, so neither ends in a bare KeyError or IndexError."""
    from unittest import mock

    from lm_eval.api.task import ConfigurableTask

    download, doc_to_target = ConfigurableTask.download, ConfigurableTask.doc_to_target

    def checked_download(self, *args: Any, **kwargs: Any) -> None:
        download(self, *args, **kwargs)
        dataset = getattr(self, "dataset", None)
        if not hasattr(dataset, "keys"):
            return
        for key in SPLIT_KEYS:
            split = getattr(self.config, key, None)
            if isinstance(split, str) and split not in dataset:
                have = ", ".join(map(str, dataset.keys())) or "none"
                raise MedbenchError(f"{_where(entry)}: {key} is {short_repr(split)}, which is not a split of its "
                                    f"dataset (it has: {have})", f"set {key} to one of {have}")
        scored = self.config.test_split or self.config.validation_split
        if isinstance(scored, str) and scored in dataset and len(dataset[scored]) == 0:  # lm-eval indexes row 0
            raise MedbenchError(f"{_where(entry)}: its {scored!r} split, the one it scores, has no rows",
                                f"give it rows (--data-file {entry.name}:{scored}=PATH)")
        _require_columns(entry, self, dataset)

    def checked_target(self, doc: Any, *args: Any, **kwargs: Any) -> Any:
        target = doc_to_target(self, doc, *args, **kwargs)
        if not args and not kwargs and not getattr(self, "_medbench_first_checked", False) \
                and hasattr(self, "features") and isinstance(doc, dict):
            self._medbench_first_checked = True  # the checks below call doc_to_target again
            draws = random.getstate()  # a doc_to_choice that draws (med_prescriptions) draws here as in stock lm-eval
            _raise_for(entry, self, 0, doc, *_check_sources(entry, self))
            random.setstate(draws)  # a failing check raises: nothing is scored
        return target

    from pathlib import Path

    from medbench.taskdata import TASK_YAML

    token = TASK_YAML.set(Path(entry.path))  # a data error names the YAML that says which fields the task reads
    try:
        with mock.patch.object(ConfigurableTask, "download", checked_download), \
                mock.patch.object(ConfigurableTask, "doc_to_target", checked_target):
            yield
    finally:
        TASK_YAML.reset(token)
