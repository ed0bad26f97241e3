"""Evaluation throughput: medbench's scorer against stock lm-eval HFLM, side by side.

Both score the same log-likelihood requests (the tasks' own prompts and choices, built by lm-eval from the
bundled YAMLs, the tasks' items interleaved so long and short prompts mix) with the same in-memory model on the
same device, in one process, alternating which runs first. medbench is measured as `medbench eval` runs it: the
prefix-sharing scorer inside the evaluation LM (progress after every batch, the request cache). It prints items/s
for each, the ratio, and checks that every item gets the same prediction.

    python benchmarks/bench_eval.py                      # embedded SmolLM2-135M, 100 MedQA+MedMCQA items
    python benchmarks/bench_eval.py --tasks triage_personnel,hyponatremia   # text choices (several tokens)
    python benchmarks/bench_eval.py --sliced             # also both scorers fed in slices, as medbench did before
    python benchmarks/bench_eval.py --floor              # also the decoder forward alone: what no scorer avoids
    python benchmarks/bench_eval.py --key-value-cache    # also multi-token choices from a key/value cache (before)
    python benchmarks/bench_eval.py --profile            # where each scorer's time goes (torch.profiler, 1 pass)
    python benchmarks/bench_eval.py --tiny --items 16    # CI smoke run on a tiny random model
    python benchmarks/bench_eval.py --synthetic letters --items 1000 --stock-batch-size auto   # the anchors' items
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
from itertools import zip_longest
from pathlib import Path
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


def build_requests(tasks: list[str], items: int):
    """The (context, continuation) requests lm-eval builds for ``items`` documents of ``tasks``, taken from each
    task in turn (its test split first) so that the tasks' prompt lengths mix."""
    from lm_eval.api.instance import Instance

    from medbench.tasks import load_tasks

    loaded = load_tasks(tasks)
    per_task = []
    for name in tasks:
        task = loaded[name]
        per_task.append([(task, doc) for split in ("test", "validation", "train")
                         if task.dataset is not None and split in task.dataset for doc in task.dataset[split]])
    docs = [pair for row in zip_longest(*per_task) for pair in row if pair is not None][:items]
    requests, owners = [], []
    for number, (task, doc) in enumerate(docs):
        context = task.doc_to_text(doc)
        for choice in task.doc_to_choice(doc):
            requests.append(Instance("loglikelihood", doc, (context, task.config.target_delimiter + choice), 0))
            owners.append(number)
    return requests, owners, len(docs)


def synthetic_requests(kind: str, items: int, seed: int = 1234):
    """The anchors' recipe (shared/anchors/lmeval-*): 4-option MCQs with 60-200-word clinical-word stems and 2-8-word
    options; ``letters`` scores the letters A-D (one token each), ``texts`` the option texts. Not bound to the
    bundled splits' size, so a run is long enough to time on a GPU."""
    import random

    from lm_eval.api.instance import Instance

    from bench_train import WORDS  # this folder is on sys.path when run as a script

    rng = random.Random(seed)

    def words(low: int, high: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))

    requests, owners = [], []
    for number in range(items):
        options = [words(2, 8) for _ in range(4)]
        doc = {"id": number}
        context = words(60, 200) + "\n" + "\n".join(f"{l}. {o}" for l, o in zip("ABCD", options)) + "\nAnswer:"
        for choice in ("ABCD" if kind == "letters" else options):
            requests.append(Instance("loglikelihood", doc, (context, " " + choice), 0))
            owners.append(number)
    return requests, owners, items


def item_scores(results, owners, n_items) -> list[list[float]]:
    """Each item's choices' log-likelihoods, in choice order."""
    scores: list[list[float]] = [[] for _ in range(n_items)]
    for (loglik, _), owner in zip(results, owners):
        scores[owner].append(loglik)
    return scores


def predictions(scores: list[list[float]]) -> list[int]:
    return [max(range(len(item)), key=item.__getitem__) for item in scores]  # the first best, as lm-eval picks


def disagreement(scores: list[list[float]], reference: list[list[float]]) -> dict:
    """Where a scorer's predictions differ from the reference's: how many items, how close the reference's two
    best choices were on them (a flip inside rounding noise, or not), and the largest log-likelihood difference."""
    ours, theirs = predictions(scores), predictions(reference)
    differ = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    tops = [sorted(reference[i], reverse=True) for i in differ]
    gaps = [top[0] - top[1] for top in tops if len(top) > 1]
    return {"items": len(differ), "max_top2_gap_there": max(gaps, default=0.0),
            "max_abs_loglik_diff": max((abs(a - b) for x, y in zip(scores, reference) for a, b in zip(x, y)),
                                       default=0.0)}


def run_once(score, requests) -> float:
    for request in requests:
        request.resps = []
    started = time.perf_counter()
    score(requests)
    return time.perf_counter() - started


def time_alternating(scorers: dict, requests, repeats: int) -> dict[str, list[float]]:
    """Every scorer once per round, the order reversed every other round, so a load spike from other jobs on the
    machine is not charged to one side only."""
    seconds: dict[str, list[float]] = {name: [] for name in scorers}
    for round_ in range(repeats):
        for name in (list(scorers) if round_ % 2 == 0 else list(scorers)[::-1]):
            seconds[name].append(run_once(scorers[name], requests))
    return seconds


def sliced(lm, size: int):
    """The scorer fed consecutive slices of ``size`` requests in document order, reporting between them: what
    medbench's evaluation LM did before it handed a task's requests over in one call."""
    def score(requests):
        out = []
        for start in range(0, len(requests), size):
            out += lm.loglikelihood(requests[start:start + size], disable_tqdm=True)
        return out
    return score


def count_decoder_tokens(model):
    """Positions the decoder runs (padding included) and its forward calls: the load-independent cost of a schedule."""
    counted = {"positions": 0, "calls": 0}

    def hook(module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None:
            counted["positions"] += ids.numel()
            counted["calls"] += 1

    return counted, model.get_decoder().register_forward_pre_hook(hook, with_kwargs=True)


def decoder_floor(lm, requests, batch_size: int) -> "Callable":
    """The decoder's forward pass over every distinct prompt once, longest first, batched as the scorers batch,
    with no output head: the work every log-likelihood scorer does (continuation tokens left out)."""
    import torch

    contexts = sorted({tuple(lm.tok_encode(r.args[0])) for r in requests}, key=lambda c: (-len(c), c))
    decoder = lm.model.get_decoder()

    def score(_requests):
        with torch.no_grad():
            for start in range(0, len(contexts), batch_size):
                batch = contexts[start:start + batch_size]
                width = max(len(c) for c in batch)
                ids = torch.tensor([list(c) + [0] * (width - len(c)) for c in batch], device=lm.device)
                decoder(input_ids=ids, use_cache=False)  # right padding: causal attention needs no mask
    return score


def profile(score, requests, model) -> dict[str, float]:
    """Seconds of one pass by part: the decoder's forward (timed by hooks on the module), the output head, the
    log-softmax (torch.profiler), and the rest: tokenising, padding, batching, Python in the scorer and lm-eval."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    spent = {"decoder": 0.0, "head": 0.0}
    handles = []
    for part, module in (("decoder", model.get_decoder()), ("head", model.get_output_embeddings())):
        def start(module, args, kwargs, part=part):
            spent[part + " started"] = time.perf_counter()

        def stop(module, args, kwargs, output, part=part):
            spent[part] += time.perf_counter() - spent.pop(part + " started")

        handles += [module.register_forward_pre_hook(start, with_kwargs=True),
                    module.register_forward_hook(stop, with_kwargs=True)]
    for request in requests:
        request.resps = []
    started = time.perf_counter()
    try:
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            score(requests)
    finally:
        for handle in handles:
            handle.remove()
    wall = time.perf_counter() - started
    softmax = sum(e.cpu_time_total for e in prof.key_averages() if e.key == "aten::log_softmax") / 1e6
    return {"decoder forward": spent["decoder"], "output head": spent["head"], "log-softmax": softmax,
            "the rest (tokenising, padding, Python)": wall - spent["decoder"] - spent["head"] - softmax,
            "wall": wall}


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
    parser.add_argument("--shape", default=None,
                        help="a random-initialised model of this bench_train.py shape (llama-3.2-1b, smollm2-135m) "
                             "instead of --model: where the embedded model's weights are not installed (a GPU machine)")
    parser.add_argument("--tokenizer", default=None, help="with --shape: its tokenizer directory")
    parser.add_argument("--tasks", default="medqa,medmcqa")
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--synthetic", choices=("letters", "texts"), default=None,
                        help="the anchors' synthetic MCQs instead of --tasks (any --items, letters or option texts)")
    parser.add_argument("--batch-size", type=lambda v: v if v == "auto" else int(v), default=8,
                        help="a number, or auto (medbench's search on a GPU, 8 on a CPU; lm-eval's own for stock)")
    parser.add_argument("--stock-batch-size", default=None,
                        help="lm-eval HFLM's batch size if not --batch-size: a number, or auto (its own search, "
                             "capped at its max_batch_size 64)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per scorer, alternating; the best is kept")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on a GPU that has it, else fp32), bf16, fp32")
    parser.add_argument("--sliced", action="store_true",
                        help="also both scorers fed slices of max(64, 8 x batch) requests (medbench before)")
    parser.add_argument("--key-value-cache", action="store_true",
                        help="also medbench with multi-token choices scored from the prompt's key/value cache (before "
                             "they ran in the prompt's own row)")
    parser.add_argument("--floor", action="store_true", help="also the decoder forward alone (no scorer beats it)")
    parser.add_argument("--profile", action="store_true", help="where the time goes: one profiled pass each")
    parser.add_argument("--end-to-end", action="store_true", help="also time `lm_eval` and `medbench eval` CLIs")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    args = parser.parse_args()

    import torch
    from lm_eval.models.huggingface import HFLM

    from medbench.fastlm import PrefixSharingHFLM
    from medbench.lm_wrapper import make_lm
    from medbench.models import LoadOptions, resolve_model

    if args.tiny:
        from medbench.testing import make_tiny_model

        model_ref = str(make_tiny_model(Path(tempfile.mkdtemp()) / "tiny"))
    elif args.shape:
        from bench_train import build_model  # this folder is on sys.path when run as a script

        model_ref = str(Path(tempfile.mkdtemp()) / args.shape)
        build_model(args.shape, Path(model_ref), 1234, args.tokenizer)
    else:
        model_ref = args.model
    loaded = resolve_model(model_ref, LoadOptions(device=args.device, dtype=args.dtype))
    device = str(next(loaded.model.parameters()).device)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if args.synthetic:
        tasks = [f"synthetic-{args.synthetic}"]
        requests, owners, n_items = synthetic_requests(args.synthetic, args.items)
    else:
        requests, owners, n_items = build_requests(tasks, args.items)
    stock_batch = args.stock_batch_size or args.batch_size
    fixed_batch = args.batch_size if args.batch_size != "auto" else 64  # the sliced and floor rows' batch
    stock = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, device=device,
                 batch_size=int(stock_batch) if str(stock_batch).isdigit() else stock_batch)
    engine = make_lm(loaded, args.batch_size, lambda task, done, total: None, "prefix")  # as `medbench eval` runs it
    scorers: dict[str, Callable] = {
        "lm-eval HFLM": lambda reqs: stock.loglikelihood(reqs, disable_tqdm=True),
        "medbench prefix": engine.loglikelihood,
    }
    if args.sliced:
        size = max(64, 8 * fixed_batch)
        scorers["lm-eval HFLM, sliced"] = sliced(stock, size)
        scorers["medbench prefix, sliced"] = sliced(
            PrefixSharingHFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=fixed_batch,
                              device=device), size)
    if args.key_value_cache:
        cached = PrefixSharingHFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=fixed_batch,
                                   device=device)
        cached.pack_choices = False
        scorers["medbench prefix, key/value cache"] = lambda reqs: cached.loglikelihood(reqs, disable_tqdm=True)
    scores, tokens = {}, {}
    for name, score in scorers.items():  # one warm-up pass each, counting what the decoder runs; then timed passes
        for request in requests:
            request.resps = []
        counted, handle = count_decoder_tokens(loaded.model)
        try:
            scores[name] = item_scores(score(requests), owners, n_items)
        finally:
            handle.remove()
        tokens[name] = counted
    if args.floor:
        scorers["decoder forward alone"] = decoder_floor(stock, requests, fixed_batch)
    load_before = os.getloadavg()[0]
    seconds = time_alternating(scorers, requests, args.repeats)
    load_after = os.getloadavg()[0]
    best = {name: min(times) for name, times in seconds.items()}
    differences = {name: disagreement(got, scores["lm-eval HFLM"]) for name, got in scores.items()
                   if name != "lm-eval HFLM"}
    same = all(d["items"] == 0 for d in differences.values())
    base = best["lm-eval HFLM"]
    figures = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "device": device if device != "cpu" else
        f"cpu ({os.cpu_count()} cores, torch threads {torch.get_num_threads()}, {platform.processor() or platform.machine()})",
        "model": loaded.ref, "parameters": sum(p.numel() for p in loaded.model.parameters()),
        "tasks": tasks, "items": n_items, "requests": len(requests), "batch_size": args.batch_size,
        "stock_batch_size": stock_batch, "stock_batch_sizes_picked": dict(getattr(stock, "batch_sizes", {}) or {}),
        "repeats": args.repeats, "load_1min_before_after": [round(load_before, 2), round(load_after, 2)],
        "seconds": seconds, "decoder_positions_and_calls": tokens, "items_per_s": {name: n_items / t for name, t in best.items()},
        "speedup": {name: base / t for name, t in best.items()},
        "lm_eval_items_per_s": n_items / base, "medbench_items_per_s": n_items / best["medbench prefix"],
        "identical_predictions": same, "differences_from_stock": differences, "dtype": str(loaded.model.dtype),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    picked = figures["stock_batch_sizes_picked"]
    print(f"{n_items} items ({len(requests)} requests) of {', '.join(tasks)}, {loaded.ref} on {figures['device']}, "
          f"batch {args.batch_size} (lm-eval: {stock_batch}{f', it picked {picked}' if picked else ''}), "
          f"best of {args.repeats}, load {load_before:.2f} -> {load_after:.2f}")
    for name, t in best.items():
        runs = " ".join(f"{x:.2f}" for x in seconds[name])
        ran = f", decoder ran {tokens[name]['positions']} positions in {tokens[name]['calls']} calls" \
            if name in tokens else ""
        print(f"  {name:34s} {t:7.2f} s  {n_items / t:7.1f} items/s   x{base / t:.2f}   (runs: {runs}{ran})")
    print(f"  identical per-item predictions: {same}")
    for name, d in differences.items():
        if d["items"]:
            print(f"    {name}: {d['items']} of {n_items} items differ; there stock's two best choices were within "
                  f"{d['max_top2_gap_there']:.3g} nats (largest log-likelihood difference anywhere "
                  f"{d['max_abs_loglik_diff']:.3g})")
    if args.profile:
        figures["profile_s"] = {}
        for name in ("lm-eval HFLM", "medbench prefix"):
            groups = figures["profile_s"][name] = profile(scorers[name], requests, loaded.model)
            print(f"  where the time goes, {name}: " + ", ".join(f"{group} {t:.2f} s" for group, t in groups.items()))
    if args.end_to_end and loaded.path:
        figures["end_to_end_s"] = end_to_end(loaded.path, args.tasks, args.items // max(1, len(tasks)))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    if not same:
        sys.exit("per-item predictions differ between the scorers")


if __name__ == "__main__":
    main()
