"""The prefix-sharing scorer gives stock HFLM's per-item results."""

import pytest

from medbench.evaluation import EvalConfig, evaluate
from medbench.models import resolve_model
from medbench.records import read_samples


def _requests(lm, pairs):
    from lm_eval.api.instance import Instance

    return [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    return resolve_model(str(tiny_model_dir))


@pytest.mark.parametrize("attention,packed", [("sdpa", True), ("eager", True), ("sdpa", False)])
def test_same_loglikelihoods_as_stock_hflm(loaded, monkeypatch, attention, packed):
    """Multi-token choices scored in their context's row (sdpa and eager block masks) or from its key/value cache:
    stock HFLM's values either way, in one forward pass per batch when packed."""
    from lm_eval.models.huggingface import HFLM

    from medbench.fastlm import PrefixSharingHFLM

    monkeypatch.setattr(loaded.model.config, "_attn_implementation", attention)
    contexts = ["Question: fever and dysuria?\nAnswer:", "Q: x\nA:", "A much longer context " * 6 + "Answer:"]
    choices = [" A", " yes", " front desk", " nurse practitioner", "B"]  # one to many byte tokens
    pairs = [(c, k) for c in contexts for k in choices]
    stock = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=4, device="cpu")
    fast = PrefixSharingHFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=2, device="cpu")
    fast.pack_choices = packed
    expected = stock.loglikelihood(_requests(stock, pairs), disable_tqdm=True)
    forwards = []
    hook = loaded.model.register_forward_hook(lambda module, args, output: forwards.append(1))
    try:
        got = fast.loglikelihood(_requests(fast, pairs), disable_tqdm=True)
    finally:
        hook.remove()
    assert len(forwards) == 2 if packed else len(forwards) > 2  # two batches of contexts; a cache needs more
    for (want, want_greedy), (have, have_greedy) in zip(expected, got):
        assert have == pytest.approx(want, abs=1e-4)
        assert have_greedy == want_greedy


def test_bf16_scores_are_bit_identical_to_stock_hflm_without_padding(tiny_model_dir):
    """In bf16 a log-likelihood is one rounding step from its neighbours, and exact ties between choices are
    common: a multi-token choice's sum must round as HFLM rounds it (one tensor sum), or ties flip."""
    from lm_eval.models.huggingface import HFLM

    from medbench.fastlm import PrefixSharingHFLM
    from medbench.models import LoadOptions

    bf16 = resolve_model(str(tiny_model_dir), LoadOptions(device="cpu", dtype="bf16"))
    contexts = ["Question: fever and dysuria?\nAnswer:", "A much longer context " * 6 + "Answer:"]
    choices = [" A", " front desk", " nurse practitioner", " primary polydipsia due to psychiatric illness"]
    pairs = [(c, k) for c in contexts for k in choices]
    stock = HFLM(pretrained=bf16.model, tokenizer=bf16.tokenizer, batch_size=1, device="cpu")
    fast = PrefixSharingHFLM(pretrained=bf16.model, tokenizer=bf16.tokenizer, batch_size=1, device="cpu")
    expected = stock.loglikelihood(_requests(stock, pairs), disable_tqdm=True)
    got = fast.loglikelihood(_requests(fast, pairs), disable_tqdm=True)
    assert [score for score, _ in got] == [score for score, _ in expected]


def test_pairs_longer_than_the_window_are_truncated_as_hflm_does(loaded):
    from lm_eval.models.huggingface import HFLM

    from medbench.fastlm import PrefixSharingHFLM

    pairs = [("word " * 400, " A"), ("short", " B")]
    stock = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=2, device="cpu", max_length=256)
    fast = PrefixSharingHFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=2, device="cpu",
                             max_length=256)
    expected = stock.loglikelihood(_requests(stock, pairs), disable_tqdm=True)
    got = fast.loglikelihood(_requests(fast, pairs), disable_tqdm=True)
    assert [round(x, 4) for x, _ in got] == [round(x, 4) for x, _ in expected]


def test_fast_scorer_predicts_what_stock_hflm_predicts_on_a_task(tiny_model_dir, tmp_path):
    records = {scorer: evaluate(str(tiny_model_dir), EvalConfig(tasks=["medqa"], limit=12, batch_size=4,
                                                                output_dir=tmp_path / scorer, scorer=scorer))[0]
               for scorer in ("hflm", "prefix")}
    stock, fast = (read_samples(records[s]) for s in ("hflm", "prefix"))
    assert [s["pred"] for s in fast] == [s["pred"] for s in stock]
    for a, b in zip(stock, fast):
        assert b["logliks"] == pytest.approx(a["logliks"], abs=1e-4)
    assert records["prefix"]["score"] == records["hflm"]["score"]
    assert records["prefix"]["config"]["scorer"] == "prefix"


def test_a_new_scoring_revision_reuses_no_record_or_cached_request(tiny_model_dir, tmp_path, monkeypatch):
    """Scores computed by an earlier scorer's arithmetic are not served after it changes (SCORING_REVISION)."""
    import medbench.evaluation as evaluation_module
    import medbench.lm_wrapper as lm_wrapper

    config = EvalConfig(tasks=["medqa"], limit=2, output_dir=tmp_path)
    evaluate(str(tiny_model_dir), config)
    again, = evaluate(str(tiny_model_dir), config)
    assert again.get("_reused")
    before = lm_wrapper.request_cache_path(tmp_path, "m", "h" * 64, "medqa", "c", "prefix")
    monkeypatch.setattr(evaluation_module, "SCORING_REVISION", "next")
    monkeypatch.setattr(lm_wrapper, "SCORING_REVISION", "next")
    rescored, = evaluate(str(tiny_model_dir), config)
    assert not rescored.get("_reused") and rescored["versions"]["medbench_scoring"] == "next"
    assert lm_wrapper.request_cache_path(tmp_path, "m", "h" * 64, "medqa", "c", "prefix") != before


def test_batch_size_auto_halves_after_out_of_memory_until_a_batch_fits(loaded, monkeypatch):
    """`--batch-size auto` on a GPU: the heaviest batch of the call (its longest prompt with the most and longest
    choices) is tried from lm-eval's max_batch_size down, halving on each out-of-memory error; scoring then runs at
    the size that fit, with the scores a fixed batch gives."""
    import torch

    from medbench.fastlm import PrefixSharingHFLM

    contexts = ["Question: fever and dysuria?\nAnswer:", "Q: x\nA:", "A much longer context " * 6 + "Answer:"]
    pairs = [(c, k) for c in contexts for k in (" A", " front desk", " nurse practitioner")]
    fixed = PrefixSharingHFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=2, device="cpu")
    expected = fixed.loglikelihood(_requests(fixed, pairs), disable_tqdm=True)

    auto = PrefixSharingHFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size="auto", device="cpu")
    tried, scored = [], []
    score_batch = auto._score_batch

    def too_big_past_16(batch, by_context, requests, results, batch_size):
        if any(r[0] is None for r in requests):  # the search's probe: every row the longest prompt
            tried.append(len(batch))
            assert len({len(c) for c in batch}) == 1 and len(batch[0]) == max(
                len(auto.tok_encode(c)) for c in contexts)
            if len(batch) > 16:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        else:
            scored.append(batch_size)
        return score_batch(batch, by_context, requests, results, batch_size)

    monkeypatch.setattr(auto, "_score_batch", too_big_past_16)
    got = auto.loglikelihood(_requests(auto, pairs), disable_tqdm=True)
    assert tried == [64, 32, 16]
    assert scored and set(scored) == {16}
    for (want, want_greedy), (have, have_greedy) in zip(expected, got):
        assert have == pytest.approx(want, abs=1e-4) and have_greedy == want_greedy


def test_batch_size_auto_is_8_on_a_cpu(loaded):
    """On a CPU a larger batch buys little, and lm-eval's own search (generation, --scorer hflm) would first run
    its longest possible batch: auto means 8 there, for both scorers."""
    from medbench.lm_wrapper import make_lm

    for scorer in ("prefix", "hflm"):
        assert make_lm(loaded, "auto", None, scorer).batch_size == 8
