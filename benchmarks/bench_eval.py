"""Evaluation throughput: medbench's prefix-sharing scorer against stock lm-eval HFLM, side by side.

Both score the same log-likelihood requests (the task's own prompts and choices, built by lm-eval from the
bundled YAMLs) with the same in-memory model on the same device, in one process, alternating runs. It
prints items/s for each, the ratio, and checks that every item gets the same prediction.

    python benchmarks/bench_eval.py                      # embedded SmolLM2-135M, 100 MedQA+MedMCQA items
    python benchmarks/bench_eval.py --tiny --items 16    # CI smoke run on a tiny random model
    python benchmarks/bench_eval.py --end-to-end         # also time the two CLIs (`lm_eval` vs `medbench eval`)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


def build_requests(tasks: list[str], items: int):
    """The (context, continuation) requests lm-eval builds for the first ``items`` documents of ``tasks``."""
    from lm_eval.api.instance import Instance

    from medbench.tasks import load_tasks

    loaded = load_tasks(tasks)
    docs = []
    for name in tasks:  # round-robin over tasks, then over their splits, until enough items
        task = loaded[name]
        for split in ("test", "validation", "train"):
            if task.dataset is not None and split in task.dataset:
                docs += [(task, doc) for doc in task.dataset[split]]
    docs = docs[:items]
    requests, owners = [], []
    for number, (task, doc) in enumerate(docs):
        context = task.doc_to_text(doc)
        for choice in task.doc_to_choice(doc):
            requests.append(Instance("loglikelihood", doc, (context, task.config.target_delimiter + choice), 0))
            owners.append(number)
    return requests, owners, len(docs)


def predictions(results, owners, n_items):
    best = [(-float("inf"), None)] * n_items
    choice_index = [0] * n_items
    for (loglik, _), owner in zip(results, owners):
        index = choice_index[owner]
        choice_index[owner] += 1
        if loglik > best[owner][0]:
            best[owner] = (loglik, index)
    return [index for _, index in best]


def time_scorer(lm, requests, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        for request in requests:
            request.resps = []
        started = time.perf_counter()
        lm.loglikelihood(requests, disable_tqdm=True)
        best = min(best, time.perf_counter() - started)
    return best


def end_to_end(model_dir: str, tasks: str, limit: int) -> dict[str, float]:
    """Wall time of the two command lines a user would type, same model directory, same tasks and limit."""
    root = Path(__file__).resolve().parent.parent
    venv_bin = Path(sys.executable).parent
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        commands = {
            "lm_eval": [str(venv_bin / "lm_eval"), "--model", "hf", "--model_args",
                        f"pretrained={model_dir},dtype=float32", "--include_path", str(root / "tasks"),
                        "--tasks", tasks, "--limit", str(limit), "--batch_size", "8", "--output_path",
                        f"{tmp}/lm_eval"],
            "medbench": [str(venv_bin / "medbench"), "eval", "--model", model_dir, "--tasks", tasks, "--limit",
                         str(limit), "--batch-size", "8", "--output-dir", f"{tmp}/medbench"],
        }
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            out[name] = time.perf_counter() - started
            print(f"  {name}: {out[name]:.1f} s   $ {' '.join(command)}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model reference (default: the embedded SmolLM2-135M)")
    parser.add_argument("--tiny", action="store_true", help="a tiny random model (CI smoke run)")
    parser.add_argument("--tasks", default="medqa,medmcqa")
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per scorer; the best is kept")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--end-to-end", action="store_true", help="also time `lm_eval` and `medbench eval` CLIs")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args()

    import torch
    from lm_eval.models.huggingface import HFLM

    from medbench.fastlm import PrefixSharingHFLM
    from medbench.models import LoadOptions, resolve_model

    if args.tiny:
        from medbench.testing import make_tiny_model

        model_ref = str(make_tiny_model(Path(tempfile.mkdtemp()) / "tiny"))
    else:
        model_ref = args.model
    loaded = resolve_model(model_ref, LoadOptions(device=args.device))
    device = str(next(loaded.model.parameters()).device)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    requests, owners, n_items = build_requests(tasks, args.items)
    scorers = {
        "lm-eval HFLM": HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=args.batch_size,
                             device=device),
        "medbench prefix": PrefixSharingHFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer,
                                             batch_size=args.batch_size, device=device),
    }
    preds, seconds = {}, {}
    for name, lm in scorers.items():  # one warm-up pass each, then timed passes
        preds[name] = predictions(lm.loglikelihood(requests, disable_tqdm=True), owners, n_items)
    for name, lm in scorers.items():
        seconds[name] = time_scorer(lm, requests, args.repeats)
    same = preds["lm-eval HFLM"] == preds["medbench prefix"]
    stock, fast = seconds["lm-eval HFLM"], seconds["medbench prefix"]
    figures = {
        "date": time.strftime("%Y-%m-%d"), "device": device if device != "cpu" else
        f"cpu ({os.cpu_count()} cores, torch threads {torch.get_num_threads()}, {platform.processor() or platform.machine()})",
        "model": loaded.ref, "parameters": sum(p.numel() for p in loaded.model.parameters()),
        "items": n_items, "requests": len(requests), "batch_size": args.batch_size,
        "lm_eval_items_per_s": n_items / stock, "medbench_items_per_s": n_items / fast, "speedup": stock / fast,
        "identical_predictions": same, "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    print(f"{n_items} items ({len(requests)} requests), {loaded.ref} on {figures['device']}, batch {args.batch_size}")
    print(f"  lm-eval HFLM     {stock:7.2f} s  {n_items / stock:7.1f} items/s")
    print(f"  medbench prefix  {fast:7.2f} s  {n_items / fast:7.1f} items/s   x{stock / fast:.2f}")
    print(f"  identical per-item predictions: {same}")
    if args.end_to_end and loaded.path:
        figures["end_to_end_s"] = end_to_end(loaded.path, args.tasks, args.items // max(1, len(tasks)))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    if not same:
        sys.exit("per-item predictions differ between the scorers")


if __name__ == "__main__":
    main()
