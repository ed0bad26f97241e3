"""medbench's bundled study recipes (package data), so `medbench sweep sft_vs_dpo` finds them from any folder."""

from pathlib import Path

RECIPES_DIR = Path(__file__).resolve().parent


def bundled_recipes() -> dict[str, Path]:
    """Bundled recipe name -> its YAML file."""
    return {p.stem: p for p in sorted(RECIPES_DIR.glob("*.yaml"))}
