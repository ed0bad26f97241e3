"""Grown test splits keep every item released before them: uti 2.1, hyponatremia 1.2 and adrd_prediction 1.1 grew
their test split for the studies' power (train and validation untouched, the earlier test items first and
unchanged, the new ones drawn after them). A run scored on an earlier version stays comparable on those items.
"""

import collections
import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

TASKS = Path(__file__).resolve().parent.parent / "tasks"

# task dir -> (test rows in the previous version, sha256 of that version's train / validation / test files)
RELEASED = {
    # uti 2.2 (its findings lists padded to one length distribution for both labels): every split rewritten
    "uti": (100, {"train": "4d98e65b0bd1fddd7a67b39456f53682475c401ae7647f11dabc608150e143de",
                  "validation": "6c7b05ad0dd763f7985bf66e9a3cec2467900a59c1b30c52eda5355f75b4001c",
                  "test": "ef67b201a87fd7455cdf43b9efa6269f1859189f59b2887574d476f0cb33dfda"}),
    "hyponatremia": (105, {"train": "e567a519ef321ed82a9a5a3127b63e788d713e89d07f7d481d6b60539b5ed57d",
                           "validation": "1368dc1e2fe94b48e9e8f4583f378317b7fb727293fb09e646fb5a8fdc07d647",
                           "test": "da91b59f4186827b219f325169e277455845fc97b7d104a7f565a2816c17ea06"}),
    # adrd_prediction's digests are of its rows without the re-rendered fields (RERENDERED; the 1.1 files as
    # released were cd8063a5..., 5261a410..., 95683993...)
    "adrd_prediction": (100, {"train": "d203a4a2f9b971272dc6f42de2ddd680fe9459a902a457ce8f2181ffbb48a7e6",
                              "validation": "4f7e006e78d4fc57ea83421661080ccd9d676a3ffde4d2d0a8516bfc89460df8",
                              "test": "285141eec241eafbd6c57869c0dcfaa23d912891f189870538c71956538832ac"}),
}
# Fields re-rendered since the release, the cases (histories, outcomes, ids) unchanged: adrd_prediction 1.2 rewrote
# its rationales from the record alone (they had banded the risk model's own probability), and 1.3 added the
# clinician writer's (rationale_clinician).
RERENDERED = {"adrd_prediction": ("rationale", "rationale_stance", "rationale_clinician")}
GROWN_TO = {"uti": 400, "hyponatremia": 399, "adrd_prediction": 400}
# what makes two rows the same case, beyond the rendered text (which never repeats: the classification tests)
CASE_FIELDS = {"uti": lambda r: json.dumps({k: v for k, v in r.items() if k not in ("id", "text", "plan_included")},
                                           sort_keys=True),
               "hyponatremia": lambda r: (r["serum_sodium"], r["serum_osmolality"], r["urine_osmolality"],
                                          r["urine_sodium"], r["volume_status"]),
               "adrd_prediction": lambda r: r["history"]}


def _fresh_generator(task_dir: str):
    """A private copy of the module, so changing its SIZES leaves other tests' copies alone."""
    path = TASKS / task_dir / "generate.py"
    spec = importlib.util.spec_from_file_location(f"_growth_{task_dir}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lines(task_dir: str, split: str) -> list[str]:
    return (TASKS / task_dir / "data" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)


def _sha(lines: list[str], task_dir: str = "") -> str:
    drop = RERENDERED.get(task_dir, ())
    if drop:
        lines = [json.dumps({k: v for k, v in json.loads(line).items() if k not in drop}, sort_keys=True) + "\n"
                 for line in lines]
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


@pytest.mark.parametrize("task_dir", list(RELEASED))
def test_released_rows_are_bundled_unchanged(task_dir):
    before, digests = RELEASED[task_dir]
    assert _sha(_lines(task_dir, "train"), task_dir) == digests["train"]
    assert _sha(_lines(task_dir, "validation"), task_dir) == digests["validation"]
    test = _lines(task_dir, "test")
    assert len(test) == GROWN_TO[task_dir]
    assert _sha(test[:before], task_dir) == digests["test"]


@pytest.mark.parametrize("task_dir", list(RELEASED))
def test_the_generator_at_the_old_size_gives_the_old_splits(task_dir):
    """The growth only appends: cut the test split back and the generator writes the previous version."""
    before, _ = RELEASED[task_dir]
    gen = _fresh_generator(task_dir)
    assert gen.FIRST_TEST_DRAW == before and gen.SIZES["test"] == GROWN_TO[task_dir]
    gen.SIZES = {**gen.SIZES, "test": before}
    old = gen.generate(gen.SEED)
    for split in ("train", "validation", "test"):
        serialised = [json.dumps(row, sort_keys=True) + "\n" for row in old[split]]
        bundled = _lines(task_dir, split)
        assert serialised == bundled[:len(serialised)], split
    assert len(old["test"]) == before


@pytest.mark.parametrize("task_dir", list(RELEASED))
def test_added_test_rows_are_new_cases_with_balanced_labels(task_dir):
    before, _ = RELEASED[task_dir]
    rows = [json.loads(line) for line in _lines(task_dir, "test")]
    added = rows[before:]
    counts = collections.Counter(row["label"] for row in added)
    assert len(set(counts.values())) == 1, counts  # each batch balanced on its own, like the whole split
    key = CASE_FIELDS[task_dir]
    earlier = {key(json.loads(line)) for split in ("train", "validation") for line in _lines(task_dir, split)}
    earlier |= {key(row) for row in rows[:before]}
    assert not [row["id"] for row in added if key(row) in earlier]
    assert len({key(row) for row in added}) == len(added)
    ids = [row["id"] for row in rows]
    assert ids[before:] == sorted(ids[before:]) and min(ids[before:]) > max(ids[:before])  # ids continue
