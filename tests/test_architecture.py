"""The core knows no built-in plugin: src/medbench imports nothing from medbench_plugins, and what a built-in
brings (a metric's fast form) it declares through the same hooks a third-party plugin uses."""

import ast
from pathlib import Path

from medbench.leaderboard.comparisons import vectorised_metric
from medbench.metrics import Metric, metric_registry

CORE = Path(__file__).resolve().parents[1] / "src" / "medbench"


def test_the_core_imports_no_built_in_plugin():
    found = []
    for path in CORE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found += [f"{path.relative_to(CORE)}: {name}" for name in names if name.startswith("medbench_plugins")]
    assert found == []


def test_metrics_declare_their_fast_form():
    registry = metric_registry()
    assert all(registry[name].resampled is not None for name in ("accuracy", "macro_f1", "f1"))
    assert vectorised_metric("macro_f1", registry) is not None
    own = {**registry, "my_metric": Metric("my_metric", lambda refs, preds: 0.5)}
    assert vectorised_metric("my_metric", own) is None  # no fast form declared: the slow path, never a wrong one


def test_the_page_names_no_trainer_and_plots_what_trainers_declare():
    import re

    from medbench_plugins import leaderboard_page, leaderboard_plots
    from medbench_plugins.leaderboard_plots import _declared_factors

    for module in (leaderboard_plots, leaderboard_page):
        source = Path(module.__file__).read_text(encoding="utf-8")
        code = re.sub(r'""".*?"""|#.*', "", source, flags=re.S)  # docstrings and comments may give examples
        assert "merge.t" not in code and "curriculum.ordering" not in code
    declared = _declared_factors()
    assert declared["merge.t"].startswith("merge t") and "curriculum.ordering" in declared


def test_no_module_of_the_core_or_the_built_in_plugins_grows_past_400_lines():
    """A module that outgrows one screenful of ideas gets split along its seams (task generators' literal data,
    under tasks/, is exempt)."""
    root = CORE.parents[1]
    too_long = {str(path.relative_to(root)): lines for path in [*CORE.rglob("*.py"), *(root / "plugins").rglob("*.py")]
                if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 400}
    assert too_long == {}
