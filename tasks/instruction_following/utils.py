"""instruction_following data and scoring: prompts with verifiable constraints, checked by IFEval's checkers.

A row (bundled sample or the user's file, jsonl) has ``prompt``, ``instruction_id_list`` (IFEval instruction
ids, e.g. ``keywords:forbidden_words``), ``kwargs`` (one dict per instruction, IFEval's argument names, e.g.
``{"forbidden_words": ["cholesterol"]}``) and optionally ``category``, ``difficulty`` and ``response`` (a
reference answer that satisfies the constraints; used for training only, never for scoring).

Scoring is lm-eval's own IFEval code (``lm_eval.tasks.ifeval.utils``): prompt-level accuracy (every
constraint followed) and instruction-level accuracy (share of constraints followed over all prompts), each
strict and loose (loose also accepts the response with its first/last line or its asterisks removed).

Offline notes. lm-eval's IFEval modules import ``langdetect`` and ``immutabledict`` (lm-eval's ``ifeval``
extra) and try to download nltk's ``punkt_tab`` on import. When those are missing, this module imports the
checkers with stand-ins: ``immutabledict`` becomes a read-only mapping, language detection answers "en" (so
``change_case:english_lowercase`` checks the lowercase half only, exactly what IFEval does when detection
fails) and the download is skipped. The stand-ins are removed from ``sys.modules`` right after the import.
Instructions that cannot be checked without that data are refused when a row asks for them.
"""

import contextlib
import io
import sys
import types
from functools import lru_cache
from pathlib import Path

from medbench.errors import MedbenchError
from medbench.taskdata import JSONL_SPLITS, load_splits, require_columns

KWARG_KEYS = ("num_words", "relation", "num_paragraphs", "num_bullets", "num_highlights", "section_spliter",
              "num_sections", "postscript_marker", "num_placeholders", "keywords", "forbidden_words", "keyword",
              "frequency", "end_phrase", "num_sentences", "language", "capital_frequency", "capital_relation",
              "letter", "let_frequency", "let_relation", "first_word", "nth_paragraph", "prompt_to_repeat")
NEEDS_PUNKT = ("length_constraints:number_sentences", "change_case:capital_word_frequency")
NEEDS_LANGDETECT = ("language:response_language", "change_case:english_capital")


def _available(module):
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _has_punkt():
    import nltk

    try:
        nltk.data.find("tokenizers/punkt_tab")
        return True
    except LookupError:
        return False


def _ifeval():
    """lm-eval's IFEval utils module, imported without network access and without its optional extras."""
    if "lm_eval.tasks.ifeval.utils" in sys.modules:
        return sys.modules["lm_eval.tasks.ifeval.utils"]
    import nltk

    stubs = {}
    if not _available("langdetect"):
        stub = types.ModuleType("langdetect")
        stub.LangDetectException = type("LangDetectException", (Exception,), {})
        stub.detect = lambda text: "en"
        stubs["langdetect"] = stub
    if not _available("immutabledict"):
        stub = types.ModuleType("immutabledict")
        stub.immutabledict = lambda mapping: types.MappingProxyType(dict(mapping))
        stubs["immutabledict"] = stub
    download = nltk.download
    sys.modules.update(stubs)
    try:
        if not _has_punkt():
            nltk.download = lambda *args, **kwargs: False  # offline: no attempt; the instructions we use need none
        with contextlib.redirect_stdout(io.StringIO()):
            from lm_eval.tasks.ifeval import utils as ifeval_utils
        if "langdetect" not in stubs:  # langdetect samples at random unless seeded: same answer, same score
            import langdetect

            langdetect.DetectorFactory.seed = 0
    finally:
        nltk.download = download
        for name, stub in stubs.items():
            if sys.modules.get(name) is stub:
                del sys.modules[name]
    return ifeval_utils


@lru_cache(maxsize=1)
def _unavailable_ids():
    missing = set()
    if not _has_punkt():
        missing.update(NEEDS_PUNKT)
    if not _available("langdetect"):
        missing.update(NEEDS_LANGDETECT)
    return missing


def normalize(row, source):
    require_columns(row, ["prompt", "instruction_id_list", "kwargs"], source)
    ids, kwargs = row["instruction_id_list"], row["kwargs"]
    if not isinstance(ids, list) or not ids or not isinstance(kwargs, list) or len(kwargs) != len(ids):
        raise MedbenchError(f"{source}: instruction_id_list and kwargs must be lists of the same, non-zero length",
                            'give one kwargs dict per instruction, e.g. [{"num_words": 50, "relation": "less than"}]')
    registry = _ifeval().instructions_registry.INSTRUCTION_DICT
    unavailable = _unavailable_ids()
    full = []
    for instruction_id, kw in zip(ids, kwargs):
        if instruction_id not in registry:
            raise MedbenchError(f"{source}: unknown instruction id {instruction_id!r}",
                                "use an IFEval instruction id such as keywords:existence (see the task's README)")
        if instruction_id in unavailable:
            raise MedbenchError(f"{source}: instruction {instruction_id!r} needs data that is not installed "
                                "(nltk punkt_tab or langdetect)",
                                "install it (pip install langdetect; nltk.download('punkt_tab')) "
                                "or drop the instruction")
        kw = kw or {}
        if not isinstance(kw, dict) or set(kw) - set(KWARG_KEYS):
            raise MedbenchError(f"{source}: kwargs for {instruction_id} has unknown key(s) "
                                f"{sorted(set(kw) - set(KWARG_KEYS)) if isinstance(kw, dict) else kw!r}",
                                "use IFEval's argument names (e.g. num_words, relation, forbidden_words)")
        full.append({key: kw.get(key) for key in KWARG_KEYS})  # one schema for every row, like google/IFEval
    return {"prompt": str(row["prompt"]), "instruction_id_list": [str(i) for i in ids], "kwargs": full,
            "category": str(row.get("category") or ""), "difficulty": str(row.get("difficulty") or ""),
            "response": str(row.get("response") or "")}


def load(**metadata):
    _ifeval()  # import the checkers before lm-eval needs them, with the offline stand-ins if required
    return load_splits(
        Path(__file__).parent,
        bundled=JSONL_SPLITS,
        normalize=normalize,
        **metadata,
    )


def check(doc, response):
    """(strict, loose) IFEval results for one response: each has follow_all_instructions and
    follow_instruction_list."""
    ifeval = _ifeval()
    inp = ifeval.InputExample(key=0, instruction_id_list=list(doc["instruction_id_list"]), prompt=doc["prompt"],
                              kwargs=[dict(kw) for kw in doc["kwargs"]])
    return (ifeval.test_instruction_following_strict(inp, response),
            ifeval.test_instruction_following_loose(inp, response))


def process_results(doc, results):
    strict, loose = check(doc, results[0] if results else "")
    return {
        "prompt_level_strict_acc": strict.follow_all_instructions,
        "inst_level_strict_acc": strict.follow_instruction_list,
        "prompt_level_loose_acc": loose.follow_all_instructions,
        "inst_level_loose_acc": loose.follow_instruction_list,
    }


def agg_inst_level_acc(items):
    """Instruction-level accuracy: followed instructions / all instructions, pooled over prompts (IFEval's)."""
    flat = [item for sublist in items for item in sublist]
    return sum(flat) / len(flat) if flat else 0.0
