"""A faster lm-eval HF model for log-likelihood scoring, with the same per-item results as stock HFLM.

Stock HFLM runs each (context, continuation) pair as its own sequence (it reuses logits only when every
continuation is one token), and computes the output head and a log-softmax over the whole vocabulary at every
position of every sequence. This scorer:

- runs each distinct context once, with its multi-token choices ("front desk", "hyponatremia due to SIADH") laid
  after it in the same row under a block mask, so one forward pass per batch scores every choice as if it ran
  alone after its prompt (``_score_packed``); where the model takes no block mask (flash-attention, sliding
  windows) the choices are scored from the context's key/value cache in further passes;
- computes the output head only where a continuation token is predicted (``logits_to_keep``): for a 4-option
  letter question, one position instead of the whole prompt, and keeps no key/value cache when no choice needs it;
- batches contexts longest first, left-padded with explicit position ids, so a batch's padding changes no score
  in fp32 (in bf16 it can move one by a rounding step: benchmarks/RESULTS.md);
- reads each batch's scores back in one copy to the host, and with ``batch_size="auto"`` searches the largest batch
  the GPU holds (up to lm-eval's ``max_batch_size``).

Everything else (tokenisation, truncation, generation, chat templates) is HFLM's, so results stay comparable; a
pair too long for the model window is scored by HFLM itself, truncated as HFLM truncates it. Registered with
lm-eval as ``medbench-prefix``.
"""

from __future__ import annotations

import gc
import inspect
from collections import defaultdict
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM

from medbench.block_masks import as_attention_mask, unsupported_reason
from medbench.errors import MedbenchError

Request = tuple[tuple[str, str], list[int], list[int]]
MAX_PACKED_MASK = 1 << 28  # mask cells (batch x width x width) above which choices run from a key/value cache instead


def _cache_argument(model: Any) -> str:
    """The forward() keyword for a KV cache: ``cache`` since transformers 5.2x (``past_key_values`` is deprecated
    there, with a warning per run), ``past_key_values`` before."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PEFT wrapper takes **kwargs
    return "cache" if "cache" in inspect.signature(inner.forward).parameters else "past_key_values"


def _output_cache(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


@register_model("medbench-prefix")
class PrefixSharingHFLM(HFLM):
    # Continuation rows scored per forward pass, as a multiple of the batch size (they are short).
    continuation_rows_per_batch = 4
    # False: multi-token choices are scored from the context's key/value cache, as they are wherever the model takes
    # no block mask (flash-attention, sliding windows); True: in the context's own row (_score_packed)
    pack_choices = True
    _block_mask_refusal: str | None = None  # why multi-token choices cannot be packed ("" when they can)

    def _pad_id(self) -> int:
        tokenizer = self.tokenizer
        for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id):
            if candidate is not None:
                return int(candidate)
        return 0

    def _loglikelihood_tokens(self, requests: list[Request], disable_tqdm: bool = False,
                              override_bs: int | None = None) -> list[tuple[float, bool]]:
        if self.backend != "causal":
            return super()._loglikelihood_tokens(requests, disable_tqdm, override_bs)
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        by_context: dict[tuple[int, ...], list[int]] = defaultdict(list)
        too_long = []
        for index, (_, context, continuation) in enumerate(requests):
            if not context or len(context) + len(continuation) > self.max_length + 1:
                too_long.append(index)
            else:
                by_context[tuple(context)].append(index)
        if too_long:  # HFLM truncates these from the left; score them exactly as it does (and reports them)
            for index, result in zip(too_long, super()._loglikelihood_tokens([requests[i] for i in too_long],
                                                                            True, override_bs)):
                results[index] = result
        contexts = sorted(by_context, key=lambda c: (-len(c), c))  # over all the requests given: little padding
        batch_size = int(override_bs) if override_bs else int(self.batch_size) if str(self.batch_size).isdigit() \
            else self._auto_batch_size(contexts, by_context, requests)
        with torch.no_grad():
            for start in range(0, len(contexts), batch_size):
                batch = contexts[start:start + batch_size]
                self._score_batch(batch, by_context, requests, results, batch_size)
                for index in (i for context in batch for i in by_context[context]):
                    if requests[index][0] is not None:  # None: loglikelihood_rolling's windows, as in HFLM
                        self.cache_hook.add_partial("loglikelihood", requests[index][0], results[index])
        return results  # type: ignore[return-value]

    def _auto_batch_size(self, contexts: list[tuple[int, ...]], by_context: dict[tuple[int, ...], list[int]],
                         requests: list[Request]) -> int:
        """``--batch-size auto`` on a GPU: the largest batch up to lm-eval's ``max_batch_size`` (64) that scores
        the heaviest batch this call can hold (the longest prompt, as many times, with the most choices and the
        longest choice), halving after each out-of-memory error. Searched once per call, as lm-eval searches."""
        if not contexts:
            return 1
        longest = contexts[0]
        choices = max(len(by_context[context]) for context in contexts)
        tail = max((requests[i][2] for context in contexts for i in by_context[context]), key=len)
        probe = [(None, longest, tail)] * choices
        size = int(self.max_batch_size)
        while True:
            try:
                with torch.no_grad():
                    self._score_batch([longest] * size, {longest: list(range(choices))}, probe, [None] * choices,
                                      size)
                return size
            except torch.cuda.OutOfMemoryError:
                if size == 1:
                    raise MedbenchError(f"out of GPU memory scoring one prompt of {len(longest)} tokens",
                                        "score on a GPU with more memory, or a smaller model") from None
            size //= 2  # outside the handler: its traceback no longer holds the failed batch's tensors
            gc.collect()
            torch.cuda.empty_cache()

    def _score_batch(self, batch: list[tuple[int, ...]], by_context: dict[tuple[int, ...], list[int]],
                     requests: list[Request], results: list[Any], batch_size: int) -> None:
        multi_token = any(len(requests[index][2]) > 1 for context in batch for index in by_context[context])
        if multi_token and self._packs_choices(batch, by_context, requests):
            return self._score_packed(batch, by_context, requests, results)
        device = self.device
        width = max(len(c) for c in batch)
        pad = self._pad_id()
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, context in enumerate(batch):  # left padding: every context ends at the last column
            ids[row, width - len(context):] = torch.tensor(context)
            mask[row, width - len(context):] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        # The key/value cache only serves continuations longer than one token (letters need none): building it
        # copies every layer's keys and values.
        output = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=multi_token,
                            logits_to_keep=1)
        last = F.log_softmax(output.logits[:, -1], dim=-1, dtype=self.softmax_dtype)  # [rows, vocab]
        owners = [(row, index) for row, context in enumerate(batch) for index in by_context[context]]
        firsts = [requests[index][2][0] for _, index in owners]
        # One gather and one copy to the host for the whole batch: a read per request would wait on the GPU each time.
        picked = last[torch.tensor([row for row, _ in owners], device=device),
                      torch.tensor(firsts, device=device)].tolist()
        best = last.argmax(-1).tolist()
        pending = []  # (row, request index) for continuations longer than one token
        for (row, index), first, value in zip(owners, firsts, picked):
            results[index] = (value, best[row] == first)
            if len(requests[index][2]) > 1:
                pending.append((row, index))
        if not pending:
            return
        step = batch_size * self.continuation_rows_per_batch
        chunks = [pending[i:i + step] for i in range(0, len(pending), step)]
        for number, chunk in enumerate(chunks):
            # reorder_cache gathers rows in place; every chunk but the last works on a copy
            kept = _output_cache(output)
            cache = kept if number == len(chunks) - 1 else _copy_cache(kept)
            self._score_continuations(chunk, cache, mask, requests, results, pad)

    def _score_continuations(self, chunk: list[tuple[int, int]], cache: Any, context_mask: torch.Tensor,
                             requests: list[Request], results: list[Any], pad: int) -> None:
        device = self.device
        rows = torch.tensor([row for row, _ in chunk], device=device)
        cache.reorder_cache(rows)
        tails = [requests[index][2] for _, index in chunk]
        width = max(len(t) - 1 for t in tails)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        tail_mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for j, tail in enumerate(tails):  # right padding after the real tokens: causal attention never sees it
            ids[j, :len(tail) - 1] = torch.tensor(tail[:-1])
            tail_mask[j, :len(tail) - 1] = 1
        ids, tail_mask = ids.to(device), tail_mask.to(device)
        mask = torch.cat([context_mask.index_select(0, rows), tail_mask], dim=1)
        lengths = context_mask.index_select(0, rows).sum(-1, keepdim=True)
        positions = lengths + torch.arange(width, device=device).unsqueeze(0)
        output = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False,
                            **{_cache_argument(self.model): cache})
        logprobs = F.log_softmax(output.logits, dim=-1, dtype=self.softmax_dtype)  # [rows, width, vocab]
        targets = torch.zeros((len(chunk), width), dtype=torch.long)
        for j, tail in enumerate(tails):
            targets[j, :len(tail) - 1] = torch.tensor(tail[1:])
        targets = targets.to(device)
        # The whole chunk's log-probs and greedy hits in one copy to the host (padding columns cut off below)
        picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).cpu()
        hits = (logprobs.argmax(-1) == targets).cpu()
        for j, ((_, index), tail) in enumerate(zip(chunk, tails)):
            scores = picked[j, :len(tail) - 1]
            greedy = bool(hits[j, :len(tail) - 1].all())
            results[index] = _with_tail(results[index], scores, greedy)

    def _packs_choices(self, batch: list[tuple[int, ...]], by_context: dict[tuple[int, ...], list[int]],
                       requests: list[Request]) -> bool:
        """Whether this batch's multi-token choices run in the contexts' own rows (``_score_packed``): the model
        takes a block mask, and the mask stays small (a row's choices can be long: perplexity windows)."""
        if not self.pack_choices:
            return False
        if self._block_mask_refusal is None:
            self._block_mask_refusal = unsupported_reason(self.model) or ""
        if self._block_mask_refusal:
            return False
        width = max(len(c) for c in batch) + max(_tails_length(by_context[c], requests) for c in batch)
        return len(batch) * width * width <= MAX_PACKED_MASK

    def _score_packed(self, batch: list[tuple[int, ...]], by_context: dict[tuple[int, ...], list[int]],
                      requests: list[Request], results: list[Any]) -> None:
        """Each context's row carries its multi-token choices after it, all but their last token::

            [pad] context · choice 1[:-1] · choice 2[:-1] · ... [pad]

        under a block mask: context tokens see earlier context tokens; a choice's tokens see the whole context and
        their own choice's earlier tokens, with the positions they would have right after the context. So each
        token's log-probs are those of its own (context, choice) sequence, and one forward pass scores the batch
        (no key/value cache, no further passes). The output head runs on the context's last position and the
        choices' tokens only."""
        device = self.device
        pad = self._pad_id()
        rows, width = len(batch), max(len(c) for c in batch)
        tails = [_tails_length(by_context[c], requests) for c in batch]
        kept = max(tails) + 1  # the context's last column, then every choice column
        ids = torch.full((rows, width + kept - 1), pad, dtype=torch.long)
        positions = torch.zeros_like(ids)
        part = torch.full_like(ids, -1)  # -1 padding, 0 context, k > 0 the row's k-th packed choice
        starts = {}  # request index -> its first column after the context
        for row, context in enumerate(batch):
            ids[row, width - len(context):width] = torch.tensor(context)
            positions[row, width - len(context):width] = torch.arange(len(context))
            part[row, width - len(context):width] = 0
            column = width
            for k, index in enumerate(i for i in by_context[context] if len(requests[i][2]) > 1):
                tail = requests[index][2][:-1]
                ids[row, column:column + len(tail)] = torch.tensor(tail)
                positions[row, column:column + len(tail)] = torch.arange(len(context), len(context) + len(tail))
                part[row, column:column + len(tail)] = k + 1
                starts[index] = column - width + 1  # its index among the kept logits
                column += len(tail)
        ids, positions, part = ids.to(device), positions.to(device), part.to(device)
        column = torch.arange(ids.shape[1], device=device)
        query, key = part[:, :, None], part[:, None, :]
        allowed = (column[None, None, :] <= column[None, :, None]) & (
            ((key == 0) & (query >= 0)) | ((key == query) & (query > 0)))
        allowed |= (query < 0) & (column[None, None, :] == column[None, :, None])  # padding sees itself (no NaN)
        mask = as_attention_mask(allowed[:, None], self.model.config._attn_implementation,
                                 self.model.get_input_embeddings().weight.dtype)
        output = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False,
                            logits_to_keep=kept)
        logprobs = F.log_softmax(output.logits, dim=-1, dtype=self.softmax_dtype)  # [rows, kept, vocab]
        owners = [(row, index) for row, context in enumerate(batch) for index in by_context[context]]
        # One gather and one copy to the host for the batch, as in _score_batch; column 0 predicts every first token
        columns = [[0] + [starts[index] + j for j in range(len(requests[index][2]) - 1)] if index in starts else [0]
                   for _, index in owners]
        flat_rows = torch.tensor([row for (row, _), cols in zip(owners, columns) for _ in cols], device=device)
        flat_columns = torch.tensor([c for cols in columns for c in cols], device=device)
        targets = torch.tensor([t for (_, index) in owners for t in requests[index][2]], device=device)
        picked = logprobs[flat_rows, flat_columns, targets].cpu()
        hits = (logprobs[flat_rows, flat_columns].argmax(-1) == targets).cpu()
        offset = 0
        for (_, index), cols in zip(owners, columns):
            # one tensor sum in the log-softmax dtype, as HFLM sums (_with_tail's reason)
            span = slice(offset, offset + len(cols))
            results[index] = (float(picked[span].sum()), bool(hits[span].all()))
            offset += len(cols)


def _tails_length(indices: list[int], requests: list[Request]) -> int:
    """The columns a context's multi-token choices take in its packed row (each but its last token)."""
    return sum(len(requests[i][2]) - 1 for i in indices if len(requests[i][2]) > 1)


def _with_tail(first: tuple[float, bool], scores: torch.Tensor, greedy: bool) -> tuple[float, bool]:
    """A choice's (log-likelihood, greedy) from its first token's and the rest's log-probs. Summed as HFLM sums
    (one tensor in the log-softmax dtype), not in Python floats: in bf16 the two differ by a rounding step, enough to
    flip a near-tie. A bf16 sum accumulates in fp32 and rounds once, on the host as on a GPU, and a few bf16
    log-probs add up exactly in fp32: the same value as HFLM's."""
    first_score, first_greedy = first
    total = torch.cat([scores.new_tensor([first_score]), scores]).sum()
    return float(total), first_greedy and greedy


def _copy_cache(cache: Any) -> Any:
    import copy

    return copy.deepcopy(cache)
