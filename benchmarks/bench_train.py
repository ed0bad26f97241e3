"""Training throughput: medbench's sft / dpo trainer against plain TRL, side by side.

Both train the same random-initialised model shape, on the same examples in the same order, on the same device,
with the same LoRA adapter (r=16, alpha=32, dropout 0.05, all linear layers) or full fine-tuning, per-device
batch and precision. "Plain TRL" is SFTTrainer / DPOTrainer with TRL's defaults (activation checkpointing on,
padded batches, DPO reference pass in every step), only the learning rate, seed and sampler order set to medbench's
so that both take the same first step. "medbench" is the sft / dpo plugin (medbench_plugins) with its defaults.
Each side runs in a child process of its own (clean memory figures), measured by the same meter
(medbench.throughput: real tokens, first steps left out as warm-up, CUDA synchronised).

Printed per side: train tokens/s (timed steps), end-to-end tokens/s (every trained token over the wall time from
loading the model to the end of training: tokenisation, DPO reference precompute, warm-up and medbench's final
save included), peak memory (CUDA: max allocated during training; CPU: the process's resident high-water mark
during training), MFU (model FLOPs as in medbench.flops; n/a on a CPU unless MEDBENCH_PEAK_TFLOPS is set),
and the first step's loss, which must agree: both sides see the same batch with the same starting weights.

    python benchmarks/bench_train.py --tiny                                        # CI smoke run (< 1 min, CPU)
    python benchmarks/bench_train.py --shape llama-3.2-1b --trainer sft --method lora   # the anchor's SFT LoRA row
    python benchmarks/bench_train.py --shape smollm2-135m --trainer dpo --data medqa --steps 4 --warmup-steps 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Llama shapes (no download: random weights from a LlamaConfig). The vocabulary is the tokenizer's (SmolLM2's
# 49,152 when the embedded model is installed), as in the anchors: Llama-3.2-1B's shape then has 1.07B parameters.
# Llama 3's RoPE scaling is left out; it does not change the cost.
SHAPES = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16, rope_theta=10000.0),
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, head_dim=64, rope_theta=100000.0),
    "llama-3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                         num_key_value_heads=8, head_dim=64, rope_theta=500000.0),
}
LORA = dict(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
WORDS = ("patient presents with acute chronic pain fever cough dyspnea chest abdominal headache nausea vomiting "
         "history of hypertension diabetes mellitus asthma renal hepatic cardiac failure infection sepsis blood "
         "pressure heart rate temperature examination reveals tenderness swelling erythema murmur rales wheezing "
         "laboratory studies show elevated decreased serum sodium potassium creatinine glucose hemoglobin platelet "
         "leukocyte count urine culture imaging radiograph computed tomography magnetic resonance ultrasound "
         "biopsy lesion mass nodule carcinoma lymphoma anemia thrombosis embolism infarction ischemia stroke "
         "seizure syncope confusion fatigue weight loss jaundice rash edema treatment therapy antibiotic "
         "anticoagulant insulin steroid surgery diagnosis most likely next best step management mechanism "
         "the a of in and with for on after before during since year old man woman child infant").split()


def synthetic_examples(n: int, seed: int, prompt_words: tuple[int, int], answer_words: tuple[int, int]):
    """The anchors' recipe: clinical-word prompts and completions of random lengths; a second completion as the
    rejected answer."""
    rng = random.Random(seed)

    def text(low: int, high: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))

    return [{"prompt": text(*prompt_words) + "\nAnswer:", "completion": " " + text(*answer_words),
             "rejected": " " + text(*answer_words)} for _ in range(n)]


def medqa_examples(n: int, seed: int):
    """The bundled MedQA training split, repeated to ``n``; rejected is a seeded wrong option (as `--pairs task`)."""
    from medbench.trainingdata import load_training_examples

    base = load_training_examples("medqa")
    out = []
    for i in range(n):
        example = base[i % len(base)]
        rejected = random.Random(f"{seed}:{example.doc_id}").choice(example.rejected)
        out.append({"prompt": example.prompt, "completion": example.completion, "rejected": rejected})
    return out


def build_model(shape: str, directory: Path, seed: int, tokenizer_dir: str | None = None) -> dict:
    """A random-initialised Llama of ``shape`` with a tokenizer, saved as safetensors (what both sides load).
    The tokenizer: ``tokenizer_dir`` (the GPU machine's carried SmolLM2 files), else the embedded model's."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from medbench.testing import make_byte_tokenizer

    tokenizer, source = make_byte_tokenizer(), "byte-level test tokenizer"
    if tokenizer_dir:
        tokenizer, source = AutoTokenizer.from_pretrained(tokenizer_dir), f"from {tokenizer_dir}"
    elif shape != "tiny":
        try:
            from medbench_plugins.builtin_models import EmbeddedModelLoader

            tokenizer = AutoTokenizer.from_pretrained(str(EmbeddedModelLoader().ensure_converted()))
            source = "SmolLM2 (embedded model)"
        except Exception as exc:  # the embedded model is not installed: the byte tokenizer still measures
            print(f"note: SmolLM2 tokenizer unavailable ({exc}); using the byte-level tokenizer", file=sys.stderr)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=8192, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, **SHAPES[shape])
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    parameters = sum(p.numel() for p in model.parameters())
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return {"parameters": parameters, "tokenizer": source, "vocab_size": len(tokenizer)}


# --- the two sides, each run in a child process -------------------------------------------------------------------

def device_and_dtypes(device_arg: str, method: str):
    """medbench's choices, used by both sides: bf16 autocast on a GPU that supports it; a LoRA base in that dtype, a
    full fine-tune with fp32 weights."""
    import torch

    from medbench.models import pick_device, pick_dtype

    device = pick_device(device_arg)
    compute = pick_dtype("auto", device)
    weights = torch.float32 if method == "full" else compute
    return device, compute, weights


def learning_rate(trainer: str, method: str) -> float:
    if trainer == "sft":
        from medbench_plugins.sft import LEARNING_RATES
    else:
        from medbench_plugins.dpo import LEARNING_RATES
    return LEARNING_RATES[method]


def run_plain(args, work: Path, examples: list[dict]) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from medbench.throughput import throughput_meter

    device, compute, weights = device_and_dtypes(args.device, args.method)
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(work / "model", dtype=weights)
    tokenizer = AutoTokenizer.from_pretrained(work / "model")
    common = dict(output_dir=str(work / "plain-run"), per_device_train_batch_size=args.batch_size,
                  max_steps=args.steps, logging_steps=1, save_strategy="no", report_to="none", seed=args.seed,
                  learning_rate=learning_rate(args.trainer, args.method), train_sampling_strategy="sequential",
                  bf16=compute == torch.bfloat16, use_cpu=device == "cpu", disable_tqdm=True)
    for item in args.plain_option:  # an ablation, e.g. activation_checkpointing=false
        key, _, value = item.partition("=")
        common[key.replace("-", "_")] = json.loads(value) if value in ("true", "false", "null") or \
            value.replace(".", "", 1).lstrip("-").isdigit() else value
    peft_config = LoraConfig(**LORA) if args.method == "lora" else None
    if args.trainer == "sft":
        from trl import SFTConfig, SFTTrainer

        dataset = Dataset.from_list([{"prompt": e["prompt"], "completion": e["completion"]} for e in examples])
        trainer = SFTTrainer(model=model, args=SFTConfig(**common), train_dataset=dataset, processing_class=tokenizer,
                             peft_config=peft_config)
    else:
        from trl import DPOConfig, DPOTrainer

        dataset = Dataset.from_list([{"prompt": e["prompt"], "chosen": e["completion"], "rejected": e["rejected"]}
                                     for e in examples])
        trainer = DPOTrainer(model=model, args=DPOConfig(**common), train_dataset=dataset, processing_class=tokenizer,
                             peft_config=peft_config)
    built = time.perf_counter()
    reference_forward = args.trainer == "dpo" and not trainer.args.precompute_ref_log_probs
    meter = throughput_meter(warmup_steps=args.warmup_steps, reference_forward=reference_forward).attach(trainer)
    trainer.train()
    ended = time.perf_counter()
    return figures(meter.summary, trainer.state.log_history, started, built, ended, {
        "activation_checkpointing": bool(trainer.args.activation_checkpointing),
        "padding_free": bool(getattr(trainer, "padding_free", False)),
        "precompute_ref_log_probs": bool(getattr(trainer.args, "precompute_ref_log_probs", False)),
        "attn_implementation": trainer.model.config._attn_implementation})


def run_medbench(args, work: Path, examples: list[dict]) -> dict:
    from medbench.models import LoadOptions, pick_device
    from medbench.trainers.fused_head import labelled_positions_only
    from medbench.training import TrainRequest, build_config
    from medbench.trainingdata import TrainingExample

    if args.trainer == "sft":
        from medbench_plugins.sft import SFTOptions as Options
        from medbench_plugins.sft import prepare
    else:
        from medbench_plugins.dpo import DPOOptions as Options
        from medbench_plugins.dpo import prepare
    options = {"method": args.method, "train_batch_size": args.batch_size, "max_steps": args.steps,
               "logging_steps": 1, "max_length": 8192, "lora_r": LORA["r"], "lora_alpha": LORA["lora_alpha"],
               "lora_dropout": LORA["lora_dropout"]}
    for item in args.medbench_option:
        key, _, value = item.partition("=")
        options[key.replace("-", "_")] = value
    config = build_config(Options, {}, options, args.trainer)
    training = [TrainingExample(doc_id=i, prompt=e["prompt"], completion=e["completion"], rejected=[e["rejected"]],
                                answer=e["completion"].strip()) for i, e in enumerate(examples)]
    request = TrainRequest(model_ref=str(work / "model"), task="bench", output_dir=work / "medbench-run",
                           config=config, seed=args.seed, load_options=LoadOptions(device=args.device),
                           examples=training, keep_order=True)
    started = time.perf_counter()
    run = prepare(request)
    built = time.perf_counter()
    run.warmup_steps = args.warmup_steps
    checkpoints = run.run()
    ended = time.perf_counter()
    trainer = run.trainer
    out = figures(run.meter.summary, trainer.state.log_history, started, built, ended, {
        "activation_checkpointing": bool(trainer.args.activation_checkpointing),
        "padding_free": bool(getattr(trainer, "padding_free", False)),
        "precompute_ref_log_probs": bool(getattr(trainer.args, "precompute_ref_log_probs", False)),
        "attn_implementation": trainer.model.config._attn_implementation,
        # DPO: the share of forwards that ran one packed row per pair (medbench.trainers.shared_prompt)
        "shared_prompt_share": getattr(trainer, "shared_prompt_share", lambda: None)(),
        # TRL's fused head projects only labelled positions (on a CPU since medbench.trainers.fused_head)
        "head_on_labelled_positions_only": labelled_positions_only(pick_device(args.device)),
        "batch_backoffs": run.backoff.retries if run.backoff else []})
    manifest_keys = ("train_tokens_per_s", "train_mfu", "flops_per_token", "peak_memory_gb", "trainable_params")
    out["checkpoint_metrics"] = {k: checkpoints[-1].metrics.get(k) for k in manifest_keys}
    return out


def figures(summary: dict, log_history: list[dict], started: float, built: float, ended: float, setup: dict) -> dict:
    losses = [entry["loss"] for entry in log_history if "loss" in entry]
    return {"train_tokens_per_s": summary.get("train_tokens_per_s"), "mfu": summary.get("train_mfu"),
            "peak_memory_gb": summary.get("peak_memory_gb"), "flops_per_token": summary.get("flops_per_token"),
            "trainable_params": summary.get("trainable_params"), "total_params": summary.get("total_params"),
            "train_tokens": summary.get("train_tokens"), "measured_steps": summary.get("measured_steps"),
            "end_to_end_tokens_per_s": (summary.get("train_tokens") or 0) / max(ended - started, 1e-9),
            "setup_s": built - started, "wall_s": ended - started, "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None,
            "step_tokens_per_s": [entry["tokens_per_s"] for entry in log_history if "tokens_per_s" in entry
                                  and "train_runtime" not in entry],
            "settings": setup}


def child(args) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work)
    examples = json.loads((work / "data.json").read_text())
    result = (run_plain if args.child == "plain" else run_medbench)(args, work, examples)
    (work / f"{args.child}.json").write_text(json.dumps(result, indent=2, default=str))


# --- the parent: build, run both, compare -------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trainer", choices=("sft", "dpo"), default="sft")
    parser.add_argument("--method", choices=("lora", "full"), default="lora")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="smollm2-135m")
    parser.add_argument("--data", choices=("synthetic", "medqa"), default="synthetic",
                        help="synthetic: the anchors' recipe (60-300-word prompts, 10-60-word completions); "
                             "medqa: the bundled MedQA training split, repeated")
    parser.add_argument("--steps", type=int, default=45, help="optimizer steps (one epoch over steps x batch examples)")
    parser.add_argument("--warmup-steps", type=int, default=5, help="first steps left out of the tokens/s figures")
    parser.add_argument("--batch-size", type=int, default=8, help="per-device batch, both sides")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--repeats", type=int, default=1, help="runs per side, alternating; the fastest is kept")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads in each run (0: torch's default)")
    parser.add_argument("--medbench-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a trainer option for the medbench side, e.g. padding_free=true (repeatable)")
    parser.add_argument("--plain-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a TRL config field for the plain side (an ablation; the default is TRL's defaults)")
    parser.add_argument("--tiny", action="store_true",
                        help="CI smoke run: tiny model, short synthetic examples, 4 steps of 4 (no timing claims)")
    parser.add_argument("--tokenizer", default=None,
                        help="tokenizer directory for the random model (default: the embedded SmolLM2's)")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    parser.add_argument("--child", choices=("plain", "medbench"), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tiny:
        args.shape, args.steps, args.warmup_steps, args.batch_size = "tiny", 4, 1, 4
    if args.steps <= args.warmup_steps:
        parser.error("--steps must exceed --warmup-steps")
    return args


def child_command(args, side: str, work: Path) -> list[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", side, "--work", str(work),
               "--trainer", args.trainer, "--method", args.method, "--shape", args.shape, "--steps", str(args.steps),
               "--warmup-steps", str(args.warmup_steps), "--batch-size", str(args.batch_size), "--device", args.device,
               "--seed", str(args.seed), "--threads", str(args.threads)]
    for item in args.medbench_option:
        command += ["--medbench-option", item]
    for item in args.plain_option:
        command += ["--plain-option", item]
    return command


def describe_device(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda})"
    threads = torch.get_num_threads()
    return f"cpu ({os.cpu_count()} cores, {platform.processor() or platform.machine()}, torch {torch.__version__}, " \
           f"{threads} threads)"


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        return child(args)
    import peft
    import torch
    import transformers
    import trl

    from medbench.models import pick_device

    device = pick_device(args.device)
    n_examples = args.steps * args.batch_size
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        work = Path(tmp)
        model_info = build_model(args.shape, work / "model", args.seed, args.tokenizer)
        if args.tiny:
            examples = synthetic_examples(n_examples, args.seed, (10, 30), (2, 6))
        elif args.data == "medqa":
            examples = medqa_examples(n_examples, args.seed)
        else:
            examples = synthetic_examples(n_examples, args.seed, (60, 300), (10, 60))
        (work / "data.json").write_text(json.dumps(examples))
        results: dict[str, dict] = {}
        for repeat in range(args.repeats):
            order = ("plain", "medbench") if repeat % 2 == 0 else ("medbench", "plain")
            for side in order:
                done = subprocess.run(child_command(args, side, work), capture_output=True, text=True)
                if done.returncode != 0:
                    sys.stderr.write(done.stdout[-4000:] + done.stderr[-8000:])
                    sys.exit(f"the {side} run failed (exit {done.returncode})")
                result = json.loads((work / f"{side}.json").read_text())
                best = results.get(side)
                if best is None or (result["train_tokens_per_s"] or 0) > (best["train_tokens_per_s"] or 0):
                    results[side] = result
    plain, fast = results["plain"], results["medbench"]

    def ratio(key: str) -> float | None:
        a, b = plain.get(key), fast.get(key)
        return b / a if a and b else None

    report = {
        "date": time.strftime("%Y-%m-%d"), "device": describe_device(device),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "trainer": args.trainer, "method": args.method, "shape": args.shape, **model_info,
        "data": "synthetic-tiny" if args.tiny else args.data, "examples": n_examples, "steps": args.steps,
        "warmup_steps": args.warmup_steps, "batch_size": args.batch_size, "repeats": args.repeats,
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
                     "peft": peft.__version__},
        "plain": plain, "medbench": fast,
        "ratio": {"train_tokens_per_s": ratio("train_tokens_per_s"),
                  "end_to_end_tokens_per_s": ratio("end_to_end_tokens_per_s"),
                  "peak_memory": ratio("peak_memory_gb")},
        "command": " ".join(["python", "benchmarks/bench_train.py", *(argv if argv is not None else sys.argv[1:])]),
    }
    print(f"{args.trainer} {args.method} · {args.shape} shape ({model_info['parameters'] / 1e6:.1f}M params, "
          f"{model_info['tokenizer']}) · {report['device']}")
    print(f"{args.steps} steps of {args.batch_size} ({args.warmup_steps} warm-up) · data {report['data']} · "
          f"load average {load_before[0]:.2f} before, {report['load_average_after'][0]:.2f} after")

    def fmt(value, spec: str, missing: str = "n/a") -> str:
        return missing if value is None else format(value, spec)

    print(f"  {'':10} {'train tok/s':>12} {'end-to-end':>11} {'peak GiB':>9} {'MFU':>7} {'step-1 loss':>12}  "
          f"settings")
    for name, row in (("plain TRL", plain), ("medbench", fast)):
        settings = row["settings"]
        shown = ", ".join(f"{k}={v}" for k, v in settings.items() if v not in (False, [], None))
        mfu = None if row["mfu"] is None else 100 * row["mfu"]
        print(f"  {name:10} {fmt(row['train_tokens_per_s'], ',.1f'):>12} "
              f"{fmt(row['end_to_end_tokens_per_s'], ',.1f'):>11} {fmt(row['peak_memory_gb'], '.2f'):>9} "
              f"{fmt(mfu, '.2f') + ('%' if mfu is not None else ''):>7} {fmt(row['first_loss'], '.5f'):>12}  {shown}")
    r = report["ratio"]
    print(f"  {'ratio':10} {fmt(r['train_tokens_per_s'], '.2f', '-'):>11}x {fmt(r['end_to_end_tokens_per_s'], '.2f', '-'):>10}x "
          f"{fmt(r['peak_memory'], '.2f', '-'):>8}x   (medbench / plain)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
