"""Generator for the ``hyponatremia`` task: five laboratory/clinical values → the category of hyponatremia.

Every case is hyponatremic (serum sodium < 135 mmol/L). The label is the leaf reached by the diagnostic
algorithm of the European clinical practice guideline (Spasovski et al., Eur J Endocrinol 2014, figure 1), with
its cut-offs: serum osmolality 275 mOsm/kg, urine osmolality 100 mOsm/kg, urine sodium 30 mmol/L. Urine sodium
is read before the clinical volume status because the guideline finds clinical volume assessment unreliable.
Applied in this order (``classify``):

  1. serum osmolality >= 275 mOsm/kg             → "non-hypotonic"
        (pseudohyponatremia at normal osmolality 275-295, e.g. hyperlipidemia or paraproteinemia;
         hypertonic hyponatremia above 295, e.g. hyperglycemia or mannitol)
  2. otherwise hypotonic; urine osmolality <= 100 mOsm/kg
                                                  → "primary polydipsia"
        (maximally dilute urine: primary polydipsia or low solute intake, e.g. beer potomania)
  3. otherwise urine sodium <= 30 mmol/L (low effective arterial blood volume), by volume status:
        hypovolemic                              → "extrarenal losses"   (vomiting, diarrhea, third spacing)
        hypervolemic                             → "edematous state"     (heart failure, cirrhosis, nephrotic
                                                                          syndrome)
        euvolemic                                → not a leaf: the guideline has none for a euvolemic patient
                                                    with urine Na <= 30, so the generator never writes one
  4. otherwise urine sodium > 30 mmol/L, by volume status:
        hypovolemic                              → "renal losses"        (diuretics, salt wasting, mineralocorticoid
                                                                          deficiency)
        euvolemic                                → "SIADH"               (urine osm > 100 and urine Na > 30, after
                                                                          hypothyroidism and adrenal insufficiency
                                                                          are excluded)
        hypervolemic                             → "kidney failure"      (acute or chronic kidney injury)

Seven categories. The generator never emits a value exactly at a cut-off (275, 100, 30), so ``<`` versus ``<=``
never matters for the bundled data.

Coherence: primary polydipsia cases are euvolemic (water excess with dilute urine does not deplete volume);
non-hypotonic cases take any volume status (hyperglycemia with osmotic diuresis can be hypovolemic).

Sampling: each split holds the same number of cases of every category (train 210 = 7 x 30, validation 49 = 7 x 7,
test 399 = 7 x 57: the 105 = 7 x 15 of version 1.1, then 294 = 7 x 42 drawn after them). About 35% of cases put
the value that decides their branch close to its cut-off (serum osmolality within 5 of 275, urine osmolality
within 20 of 100, urine sodium within 5 of 30); ``difficulty`` is
"hard" for those, "medium" when a deciding value lies within twice that margin, else "easy". Values that do not
decide the branch (urine sodium for polydipsia, volume status for non-hypotonic cases, ...) are sampled freely
as distractors, from one range for every label they do not decide: in version 1.0 urine osmolality was drawn
per leaf (kidney failure 180-420, extrarenal losses 300-920), so "urine osm > 780 means extrarenal losses" read
the label off a value the guideline does not use at that step (a depth-4 tree without urine sodium scored 0.73).
``category`` is the volume status. Serum sodium follows from the serum osmolality for hypotonic
cases (osmolality ~ 2 x Na + glucose/urea contribution).

Run ``python generate.py`` to rewrite data/{train,validation,test}.jsonl (seed 1729).
"""

from __future__ import annotations

import random
from pathlib import Path

from medbench.taskdata import grown_splits, write_jsonl_splits

SEED = 1729
# test 399 = 7 x 57 (1.2; 105 in 1.1): sft_vs_dpo reads "no gain" as equivalence within 0.05, and at 105 items a
# paired difference's 95% CI half-width is about 0.06 at 10% discordance (0.03 at 399; 400 would unbalance the
# seven labels). The 1.1 test items are drawn and shuffled first, the 294 new ones after them, so train,
# validation and those 105 stay as they were.
SIZES = {"train": 210, "validation": 49, "test": 399}
FIRST_TEST_DRAW = 105

NON_HYPOTONIC = "non-hypotonic"
POLYDIPSIA = "primary polydipsia"
EXTRARENAL = "extrarenal losses"
RENAL = "renal losses"
SIADH = "SIADH"
EDEMATOUS = "edematous state"
KIDNEY = "kidney failure"
LABELS = [NON_HYPOTONIC, POLYDIPSIA, EXTRARENAL, RENAL, SIADH, EDEMATOUS, KIDNEY]

SERUM_OSM_CUTOFF = 275
URINE_OSM_CUTOFF = 100
URINE_NA_CUTOFF = 30
MARGINS = {"serum_osmolality": 5, "urine_osmolality": 20, "urine_sodium": 5}
CUTOFFS = {"serum_osmolality": SERUM_OSM_CUTOFF, "urine_osmolality": URINE_OSM_CUTOFF,
           "urine_sodium": URINE_NA_CUTOFF}


def classify(serum_sodium: float, serum_osmolality: float, urine_osmolality: float, urine_sodium: float,
             volume_status: str) -> str:
    """The task's diagnostic algorithm (see the module docstring)."""
    if serum_sodium >= 135:
        raise ValueError(f"serum sodium {serum_sodium} is not hyponatremic")
    if serum_osmolality >= SERUM_OSM_CUTOFF:
        return NON_HYPOTONIC
    if urine_osmolality <= URINE_OSM_CUTOFF:
        return POLYDIPSIA
    if volume_status not in ("hypovolemic", "euvolemic", "hypervolemic"):
        raise ValueError(f"unknown volume status {volume_status!r}")
    if urine_sodium <= URINE_NA_CUTOFF:
        if volume_status == "euvolemic":
            raise ValueError("euvolemic with urine Na <= 30 mmol/L is not a leaf of the algorithm")
        return EXTRARENAL if volume_status == "hypovolemic" else EDEMATOUS
    return {"hypovolemic": RENAL, "euvolemic": SIADH, "hypervolemic": KIDNEY}[volume_status]


def deciding_values(label: str) -> list[str]:
    """The values whose side of a cut-off decides the branch leading to ``label``."""
    if label == NON_HYPOTONIC:
        return ["serum_osmolality"]
    if label == POLYDIPSIA:
        return ["serum_osmolality", "urine_osmolality"]
    return ["serum_osmolality", "urine_osmolality", "urine_sodium"]


def difficulty(row: dict) -> str:
    distances = [abs(row[name] - CUTOFFS[name]) / MARGINS[name] for name in deciding_values(row["label"])]
    closest = min(distances)
    return "hard" if closest <= 1 else "medium" if closest <= 2 else "easy"


def _avoid(value: int, cutoff: int) -> int:
    return value + 1 if value == cutoff else value


def _sample_values(rng: random.Random, label: str) -> dict:
    near = rng.random() < 0.35
    near_value = rng.choice(deciding_values(label)) if near else None

    # serum osmolality
    if label == NON_HYPOTONIC:
        if near_value == "serum_osmolality":
            sosm = rng.randint(276, 280)
        elif rng.random() < 0.5:
            sosm = rng.randint(281, 295)  # pseudohyponatremia: normal measured osmolality
        else:
            sosm = rng.randint(296, 334)  # hypertonic: hyperglycemia, mannitol
        sodium = rng.randint(118, 133)
    else:
        sosm = rng.randint(270, 274) if near_value == "serum_osmolality" else rng.randint(232, 269)
        sodium = min(134, max(108, round((sosm - rng.randint(3, 14)) / 2)))

    # urine osmolality
    if label == POLYDIPSIA:
        uosm = rng.randint(80, 99) if near_value == "urine_osmolality" else rng.randint(42, 79)
    elif label == NON_HYPOTONIC:
        uosm = rng.randint(60, 700)
    elif near_value == "urine_osmolality":
        uosm = rng.randint(101, 120)
    else:  # one range for every leaf past step 2: its level is not what the guideline reads next (version 1.1)
        uosm = rng.randint(140, 780)

    # urine sodium
    if label in (EXTRARENAL, EDEMATOUS):
        una = rng.randint(25, 29) if near_value == "urine_sodium" else rng.randint(3, 24)
    elif label in (RENAL, KIDNEY, SIADH):
        una = rng.randint(31, 35) if near_value == "urine_sodium" else rng.randint(36, 130)
    elif label == POLYDIPSIA:
        una = rng.randint(4, 45)  # dilute urine: usually low, a distractor either side of 30
    else:
        una = rng.randint(4, 90)

    # volume status
    if label in (EXTRARENAL, RENAL):
        volume = "hypovolemic"
    elif label == SIADH:
        volume = "euvolemic"
    elif label in (EDEMATOUS, KIDNEY):
        volume = "hypervolemic"
    elif label == POLYDIPSIA:
        volume = "euvolemic"
    else:
        volume = rng.choice(["hypovolemic", "euvolemic", "hypervolemic"])

    return {"serum_sodium": sodium, "serum_osmolality": _avoid(sosm, SERUM_OSM_CUTOFF),
            "urine_osmolality": _avoid(uosm, URINE_OSM_CUTOFF), "urine_sodium": _avoid(una, URINE_NA_CUTOFF),
            "volume_status": volume}


VOLUME_EXAM = {
    "hypovolemic": ["dry mucous membranes and orthostatic hypotension", "flat neck veins, reduced skin turgor",
                    "tachycardic with postural drop in blood pressure", "dry axillae, capillary refill 3 s"],
    "euvolemic": ["no edema, moist mucous membranes, no orthostatic change", "normal JVP, no edema",
                  "clinically well hydrated without edema", "no orthostasis, lungs clear, no peripheral edema"],
    "hypervolemic": ["bilateral pitting leg edema and raised JVP", "ascites and 2+ ankle edema",
                     "crackles at both bases with sacral edema", "anasarca, JVP elevated to the jaw"],
}
SEXES = ["man", "woman"]


def _article(age: int) -> str:
    return "an" if age in (8, 11, 18) or 80 <= age <= 89 else "a"


def render(rng: random.Random, v: dict) -> str:
    age = rng.randint(19, 94)
    sex = rng.choice(SEXES)
    exam = rng.choice(VOLUME_EXAM[v["volume_status"]])
    na, sosm, uosm, una, vol = (v["serum_sodium"], v["serum_osmolality"], v["urine_osmolality"],
                                v["urine_sodium"], v["volume_status"])
    style = rng.randrange(4)
    if style == 0:
        lines = [f"Serum sodium: {na} mmol/L", f"Serum osmolality: {sosm} mOsm/kg",
                 f"Urine osmolality: {uosm} mOsm/kg", f"Urine sodium: {una} mmol/L",
                 f"Volume status: {vol} ({exam})"]
        return f"{age}-year-old {sex}.\n" + "\n".join(lines)
    if style == 1:
        return (f"{_article(age).capitalize()} {age}-year-old {sex} has a serum sodium of {na} mmol/L and a "
                f"measured serum osmolality of {sosm} mOsm/kg. Spot urine: osmolality {uosm} mOsm/kg, "
                f"sodium {una} mmol/L. On examination the patient is {vol}: {exam}.")
    if style == 2:
        labs = [f"UNa {una}", f"Uosm {uosm}", f"Sosm {sosm}", f"Na {na}"]
        rng.shuffle(labs)
        short = "F" if sex == "woman" else "M"
        return f"{age}{short}. Labs: {', '.join(labs)} (Na/UNa mmol/L, osm mOsm/kg). Volume: {vol}."
    items = [("serum Na", f"{na} mmol/L"), ("serum osm", f"{sosm} mOsm/kg"),
             ("urine osm", f"{uosm} mOsm/kg"), ("urine Na", f"{una} mmol/L")]
    rng.shuffle(items)
    table = "; ".join(f"{k} {val}" for k, val in items)
    return f"Hyponatremia work-up, {age}-year-old {sex}: {table}. Assessed as {vol} ({exam})."


def generate(seed: int = SEED) -> dict[str, list[dict]]:
    return grown_splits(random.Random(seed), SIZES, FIRST_TEST_DRAW, "hyponatremia", _draw_rows)


def _draw_rows(rng: random.Random, size: int, seen: set[str]) -> list[dict]:
    """``size`` new cases, the same number of every label, in shuffled order."""
    per_label = size // len(LABELS)
    plan = [label for label in LABELS for _ in range(per_label)]
    rows = []
    for label in plan:
        while True:
            values = _sample_values(rng, label)
            assert classify(**values) == label, (label, values)
            text = render(rng, values)
            if text not in seen:
                break
        seen.add(text)
        row = {**values, "text": text, "label": label, "category": values["volume_status"]}
        row["difficulty"] = difficulty(row)
        rows.append(row)
    rng.shuffle(rows)
    return rows




if __name__ == "__main__":
    write_jsonl_splits(generate(SEED), Path(__file__).resolve().parent / "data")
