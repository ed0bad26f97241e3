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
    shift
done
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
    assert "--baseline base" in calls[-1] and "total" in proc.stdout  # each step's wall time, then the total
    assert (clone / "runs" / "demo" / "leaderboard" / "written").exists()
    status = subprocess.run(git + ["status", "--porcelain"], capture_output=True, text=True, check=True).stdout
    assert status == ""
