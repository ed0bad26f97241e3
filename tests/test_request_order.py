"""medbench's evaluation LM (progress after every batch, a request cache) hands the scorer a task's requests in
one call: the batches the model runs follow the scorer's own order over the whole task, as when lm-eval runs it
alone, and the results are stock lm-eval HFLM's."""

from __future__ import annotations

import json
import random

import pytest

from medbench.lm_wrapper import RequestCache, make_lm
from medbench.models import resolve_model

LETTERS = [" A", " B", " C", " D"]
TEXTS = [" physician", " nurse", " front desk", " pharmacist"]  # several tokens each with a byte tokenizer


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    return resolve_model(str(tiny_model_dir))


def mixed_length_pairs(items: int, choices: list[str], seed: int = 0) -> list[tuple[str, str]]:
    """Short and long prompts shuffled together, as in a task whose questions differ in length."""
    rng = random.Random(seed)
    pairs = []
    for item in range(items):
        words = rng.choice([2, 3, 5, 30, 45, 60])
        context = f"Question {item}: " + " ".join(rng.choice(["fever", "rash", "cough", "pain"]) for _ in range(words))
        pairs += [(context + "\nAnswer:", choice) for choice in choices]
    return pairs


def instances(kind, args_list):
    from lm_eval.api.instance import Instance

    return [Instance(kind, {}, args, i) for i, args in enumerate(args_list)]


def over_a_cache(kwargs) -> bool:
    """Whether a forward call continues a prompt's KV cache (fastlm passes it as ``cache`` where the model takes it)."""
    return kwargs.get("past_key_values") is not None or kwargs.get("cache") is not None


def record_forwards(model, every_call: bool = False):
    """Shapes of the batches the model's forward receives; unless ``every_call``, passes over a prompt's cache
    (fastlm's multi-token continuations, generation steps) are left out."""
    widths = []

    def hook(module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids is not None and (every_call or not over_a_cache(kwargs)):
            widths.append(tuple(ids.shape))

    return widths, model.register_forward_pre_hook(hook, with_kwargs=True)


def stock_lm(loaded, scorer: str, batch_size: int):
    from lm_eval.models.huggingface import HFLM

    from medbench.fastlm import PrefixSharingHFLM

    cls = PrefixSharingHFLM if scorer == "prefix" else HFLM
    return cls(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=batch_size, device="cpu")


@pytest.mark.parametrize("scorer", ["prefix", "hflm"])
def test_batches_follow_the_scorers_order_over_the_whole_task(loaded, scorer, tmp_path):
    pairs = mixed_length_pairs(40, LETTERS)  # 160 requests: more than any slice of the old chunked feeding
    alone, handle = record_forwards(loaded.model)
    try:
        stock_lm(loaded, scorer, 4).loglikelihood(instances("loglikelihood", pairs), disable_tqdm=True)
        alone_batches = list(alone)
        alone.clear()
        reports = []
        lm = make_lm(loaded, 4, lambda task, done, total: reports.append((done, total)), scorer)
        lm.request_cache = RequestCache(tmp_path / "requests.jsonl")
        lm.loglikelihood(instances("loglikelihood", pairs))
    finally:
        handle.remove()
    assert alone == alone_batches  # the same batches, in the same order
    widths = [width for _, width in alone]
    assert widths == sorted(widths, reverse=True)  # longest first over all 160 requests, not per slice
    assert len(widths) == 10  # 40 prompts, 4 a batch (stock HFLM runs a prompt once for one-token choices)
    # progress after every batch, ending at the total
    assert [done for done, _ in reports] == sorted({done for done, _ in reports})
    assert reports[-1] == (160, 160) and len(reports) == len(widths)


@pytest.mark.parametrize("batch_size", [1, 3, 8])
@pytest.mark.parametrize("scorer", ["prefix", "hflm"])
def test_predictions_equal_stock_lm_eval_at_any_batch_size(loaded, scorer, batch_size, tmp_path):
    pairs = mixed_length_pairs(12, LETTERS, seed=1) + mixed_length_pairs(12, TEXTS, seed=2)
    expected = stock_lm(loaded, "hflm", batch_size).loglikelihood(instances("loglikelihood", pairs),
                                                                   disable_tqdm=True)
    lm = make_lm(loaded, batch_size, None, scorer)
    lm.request_cache = RequestCache(tmp_path / "requests.jsonl")
    got = lm.loglikelihood(instances("loglikelihood", pairs))

    def predictions(results):
        return [max(range(4), key=lambda k: results[item * 4 + k][0]) for item in range(len(results) // 4)]

    assert predictions(got) == predictions(expected)
    for (have, have_greedy), (want, want_greedy) in zip(got, expected):
        assert have == pytest.approx(want, abs=1e-4) and have_greedy == want_greedy


def test_generation_batches_are_stock_lm_evals_with_progress_after_each(loaded, tmp_path):
    settings = [{"until": ["\n"], "max_gen_toks": 3, "do_sample": False},
                {"until": ["."], "max_gen_toks": 2, "do_sample": False}]
    requests = [(context, settings[i % 2]) for i, (context, _) in enumerate(mixed_length_pairs(10, [" A"], seed=3))]
    alone, handle = record_forwards(loaded.model, every_call=True)
    try:
        stock = stock_lm(loaded, "hflm", 3).generate_until(instances("generate_until", requests), disable_tqdm=True)
        alone_batches = list(alone)
        alone.clear()
        reports = []
        lm = make_lm(loaded, 3, lambda task, done, total: reports.append(done), "prefix")
        lm.request_cache = RequestCache(tmp_path / "requests.jsonl")
        got = lm.generate_until(instances("generate_until", requests))
    finally:
        handle.remove()
    assert got == stock
    assert alone == alone_batches  # grouped by generation settings, longest prompt first, as lm-eval does
    assert reports == [3, 5, 8, 10]  # two groups of 5: batches of 3 and 2 each
    lines = (tmp_path / "requests.jsonl").read_text().splitlines()
    assert len(lines) == 4  # saved after every generation batch


def test_an_interrupted_task_keeps_what_it_scored_and_resumes_from_it(loaded, tmp_path):
    pairs = mixed_length_pairs(40, LETTERS, seed=4)
    expected = stock_lm(loaded, "prefix", 2).loglikelihood(instances("loglikelihood", pairs), disable_tqdm=True)
    calls = []

    def fail_on_the_tenth_batch(module, args, kwargs):
        if not over_a_cache(kwargs):
            calls.append(1)
            if len(calls) == 10:
                raise KeyboardInterrupt

    handle = loaded.model.register_forward_pre_hook(fail_on_the_tenth_batch, with_kwargs=True)
    lm = make_lm(loaded, 2, None, "prefix")  # saved every 64 results (8 batches of 2 questions x 4 choices)
    lm.request_cache = RequestCache(tmp_path / "requests.jsonl")
    try:
        with pytest.raises(KeyboardInterrupt):
            lm.loglikelihood(instances("loglikelihood", pairs))
    finally:
        handle.remove()
    lines = (tmp_path / "requests.jsonl").read_text().splitlines()
    assert [len(json.loads(line)) for line in lines] == [64, 8]  # and what the 9th batch scored, on the way out

    resumed = make_lm(loaded, 2, None, "prefix")
    resumed.request_cache = RequestCache(tmp_path / "requests.jsonl")
    scored, handle = record_forwards(loaded.model)
    try:
        got = resumed.loglikelihood(instances("loglikelihood", pairs))
    finally:
        handle.remove()
    assert resumed.request_cache.served == 72 and len(scored) == (160 - 72) // 4 // 2
    assert [round(x, 4) for x, _ in got] == [round(x, 4) for x, _ in expected]
