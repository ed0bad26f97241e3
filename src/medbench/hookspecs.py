"""Every hook medbench calls, in one module.

Registration hooks receive a ``register`` callback (the style of simonw/llm): a plugin calls it once per
thing it adds, so one plugin can add several things and the manager knows which plugin added what.
Each hook is documented in docs/writing-plugins.md and has a test named ``test_<hook>`` in tests/.

Failures are named: a hook that raises (or calls ``sys.exit``) becomes one line naming the plugin, its package
and the hook; so does a crash in what a plugin registered when medbench calls it later (a trainer's ``train()``,
a metric, a judge, an executor, a renderer, a model loader, a command), through ``medbench.plugins.plugin_call``.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("medbench")
hookimpl = pluggy.HookimplMarker("medbench")


@hookspec
def register_tasks(register):
    """Add task YAMLs.

    Call ``register(path)`` with a directory (scanned recursively) or a single lm-eval task YAML file.
    Every YAML must be a valid lm-eval task file; medbench's own keys live under ``metadata:``.
    """


@hookspec
def register_trainers(register):
    """Add trainers.

    Call ``register(trainer)`` with an object that has ``name`` (str), ``description`` (str),
    ``config_class`` (a dataclass of its options) and ``train(request) -> list[CheckpointInfo]``
    (see medbench.training).
    """


@hookspec
def register_metrics(register):
    """Add metrics.

    Call ``register(name, fn, higher_is_better=True, description="")``; ``fn(references, predictions)``
    returns a float. Metrics are looked up by name when scoring and re-scoring records.
    """


@hookspec
def register_judges(register):
    """Add LLM-as-judge scorers for generation tasks (a Likert score for a summary, say).

    Call ``register(judge)`` with an object that has ``name`` (str), ``description`` (str) and
    ``score(items, options) -> list[float | None]``. Each item is a dict with ``prompt``, ``reference`` and
    ``prediction``; ``options`` is a dict of the user's ``--judge-option key=value`` pairs. Return one score per
    item (None where the judge could not decide). A task asks for judges in ``metadata.judges``; ``medbench
    eval --judge NAME`` adds one. Scores are recorded as metric ``judge:NAME`` and per sample. An optional
    ``check(options)`` runs before the scored model loads: raise ``MedbenchError`` there for settings that cannot
    work (a judge model that does not resolve), so the user hears it before minutes of generation.
    """


@hookspec
def register_model_loaders(register):
    """Add ways to turn a model reference into a loaded model.

    Call ``register(loader)`` with an object that has ``name``, ``priority`` (higher is tried first),
    ``can_load(ref) -> bool``, ``load(ref, options) -> LoadedModel`` and ``describe() -> list[dict]``
    (the references it can offer, for ``medbench models``). See medbench.models. A loader that builds the model from
    files lists them in ``LoadedModel.source_files``: they identify it (medbench.weights_identity).
    """


@hookspec
def register_backends(register):
    """Add places a model can run besides this process (a served OpenAI-compatible model, vLLM, ...).

    Call ``register(backend)`` with an object that has ``name``, ``description``, optionally ``ref_prefix`` (a
    reference ``PREFIX:NAME`` selects the backend without ``--backend``) and
    ``open(ref, options, *, batch_size, seed, progress) -> medbench.backends.Backend``: the lm-eval LM, the identity
    the record stores and what the backend can do. ``options`` holds ``--base-url`` and the other backend options;
    ``batch_size`` is a positive int, or ``"auto"`` when the user leaves the size to the backend.
    """


@hookspec
def register_leaderboard_renderers(register):
    """Add leaderboard output formats.

    Call ``register(name, fn)`` where ``fn(table, out_dir) -> Path`` writes one file from a
    medbench.leaderboard.LeaderboardTable and returns its path.
    """


@hookspec
def register_executors(register):
    """Add ways to run a sweep's cells (sequentially, across GPUs, on a cluster).

    Call ``register(executor)`` with an object that has ``name``, ``description`` and
    ``run(cells, run_cell, options) -> iterator of CellResult``: call ``run_cell(cell)`` for every cell (it is
    picklable, so it can run in another process or on another machine that shares the filesystem) and yield
    each result as it finishes. ``options`` holds the user's ``--executor-option key=value`` pairs. A cell
    that raises must not stop the others: ``run_cell`` already records failures as results. An optional
    ``check_options(options, cells)`` raising MedbenchError is called before the sweep writes anything.
    """


@hookspec
def register_commands(cli):
    """Add sub-commands to the ``medbench`` click group ``cli``."""
