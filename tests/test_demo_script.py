"""`make demo`'s script: what it runs, and that it leaves a clone's `git status` clean (it writes under runs/demo,
which git ignores). medbench itself is replaced by a stub that records its arguments and writes where it is told."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

STUB = r"""#!/usr/bin/env bash
echo "$*" >> "$STUB_LOG"
while [ $# -gt 0 ]; do
    case "$1" in
        --output-dir|--leaderboard-dir|--dir) mkdir -p "$2" && touch "$2/written";;
        --run-name) run="$2";;
    esac
    [ "$1" = --output-dir ] && out="$2"
    shift
done
# A training run's manifest, which the demo reads to split training from scoring.
if [ -n "${run:-}" ]; then mkdir -p "$out/$run" && echo '{"status": "complete"}' > "$out/$run/medbench_run.json"; fi
"""


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
@pytest.mark.parametrize("dpo_steps", ["0", "3"])
def test_demo_runs_the_main_job_and_leaves_git_status_clean(tmp_path, dpo_steps):
    clone = tmp_path / "clone"
    (clone / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "demo.sh", clone / "scripts" / "demo.sh")
    shutil.copy(REPO / ".gitignore", clone / ".gitignore")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(clone)]
    subprocess.run(["git", "init", "-q", str(clone)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "x"], check=True)
    stub = tmp_path / "medbench"
    stub.write_text(STUB)
    stub.chmod(0o755)
    log = tmp_path / "calls.log"
    env = {**os.environ, "MEDBENCH": str(stub), "STUB_LOG": str(log), "DEMO_DPO_STEPS": dpo_steps}
    env.pop("DEMO_DIR", None)
    proc = subprocess.run(["bash", "scripts/demo.sh"], cwd=clone, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().splitlines()
    commands = [call.split()[0] + (" " + call.split()[2] if call.startswith("train") else "") for call in calls]
    expected = ["eval", "train sft"] + (["train dpo"] if dpo_steps != "0" else []) + ["leaderboard"]
    assert commands == expected
    assert "--baseline base" in calls[-1]
    # The summary: one aligned row per step (training and its checkpoint's scoring apart), then the total.
    table = proc.stdout.split("demo steps, wall time:\n", 1)[1].splitlines()
    rows = [line.rsplit(None, 1) for line in table[1:] if not line.startswith("page:")]
    names = [name.strip() for name, _ in rows]
    trained = [["SFT (53 steps)", "score sft checkpoint"]] + \
        ([["DPO from SFT (3 steps)", "score dpo checkpoint"]] if dpo_steps != "0" else [])
    assert names == ["score base", *sum(trained, []), "page (leaderboard)", "total"]
    assert table[0].split() == ["step", "seconds"]
    assert len({len(line) for line in table[:len(rows) + 1]}) == 1  # right-aligned seconds: rows of one width
    seconds = [int(value) for _, value in rows]
    assert min(seconds) >= 0 and seconds[-1] == sum(seconds[:-1])
    assert (clone / "runs" / "demo" / "leaderboard" / "written").exists()
    status = subprocess.run(git + ["status", "--porcelain"], capture_output=True, text=True, check=True).stdout
    assert status == ""
