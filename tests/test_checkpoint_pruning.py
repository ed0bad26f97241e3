"""--prune-unchosen (medbench.checkpoint_pruning): which steps may prune, and what a prune deletes and keeps."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from medbench.checkpoint_pruning import exclusive_choosers, freed_so_far, prune_unchosen, require_weights
from medbench.errors import MedbenchError


def step(name, select=None, variants=()):
    return SimpleNamespace(name=name, select=select, variants=[SimpleNamespace(name=v) for v in variants])


def cell(*steps):
    return SimpleNamespace(steps=list(steps))


def test_only_a_chooser_whose_folders_no_other_step_reads_may_prune():
    lone = step("lone", {"split": "validation"})  # selects among its own checkpoints
    grid = step("grid", {"over": {}}, ["lr1", "lr2"])
    shared_with_plain = step("grid2", {"over": {}}, ["lr3", "lr4"])
    other_choice = step("grid3", {"over": {}}, ["lr1", "lr5"])  # a second choice over lr1: neither may prune it
    cells = [cell(lone, grid), cell(lone), cell(shared_with_plain), cell(step("lr4")), cell(other_choice)]
    assert exclusive_choosers(cells) == {"lone"}
    assert exclusive_choosers([cell(grid), cell(grid)]) == {"grid"}  # one choice read by two cells
    assert exclusive_choosers([cell(step("plain"))]) == frozenset()


def checkpoint(root, name, weights=b"w" * 1000):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "trainer_state.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "optimizer.pt").write_bytes(b"o" * 500)
    (folder / "sub").mkdir()
    (folder / "sub" / "adapter_model.bin").write_bytes(b"a" * 100)
    return {"path": str(folder), "step": 1, "final": False}


def kept(checkpoint):
    return sorted(p.name for p in Path(checkpoint["path"]).rglob("*"))


def test_a_prune_deletes_the_unchosen_weights_and_keeps_configs_the_choice_and_anything_outside(tmp_path):
    steps = tmp_path / "steps"
    chosen, other = checkpoint(steps / "a", "checkpoint-1"), checkpoint(steps / "a", "checkpoint-2")
    outside = checkpoint(tmp_path / "elsewhere", "checkpoint-9")  # a damaged marker may name any path
    in_step_dir = {"path": str(steps / "a"), "step": 2, "final": True}  # a step folder, not a checkpoint's
    linked = {"path": str(steps / "b" / "checkpoint-3"), "step": 3, "final": True}
    (steps / "b").mkdir()
    (steps / "b" / "checkpoint-3").symlink_to(outside["path"])
    target = tmp_path / "precious.safetensors"  # a symlinked file inside a pruned checkpoint: its target stays
    target.write_bytes(b"p")
    (steps / "a" / "checkpoint-2" / "linked.safetensors").symlink_to(target)
    found = [chosen, other, outside, in_step_dir, linked]
    selection = {"candidates": [{"path": c["path"]} for c in found], "chosen": 0}

    assert prune_unchosen(selection, found, steps, steps / "s" / "selection.json") == 1600
    assert kept(other) == ["PRUNED.json", "config.json", "linked.safetensors", "sub", "trainer_state.json"]
    assert kept(chosen) == kept(outside) == ["adapter_model.bin", "config.json", "model.safetensors", "optimizer.pt",
                                             "sub", "trainer_state.json"]
    assert target.read_bytes() == b"p"
    note = json.loads((steps / "a" / "checkpoint-2" / "PRUNED.json").read_text())
    assert note["chosen"] == chosen["path"] and note["freed_bytes"] == 1600
    assert prune_unchosen(selection, found, steps, steps / "s" / "selection.json") == 0  # idempotent
    assert freed_so_far(steps) == (1, 1600) and freed_so_far(tmp_path / "nothing") == (0, 0)

    require_weights([chosen, outside], [steps / "a"])
    with pytest.raises(MedbenchError, match=r"1 checkpoint\(s\) this step needs had their weights deleted by "
                                            r"--prune-unchosen") as caught:
        require_weights([chosen, other], [steps / "a"])
    assert f"delete {steps / 'a'} to train the step again" in caught.value.one_line()


def test_a_damaged_prune_note_counts_nothing(tmp_path):
    folder = tmp_path / "steps" / "a" / "checkpoint-1"
    folder.mkdir(parents=True)
    for text in ("[1]", "{\"freed_bytes\": \"lots\"}", "{\"freed_bytes\": -5}", "not json"):
        (folder / "PRUNED.json").write_text(text)
        assert freed_so_far(tmp_path / "steps") == (1, 0)
