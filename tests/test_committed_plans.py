"""The plans committed under docs/studies/plans/ are what the recipes plan today: a reviewer reads those files,
so a recipe or task change that is not regenerated into them is a stale claim. Regenerate with
`medbench sweep recipes/NAME.yaml --scale SCALE --dry-run --json > docs/studies/plans/NAME-SCALE.json`."""

import json
from pathlib import Path

import pytest

from medbench.recipe import read_recipe
from medbench.sweeps import describe_json, plan

REPO = Path(__file__).resolve().parent.parent
PLANS = sorted((REPO / "docs" / "studies" / "plans").glob("*.json"))


def _without_state(description: dict) -> dict:
    for cell in description["cells"]:
        cell.pop("done", None)  # whether this machine has run the cell: not part of the plan
    return description


def test_every_recipe_has_its_toy_plan_committed():
    assert {p.stem for p in PLANS} >= {f"{r.stem}-toy" for r in (REPO / "recipes").glob("*.yaml")}


@pytest.mark.parametrize("path", PLANS, ids=[p.stem for p in PLANS])
def test_a_committed_plan_matches_what_its_recipe_plans(path, monkeypatch):
    monkeypatch.chdir(REPO)  # the recipes' relative paths and the plan's out_dir are the repository's
    committed = json.loads(path.read_text())
    name, scale = path.stem.rsplit("-", 1)
    current = json.loads(describe_json(plan(read_recipe(REPO / "recipes" / f"{name}.yaml"), scale,
                                            Path(committed["out_dir"]))))
    fix = f"regenerate it: medbench sweep recipes/{name}.yaml --scale {scale} --dry-run --json > {path.relative_to(REPO)}"
    assert _without_state(current) == _without_state(committed), fix
