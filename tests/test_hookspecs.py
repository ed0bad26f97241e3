"""Meta-test: every hook is documented and has a test named after it (as datasette does)."""

import inspect
import re
from pathlib import Path

import pytest

from medbench import hookspecs

TESTS = Path(__file__).parent


def hook_names():
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
            if hasattr(fn, "medbench_spec")]


def test_hooks_exist():
    assert set(hook_names()) >= {"register_tasks", "register_trainers", "register_metrics",
                                 "register_model_loaders", "register_commands"}


def test_every_hook_has_a_docstring():
    for name in hook_names():
        assert (getattr(hookspecs, name).__doc__ or "").strip(), name


def test_every_hook_has_a_test_named_after_it():
    source = "\n".join(path.read_text() for path in TESTS.glob("test_*.py"))
    defined = set(re.findall(r"^def (test_\w+)", source, flags=re.M))
    missing = [name for name in hook_names() if f"test_{name}" not in defined]
    assert not missing, f"hooks without a test named test_<hook>: {missing}"


GUIDE = TESTS.parent / "docs" / "writing-plugins.md"


def guide_sections() -> dict[str, str]:
    """``## heading`` -> the text under it, from docs/writing-plugins.md."""
    parts = re.split(r"^## +(.+?) *$", GUIDE.read_text(encoding="utf-8"), flags=re.M)
    return {heading.strip("` "): body for heading, body in zip(parts[1::2], parts[2::2])}


def test_every_hook_has_a_section_in_the_plugin_guide():
    sections = guide_sections()
    missing = [name for name in hook_names() if name not in sections]
    assert not missing, f"hooks without a `## <hook>` section in {GUIDE}: {missing}"
    for name in hook_names():
        body = sections[name]
        assert "**Arguments.**" in body and "**Returns**" in body, f"section {name} must say arguments and returns"
        assert f"def {name}(" in body, f"section {name} needs a minimal example implementing the hook"


def test_the_guide_covers_scaffold_helpers_errors_and_versioning():
    sections = guide_sections()
    assert {"Quick start", "Testing a plugin: medbench.testing", "How errors are reported", "Versioning"} <= set(sections)
    import medbench.testing as testing

    for fixture in ("tiny_model_dir", "leaderboard_dir", "plugin_registration", "medbench_cli"):
        assert hasattr(testing, fixture) and f"`{fixture}`" in sections["Testing a plugin: medbench.testing"]


def test_every_hook_example_in_the_guide_runs(plugin_registration, tmp_path):
    """Each hook section's minimal example is real code: executed as a plugin module, its hook registers things."""
    import types

    import click

    from medbench.registries import call_register_hook

    sections = guide_sections()
    for name in hook_names():
        blocks = re.findall(r"```python\n(.*?)```", sections[name], flags=re.S)
        source = [block for block in blocks if f"def {name}(" in block][0]  # the section's minimal example
        module = types.ModuleType(f"guide_example_{name}")
        module.__file__ = str(tmp_path / f"{name}.py")
        exec(compile(source, f"docs/writing-plugins.md ({name})", "exec"), module.__dict__)
        plugin_name = plugin_registration(module)
        if name == "register_commands":
            group = click.Group("medbench")
            getattr(module, name)(cli=group)
            assert group.commands, f"the {name} example adds no command"
            continue
        added = []
        call_register_hook(name, lambda plugin: (lambda *args, **kwargs: added.append((plugin, args)))
                           if plugin == plugin_name else (lambda *args, **kwargs: None))
        assert added, f"the {name} example registers nothing"


def test_the_guides_sft_variant_trains_on_the_sdk(tiny_model_dir, tmp_path):
    """The complete SFT variant in the guide (NEFTune) is real: two steps on a tiny model, its noise switched on in
    the Trainer, one checkpoint per save, and a bad option refused as the built-ins refuse theirs."""
    import types

    from medbench.errors import MedbenchError
    from medbench.training import TrainRequest, build_config

    blocks = re.findall(r"```python\n(.*?)```", guide_sections()["register_trainers"], flags=re.S)
    (source,) = [block for block in blocks if "class NoisySFT:" in block]
    module = types.ModuleType("guide_neftune_sft")
    exec(compile(source, "docs/writing-plugins.md (neftune_sft)", "exec"), module.__dict__)
    trainer = module.NoisySFT()
    with pytest.raises(MedbenchError, match="noise-alpha"):
        build_config(trainer.config_class, {}, {"noise_alpha": "0"}, trainer.name)
    config = build_config(trainer.config_class, {}, {"max_steps": 2, "save_steps": 1, "train_batch_size": 2,
                                                     "max_examples": 4, "noise_alpha": 3}, trainer.name)
    request = TrainRequest(model_ref=str(tiny_model_dir), task="medqa", output_dir=tmp_path / "run", config=config)
    run = trainer.prepare(request)
    assert run.trainer.args.neftune_noise_alpha == 3 and run.trainer.args.completion_only_loss
    checkpoints = run.run()
    assert [c.step for c in checkpoints] == [1, 2] and checkpoints[-1].final and checkpoints[-1].kind == "adapter"
