"""Weights identity hashing: the tensor hash every evaluation used to run against the file hash, side by side.

For each model, loaded once through medbench's loaders, in one process, alternating and keeping the best of
``--repeats`` runs:

  old          medbench.models.weights_hash(model): every tensor copied to the CPU and hashed (what evaluate ran)
  new, cold    weights_identity(loaded) with an empty digest cache: check the model is as loaded, stream its files
  new, cached  the same with the digests cached: check the model is as loaded, read nothing from disk
  load check   remember_load_state(loaded): the one pass over the weights in memory that resolve_model now adds
  fallback     weights_identity after an in-place edit: the check, then the tensor hash

With ``--eval``, also the wall time of whole ``medbench eval`` processes (fresh load, score, record) with the old
hash patched back in and with the new one (digests cached), alternating.

    python benchmarks/bench_hash.py --eval              # the embedded SmolLM2-135M and a 1B-shape random Llama
    python benchmarks/bench_hash.py --tiny --eval       # CI smoke run on a tiny random model
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

# Llama-3.2-1B's shape with SmolLM2's vocabulary (its tokenizer is borrowed): about 1.07B parameters.
ONE_B_SHAPE = dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                   num_key_value_heads=8, max_position_embeddings=8192, tie_word_embeddings=True)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")

EVAL_PRELUDE = """
import pathlib, sys
import medbench.evaluation as evaluation, medbench.models as models, medbench.weights_identity as identity
identity.digest_cache_dir = lambda: pathlib.Path({digests!r})
if {old!r}:
    evaluation.weights_identity = lambda loaded: models.weights_hash(loaded.model)
from medbench.cli import main
main(sys.argv[1:])
"""


def build_one_b(directory: Path, tokenizer_dir: Path) -> Path:
    """A randomly initialised 1B-shape Llama saved as bf16 safetensors (kept and reused if already there)."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    if (directory / "model.safetensors.index.json").exists() or (directory / "model.safetensors").exists():
        return directory
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, **ONE_B_SHAPE)
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(default)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=directory.parent))
    model.save_pretrained(staging)
    for name in TOKENIZER_FILES:
        if (tokenizer_dir / name).exists():
            shutil.copy(tokenizer_dir / name, staging / name)
    os.replace(staging, directory)
    return directory


def timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def measure(ref: str, dtype: str, repeats: int, digests: Path) -> dict:
    import torch

    import medbench.weights_identity as identity
    from medbench.models import LoadOptions, resolve_model, weights_hash

    streamed = []
    stream = identity.stream_sha256
    identity.stream_sha256 = lambda path: streamed.append(path) or stream(path)
    identity.digest_cache_dir = lambda: digests
    load_s, loaded = timed(lambda: resolve_model(ref, LoadOptions(dtype=dtype, device="cpu")))
    parameters = sum(p.numel() for p in loaded.model.parameters())
    in_memory = sum(t.numel() * t.element_size() for t in loaded.model.state_dict().values())
    on_disk = sum(Path(f).stat().st_size for f in loaded.source_files)
    best = {key: float("inf") for key in ("old", "cold", "cached", "load_check")}
    reads = {}
    for _ in range(repeats):
        shutil.rmtree(digests, ignore_errors=True)
        for key, run in (("old", lambda: weights_hash(loaded.model)),
                         ("cold", lambda: identity.weights_identity(loaded)),
                         ("cached", lambda: identity.weights_identity(loaded)),
                         ("load_check", lambda: identity.remember_load_state(loaded))):
            streamed.clear()
            seconds, _ = timed(run)
            best[key] = min(best[key], seconds)
            reads[key] = len(streamed)
    if loaded._load_state is None:
        raise SystemExit(f"{ref}: not identified by its files (no source_files from its loader)")
    with torch.no_grad():
        next(loaded.model.parameters()).add_(1.0)
    fallback_s, _ = timed(lambda: identity.weights_identity(loaded))
    identity.stream_sha256 = stream
    return {"ref": ref, "dtype": dtype, "parameters": parameters, "gib_in_memory": in_memory / 2**30,
            "gib_on_disk": on_disk / 2**30, "files": len(loaded.source_files), "load_s": load_s,
            **{f"{key}_s": value for key, value in best.items()}, "fallback_s": fallback_s,
            "files_read_cold": reads["cold"], "files_read_cached": reads["cached"]}


def eval_walls(ref: str, dtype: str, limit: int, repeats: int, digests: Path) -> dict:
    """Wall time of ``medbench eval`` processes, old hash vs new (digests already cached), alternating."""
    best = {"old": float("inf"), "new": float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(repeats):
            for side in (("old", "new") if run % 2 == 0 else ("new", "old")):
                prelude = EVAL_PRELUDE.format(digests=str(digests), old=side == "old")
                command = [sys.executable, "-c", prelude, "eval", "--model", ref, "--tasks", "medqa", "--limit",
                           str(limit), "--dtype", dtype, "--device", "cpu", "--no-cache",
                           "--leaderboard-dir", str(Path(tmp) / f"{side}-{run}")]
                seconds, done = timed(lambda: subprocess.run(command, capture_output=True, text=True))
                if done.returncode != 0:
                    raise SystemExit(f"medbench eval ({side}) failed:\n{done.stdout}\n{done.stderr[-3000:]}")
                best[side] = min(best[side], seconds)
    return {"eval_old_s": best["old"], "eval_new_s": best["new"], "eval_limit": limit}


def load_average() -> str:
    return Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="a tiny random model only (smoke run)")
    parser.add_argument("--big-dir", type=Path, default=Path(tempfile.gettempdir()) / "medbench-bench-1b",
                        help="where the 1B-shape model is built (reused when there)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--eval", action="store_true", help="also time whole `medbench eval` processes")
    parser.add_argument("--eval-limit", type=int, default=2, help="MedQA items per timed eval")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    from medbench.models import DEFAULT_MODEL, resolve_model

    work = Path(tempfile.mkdtemp(prefix="bench-hash-"))
    digests = work / "file-digests"
    if args.tiny:
        from medbench.testing import make_tiny_model

        models = [(str(make_tiny_model(work / "tiny")), "fp32")]
        time.sleep(2.1)  # past the racy window: files written this instant are hashed but not cached
    else:
        embedded = resolve_model(DEFAULT_MODEL)
        models = [(DEFAULT_MODEL, "fp32"), (str(build_one_b(args.big_dir, Path(embedded.path))), "bf16")]
        del embedded
    print(f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads), load average {load_average()}")
    rows = []
    for ref, dtype in models:
        row = {"load_average_before": load_average(), **measure(ref, dtype, args.repeats, digests)}
        if args.eval:
            row.update(eval_walls(ref, dtype, args.eval_limit, args.repeats, digests))
        row["load_average_after"] = load_average()
        rows.append(row)
        print(f"\n{ref} ({row['parameters'] / 1e6:.1f}M parameters, {dtype}: {row['gib_in_memory']:.2f} GiB in "
              f"memory, {row['files']} files {row['gib_on_disk']:.2f} GiB on disk; load {row['load_s']:.2f} s)")
        print(f"  old tensor hash        {row['old_s']:8.3f} s")
        print(f"  new, cold              {row['cold_s']:8.3f} s  ({row['files_read_cold']} files read)")
        print(f"  new, cached            {row['cached_s']:8.3f} s  ({row['files_read_cached']} files read)"
              f"   {row['old_s'] / row['cached_s']:.1f}x faster than old")
        print(f"  load check (per load)  {row['load_check_s']:8.3f} s")
        print(f"  fallback after an edit {row['fallback_s']:8.3f} s")
        if args.eval:
            print(f"  medbench eval --limit {args.eval_limit}: old {row['eval_old_s']:.2f} s, new "
                  f"{row['eval_new_s']:.2f} s")
        print(f"  load average {row['load_average_before']} -> {row['load_average_after']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
