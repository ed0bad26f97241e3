"""Generator for the ``uti`` task: does a short clinical note describe a patient with a urinary tract infection?

Every note is rendered from structured fields kept in the row, and the label follows from those fields by these
rules (the documented ground truth; see ``uti_label``), applied in order:

  1. The note must describe a *current* episode. A note about another problem that only mentions past UTIs,
     prophylaxis or a historical culture → "no".
  2. At least one urinary-tract symptom or sign must be present now: dysuria, frequency, urgency, suprapubic
     pain/tenderness, gross hematuria, flank pain, costovertebral-angle (CVA) tenderness, or fever/rigors with
     no other documented source (``fever_source`` empty). Fever the note explains by another infection
     (pneumonia, cellulitis, influenza) does not count, nor do non-specific findings: confusion, falls, fatigue,
     poor intake, cloudy or foul-smelling urine. Bacteria or pyuria without such a symptom is asymptomatic
     bacteriuria → "no" (IDSA 2019 guideline on asymptomatic bacteriuria), also in pregnancy or before surgery,
     even when treated.
  3. Symptoms that the note attributes to another documented diagnosis (vaginitis, sexually transmitted
     urethritis/cervicitis, a kidney stone without infection, overactive bladder, ...) do not count → "no".
  4. Laboratory evidence decides: a urine culture growing >= 10^5 CFU/mL of a uropathogen → "yes" (whatever the
     urinalysis); a culture with no growth → "no"; when the culture is pending, not sent or contaminated (mixed
     flora), the urinalysis decides: "yes" if leukocyte esterase >= 1+, nitrite positive or >= 10 WBC/hpf,
     else "no". Bacteria seen on microscopy are not a criterion.

Upper-tract and complicated infections count as UTI: pyelonephritis, catheter-associated UTI (CAUTI), urosepsis,
and UTI in men, diabetics, pregnant women or nursing-home residents. The generator never writes a value on a
rule's edge (no 10^4 CFU/mL cultures, no alternative diagnosis together with a positive culture).

So that wording does not give the label away, every sentence kind is written for both labels from shared phrase
pools: chills and fever (pyelonephritis vs pneumonia), positive cultures and pyuria (UTI vs asymptomatic
bacteriuria), "Also noted:" non-specific findings, past UTIs, blood cultures, tests for other diagnoses
(wet mount, NAAT, CT: negative in UTIs, positive when they explain the symptoms), pertinent negatives and the
plan (antibiotics from one pool: treated asymptomatic bacteriuria of pregnancy and pneumonia get them too;
"antibiotics deferred until the culture is back" in both). Notes carry no diagnostic impression; ``plan``
lines are included in about 65% of notes (``assessment_included``).

Scenarios (``category``): positive — cystitis, pyelonephritis, cauti, complicated_uti, urosepsis;
negative — asymptomatic_bacteriuria, fever_other_source, vaginitis, sti_urethritis, nephrolithiasis,
negative_workup, history_only. ``difficulty`` is the scenario's level (easy: cystitis/pyelonephritis; hard:
asymptomatic bacteriuria, fever from another source, vaginitis, STI), one step harder when the culture does
not decide and the urinalysis must.

Each split holds equal numbers of "yes" and "no" (train 200, validation 50, test 100); scenarios cycle within
each label, the confusable ones twice as often (``POSITIVE_PLAN``, ``NEGATIVE_PLAN``). Run ``python generate.py``
to rewrite data/{train,validation,test}.jsonl (seed 2718).
"""

from __future__ import annotations

import random
from pathlib import Path

SEED = 2718
SIZES = {"train": 200, "validation": 50, "test": 100}
LABELS = ["no", "yes"]

URINARY_SYMPTOMS = ["dysuria", "frequency", "urgency", "suprapubic_pain", "hematuria", "flank_pain",
                    "cva_tenderness", "fever"]
LOWER = ["dysuria", "frequency", "urgency", "suprapubic_pain", "hematuria"]
POSITIVE_SCENARIOS = ["cystitis", "pyelonephritis", "cauti", "complicated_uti", "urosepsis", "uti_other_infection",
                      "infected_stone"]
NEGATIVE_SCENARIOS = ["asymptomatic_bacteriuria", "fever_other_source", "vaginitis", "sti_urethritis",
                      "nephrolithiasis", "negative_workup", "history_only"]
# twins: each confounder (another infection, a stone, bacteriuria) appears with both labels
NEGATIVE_PLAN = NEGATIVE_SCENARIOS + ["fever_other_source", "asymptomatic_bacteriuria", "negative_workup"]
POSITIVE_PLAN = POSITIVE_SCENARIOS + ["uti_other_infection", "complicated_uti", "cystitis"]
BASE_DIFFICULTY = {"uti_other_infection": 2, "infected_stone": 1, "cystitis": 0, "pyelonephritis": 0, "urosepsis": 1, "cauti": 1, "complicated_uti": 1,
                   "asymptomatic_bacteriuria": 2, "fever_other_source": 2, "vaginitis": 2, "sti_urethritis": 2,
                   "nephrolithiasis": 1, "negative_workup": 1, "history_only": 1}
LEVELS = ["easy", "medium", "hard"]


# ---------------------------------------------------------------------------------------------------- the rules
def ua_positive(ua: dict | None) -> bool:
    if not ua:
        return False
    return (ua.get("leukocyte_esterase") in ("1+", "2+", "3+") or ua.get("nitrite") == "positive"
            or (ua.get("wbc_per_hpf") or 0) >= 10)


def counted_symptoms(row: dict) -> list[str]:
    """Urinary symptoms and signs that count for rule 2 (fever only without another documented source)."""
    return [s for s in row["symptoms"] if s in URINARY_SYMPTOMS and not (s == "fever" and row["fever_source"])]


def uti_label(row: dict) -> str:
    """The task's ground truth from the structured fields (see the module docstring)."""
    if not row["current_episode"]:
        return "no"
    if not counted_symptoms(row):
        return "no"
    if row["alternative_diagnosis"]:
        return "no"
    if row["culture"] == "positive":
        return "yes"
    if row["culture"] == "no growth":
        return "no"
    return "yes" if ua_positive(row["urinalysis"]) else "no"


# ------------------------------------------------------------------------------------------------- vocabulary
SYMPTOM_TEXT = {
    "dysuria": ["burning with urination", "dysuria", "pain when passing urine", "stinging on urination",
                "painful urination", "it burns to pee", "discomfort at the end of voiding"],
    "frequency": ["urinary frequency", "voiding every 30-60 minutes", "needing to urinate far more often than usual",
                  "frequency", "going to the bathroom every hour", "small frequent voids"],
    "urgency": ["urgency", "sudden urges to void", "urinary urgency",
                "feeling unable to make it to the toilet in time", "a constant urge to go"],
    "suprapubic_pain": ["suprapubic pain", "lower abdominal pressure over the bladder", "suprapubic discomfort",
                        "aching low in the pelvis", "a dull ache above the pubic bone"],
    "hematuria": ["pink-tinged urine", "visible blood in the urine", "gross hematuria", "red urine"],
    "flank_pain": ["{side} flank pain", "pain in the {side} flank", "{side}-sided back pain below the ribs"],
    "fever": ["fevers", "fevers with chills", "subjective fever with rigors", "shaking chills", "fever and chills"],
}
NEGATABLE = {"dysuria": "dysuria", "frequency": "frequency", "urgency": "urgency", "suprapubic_pain": "suprapubic pain",
             "hematuria": "hematuria", "flank_pain": "flank pain", "fever": "fever"}
NONSPECIFIC_TEXT = {
    "confusion": ["more confused than baseline", "new confusion noted by family", "increased confusion since "
                                                                                  "yesterday"],
    "falls": ["two falls this week", "an unwitnessed fall overnight", "a fall at home"],
    "cloudy_urine": ["cloudy urine", "dark, cloudy urine", "cloudy urine in the catheter bag"],
    "foul_urine": ["foul-smelling urine", "strong-smelling urine"],
    "fatigue": ["fatigue", "being more tired than usual"],
    "poor_intake": ["poor oral intake", "eating and drinking less"],
}
OTHER_SOURCE_TEXT = {
    "pneumonia": ["a productive cough and pleuritic chest pain", "cough with green sputum and shortness of breath"],
    "cellulitis": ["a red, hot, swollen lower leg", "spreading redness and warmth of the left shin"],
    "influenza": ["myalgias, sore throat and a dry cough", "body aches, cough and a sore throat"],
}
OTHER_SOURCE_PROOF = {
    "pneumonia": ["Chest X-ray: right lower lobe consolidation.", "CXR shows a new left lower lobe infiltrate."],
    "cellulitis": ["Leg: 12 cm area of erythema and warmth, tender, no abscess.",
                   "Exam: cellulitis of the lower leg with lymphangitic streaking."],
    "influenza": ["Rapid influenza A PCR positive.", "Influenza PCR positive (type A)."],
}
ORGANISMS = ["Escherichia coli", "E. coli", "Klebsiella pneumoniae", "Proteus mirabilis", "Enterococcus faecalis",
             "Escherichia coli (ESBL-negative)"]
SAPRO = "Staphylococcus saprophyticus"
CATH_ORGANISMS = ["Pseudomonas aeruginosa", "Klebsiella pneumoniae", "Enterococcus faecalis", "Proteus mirabilis",
                  "Escherichia coli"]
DURATIONS = ["for 2 days", "since yesterday", "for 3 days", "x2 days", "for about 4 days", "since this morning",
             "for the past 48 hours", "over the last day"]
# one antibiotic pool for every scenario that is treated (UTIs, ASB of pregnancy, pneumonia, ...)
ABX = ["nitrofurantoin 100 mg twice daily for 5 days", "trimethoprim-sulfamethoxazole DS twice daily",
       "fosfomycin 3 g once", "cephalexin 500 mg twice daily for 7 days", "ceftriaxone 1 g IV daily",
       "ciprofloxacin 500 mg twice daily for 7 days", "cefpodoxime 200 mg twice daily"]
FOLLOW_UP = ["Return if worse.", "Follow up in 1 week.", "Fluids encouraged.", "Will call with culture results.",
             "Recheck at the next visit.", "Reviewed warning signs.", ""]
HISTORY_LINES = ["PMH: recurrent UTIs ({n} episodes last year), on nightly nitrofurantoin for prevention.",
                 "Hospitalized last year for urosepsis; urine culture then grew E. coli.",
                 "History of recurrent UTIs ({n} episodes last year).", "Prior E. coli UTI {m} months ago, treated.",
                 "Past history of pyelonephritis in {y}.", "No prior UTIs.", "Had a UTI {m} months ago."]


NEGATIONS = ["Denies {x}.", "No {x}.", "Negative for {x}.", "ROS: no {x}.", "Without {x}.", "Not reporting {x}.",
             "{X}: none."]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pick(rng: random.Random, options):
    return rng.choice(options)


def _join(items: list[str], last: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1]


def _temp(rng: random.Random, febrile: bool) -> str:
    if febrile:
        c = rng.choice([38.3, 38.5, 38.7, 38.9, 39.1, 39.4, 39.6])
    else:
        c = rng.choice([36.4, 36.6, 36.8, 36.9, 37.0, 37.2, 37.4])
    return f"T {c} °C" if rng.random() < 0.6 else f"temperature {c} °C"


# ------------------------------------------------------------------------------------------------ lab renderers
BACTERIA = ["none", "few", "moderate", "many"]  # not a criterion: drawn independently of the label


def _ua(rng: random.Random, le: str, nitrite: str, wbc: int | None, rbc: int | None = None) -> dict:
    micro = wbc is not None
    return {"leukocyte_esterase": le, "nitrite": nitrite, "wbc_per_hpf": wbc, "rbc_per_hpf": rbc,
            "squamous_cells": rng.choice(["few", "moderate", None]) if micro else None,
            "bacteria": rng.choice(BACTERIA) if micro else None}


def positive_ua(rng: random.Random) -> dict:
    kind = rng.randrange(4)
    if kind == 0:
        return _ua(rng, rng.choice(["2+", "3+"]), "positive", rng.choice([25, 40, 50, 75, 100]), rng.randint(2, 20))
    if kind == 1:
        return _ua(rng, rng.choice(["1+", "2+"]), "negative", rng.choice([15, 20, 30, 45]), rng.randint(0, 10))
    if kind == 2:  # dipstick only
        return _ua(rng, rng.choice(["1+", "2+", "3+"]), rng.choice(["positive", "negative"]), None)
    return _ua(rng, rng.choice(["trace", "negative"]), "positive", rng.choice([None, 4, 6, 12, 18]), None)


def negative_ua(rng: random.Random, rbc: int | None = None) -> dict:
    if rng.random() < 0.3:
        return _ua(rng, rng.choice(["negative", "trace"]), "negative", None)
    return _ua(rng, rng.choice(["negative", "negative", "trace"]), "negative", rng.choice([0, 1, 2, 3, 4, 5]), rbc)


def render_ua(rng: random.Random, ua: dict | None) -> str:
    if ua is None:
        return ""
    le, nit, wbc, rbc = ua["leukocyte_esterase"], ua["nitrite"], ua["wbc_per_hpf"], ua["rbc_per_hpf"]
    if wbc is None:  # dipstick
        style = rng.randrange(2)
        if style == 0:
            return f"Urine dipstick: leukocyte esterase {le}, nitrite {nit}."
        return f"Dipstick UA shows LE {le} and nitrite {'+' if nit == 'positive' else 'neg'}."
    parts = [f"LE {le}", f"nitrite {nit}", f"WBC {wbc}/hpf"]
    if rbc is not None:
        parts.append(f"RBC {rbc}/hpf")
    if ua.get("bacteria"):
        parts.append(f"bacteria {ua['bacteria']}")
    if ua.get("squamous_cells"):
        parts.append(f"squamous epithelial cells {ua['squamous_cells']}")
    prefix = rng.choice(["UA:", "Urinalysis:", "Urinalysis with microscopy:", "U/A -"])
    return f"{prefix} {', '.join(parts)}."


def render_culture(rng: random.Random, culture: str, organism: str | None) -> str:
    if culture == "positive":
        count = rng.choice([">100,000 CFU/mL", ">=10^5 CFU/mL", "100K CFU/mL", "greater than 100,000 colonies/mL"])
        tail = rng.choice(["", "", ", pan-sensitive", ", resistant to ampicillin", ", sensitive to nitrofurantoin"])
        return rng.choice([f"Urine culture: {count} {organism}{tail}.", f"Urine culture grew {count} {organism}{tail}.",
                           f"Culture back: {organism} {count}{tail}."])
    if culture == "no growth":
        return rng.choice(["Urine culture: no growth at 48 hours.", "Urine culture with no growth.",
                           "Urine culture final: no growth.", "Urine culture negative (no growth)."])
    if culture == "contaminated":
        return rng.choice(["Urine culture: mixed flora (>=3 organisms), suggestive of contamination.",
                           "Urine culture grew mixed urogenital flora, likely contaminant.",
                           "Urine culture: multiple organisms, probable contamination; no predominant pathogen."])
    if culture == "pending":
        return rng.choice(["Urine culture sent and pending.", "Urine culture pending.", "Urine sent for culture."])
    return rng.choice(["", "", "No urine culture sent."])


# -------------------------------------------------------------------------------------------------- scenarios
def _row(**fields) -> dict:
    base = {"setting": "", "age": 0, "sex": "", "current_episode": True, "symptoms": [], "fever_source": None,
            "nonspecific": [], "catheter": False, "pregnant": False, "urinalysis": None, "culture": "not sent",
            "organism": None, "alternative_diagnosis": None, "excluded": None, "treated": False, "reason": "",
            "procedure": "", "stone": None}
    base.update(fields)
    return base


def _lab_evidence(rng: random.Random, organisms=ORGANISMS) -> dict:
    """Positive-label lab evidence: a positive culture (any urinalysis) or a positive urinalysis with the culture
    pending, not sent or contaminated."""
    culture = rng.choices(["positive", "pending", "not sent", "contaminated"], weights=[5, 2, 2, 1])[0]
    if culture == "positive":
        ua = positive_ua(rng) if rng.random() < 0.8 else negative_ua(rng)
        return dict(urinalysis=ua, culture=culture, organism=_pick(rng, organisms))
    return dict(urinalysis=positive_ua(rng), culture=culture)


def _bacteriuria(rng: random.Random, organisms=ORGANISMS) -> dict:
    """Bacteriuria/pyuria with no symptom to go with it: the same lab pools as a UTI."""
    culture = rng.choices(["positive", "pending", "not sent"], weights=[5, 2, 1])[0]
    return dict(urinalysis=positive_ua(rng), culture=culture,
                organism=_pick(rng, organisms) if culture == "positive" else None)


def _setting_any(rng) -> dict:
    """Settings shared by UTIs and asymptomatic bacteriuria (pregnancy, pre-op, nursing home, diabetes)."""
    kind = rng.choice(["clinic", "prenatal", "pre-op", "nursing facility", "urgent care"])
    fields = dict(setting=kind, age=rng.randint(22, 80), sex=rng.choice(["female", "female", "male"]))
    if kind == "prenatal":
        fields.update(sex="female", age=rng.randint(19, 41), pregnant=True)
    elif kind == "pre-op":
        fields.update(age=rng.randint(55, 82), procedure=rng.choice(["total knee arthroplasty", "total hip "
                                                                     "arthroplasty", "spinal fusion", "hernia repair"]))
    elif kind == "nursing facility":
        fields.update(age=rng.randint(72, 98))
    return fields


def scenario_cystitis(rng):
    fields = _setting_any(rng)
    if fields["setting"] in ("clinic", "urgent care") and rng.random() < 0.5:
        fields["reason"] = rng.choice(REASONS)
    if fields["setting"] == "nursing facility":
        fields["setting"] = "clinic"
    fields["sex"] = "female"
    symptoms = rng.sample(LOWER, rng.randint(1, 3))
    lab = _lab_evidence(rng, ORGANISMS + ([SAPRO] if fields["age"] < 35 else []))
    return _row(**fields, symptoms=symptoms, **lab, treated=rng.random() < 0.6,
                excluded=rng.choice([None, "wet mount", "wet mount", "naat"]))


def scenario_pyelonephritis(rng):
    symptoms = ["fever", "flank_pain", "cva_tenderness"] + rng.sample(["dysuria", "frequency", "urgency"],
                                                                       rng.randint(0, 2))
    return _row(setting=rng.choice(["ED", "ED", "clinic", "inpatient"]), age=rng.randint(19, 80),
                sex=rng.choices(["female", "male"], weights=[4, 1])[0], symptoms=symptoms, **_lab_evidence(rng),
                nonspecific=rng.sample(["poor_intake", "fatigue"], rng.randint(0, 1)), treated=True,
                excluded=rng.choice([None, "ct", "ultrasound", "flu", "cxr"]))


def scenario_cauti(rng):
    symptoms = ["fever"] + rng.sample(["suprapubic_pain", "flank_pain", "cva_tenderness"], rng.randint(0, 2))
    return _row(setting=rng.choice(["inpatient", "nursing facility", "inpatient"]), age=rng.randint(55, 95),
                sex=rng.choice(["female", "male"]), catheter=True, symptoms=symptoms,
                nonspecific=rng.sample(["cloudy_urine", "confusion", "foul_urine"], rng.randint(0, 2)),
                **_lab_evidence(rng, CATH_ORGANISMS), treated=rng.random() < 0.8, excluded="cxr")


REASONS = ["type 2 diabetes follow-up", "a diabetes check with routine labs", "a hypertension check", "back pain",
           "routine review", "a medication review", "routine review", "routine review"]


def scenario_complicated(rng):
    fields = _setting_any(rng)
    if fields["setting"] in ("clinic", "urgent care") and rng.random() < 0.6:
        fields["reason"] = rng.choice(REASONS)
    if fields["setting"] != "prenatal":
        fields.update(sex=rng.choice(["male", "female"]), age=rng.randint(50, 96))
    symptoms = rng.sample(["dysuria", "frequency", "urgency", "suprapubic_pain"], rng.randint(1, 2))
    nonspecific = rng.sample(["confusion", "falls", "foul_urine", "fatigue", "cloudy_urine"], rng.randint(0, 2))
    return _row(**fields, symptoms=symptoms, nonspecific=nonspecific, **_lab_evidence(rng),
                treated=rng.random() < 0.6, excluded=rng.choice([None, "naat", "cxr", "flu"]))


def scenario_urosepsis(rng):
    symptoms = ["fever"] + rng.sample(["flank_pain", "dysuria", "suprapubic_pain", "cva_tenderness"],
                                      rng.randint(1, 2))
    return _row(setting="ED", age=rng.randint(45, 92), sex=rng.choice(["female", "male"]), symptoms=symptoms,
                nonspecific=rng.sample(["confusion", "poor_intake"], rng.randint(0, 1)),
                **_lab_evidence(rng), treated=True, excluded=rng.choice(["flu", "cxr", "ct"]))


def scenario_asb(rng):
    fields = _setting_any(rng)
    catheter = fields["setting"] == "nursing facility" and rng.random() < 0.5
    nonspecific = rng.sample(["confusion", "falls", "foul_urine", "cloudy_urine", "poor_intake", "fatigue"],
                             rng.randint(0, 2))
    if fields["setting"] in ("clinic", "urgent care") or rng.random() < 0.5:
        fields["reason"] = rng.choice(REASONS)
    return _row(**fields, catheter=catheter, nonspecific=nonspecific, excluded=rng.choice([None, "cxr", "flu"]),
                # pregnancy is treated by protocol; elsewhere ASB is often (wrongly) treated too: not the label
                **_bacteriuria(rng, CATH_ORGANISMS if catheter else ORGANISMS),
                treated=bool(fields.get("pregnant")) or rng.random() < 0.4)


def scenario_fever_other(rng):
    source = rng.choice(["pneumonia", "cellulitis", "influenza"])
    fields = _setting_any(rng)
    if fields["setting"] in ("prenatal", "pre-op"):
        fields.update(setting=rng.choice(["ED", "inpatient"]), pregnant=False, procedure="")
    catheter = fields["setting"] in ("nursing facility", "inpatient") and rng.random() < 0.4
    return _row(**fields, symptoms=["fever"], fever_source=source, catheter=catheter,
                nonspecific=rng.sample(["confusion", "poor_intake", "fatigue", "cloudy_urine"], rng.randint(0, 2)),
                **_bacteriuria(rng, CATH_ORGANISMS if catheter else ORGANISMS), treated=source != "influenza")


def scenario_uti_other_infection(rng):
    """The twin of fever_other_source: another infection explains the fever, but urinary symptoms remain."""
    row = scenario_fever_other(rng)
    row.update(symptoms=["fever"] + rng.sample(LOWER, rng.randint(1, 2)), **_lab_evidence(rng), treated=True)
    return row


def scenario_infected_stone(rng):
    """The twin of nephrolithiasis: an obstructing stone with infection is a complicated UTI."""
    symptoms = ["flank_pain", "hematuria", "fever"] + rng.sample(["frequency", "urgency", "cva_tenderness"],
                                                                  rng.randint(0, 2))
    return _row(setting=rng.choice(["ED", "urgent care", "ED"]), age=rng.randint(24, 70),
                sex=rng.choice(["male", "male", "female"]), symptoms=symptoms, stone=rng.choice([3, 4, 5, 6, 7]),
                **_lab_evidence(rng), treated=True)


def scenario_vaginitis(rng):
    kind = rng.choice(["candida", "bv", "trich"])
    symptoms = ["dysuria"] + rng.sample(["frequency", "urgency"], rng.randint(0, 1))
    ua = positive_ua(rng) if rng.random() < 0.6 else \
        _ua(rng, rng.choice(["trace", "negative"]), "negative", rng.choice([2, 4, 5, 8, None]), rng.randint(0, 3))
    alt = {"candida": "vulvovaginal candidiasis", "bv": "bacterial vaginosis", "trich": "trichomoniasis"}[kind]
    return _row(setting=rng.choice(["clinic", "urgent care", "telehealth"]), age=rng.randint(18, 55),
                sex="female", symptoms=symptoms, urinalysis=ua, culture=rng.choice(["contaminated", "not sent",
                                                                                     "no growth", "pending"]),
                alternative_diagnosis=alt, treated=True)


def scenario_sti(rng):
    sex = rng.choices(["male", "female"], weights=[3, 1])[0]
    organism = rng.choice(["Chlamydia trachomatis", "Neisseria gonorrhoeae"])
    ua = _ua(rng, rng.choice(["1+", "2+"]), "negative", rng.choice([10, 15, 20, 25]), rng.randint(0, 4))
    alt = "urethritis" if sex == "male" else "cervicitis"
    return _row(setting=rng.choice(["clinic", "urgent care", "sexual health clinic"]), age=rng.randint(17, 39),
                sex=sex, symptoms=["dysuria"] + rng.sample(["frequency"], rng.randint(0, 1)), urinalysis=ua,
                culture=rng.choice(["no growth", "not sent", "pending"]),
                alternative_diagnosis=f"{organism} {alt}", organism=organism, treated=True)


def scenario_stone(rng):
    symptoms = ["flank_pain", "hematuria"] + rng.sample(["frequency", "urgency", "cva_tenderness"],
                                                        rng.randint(0, 2))
    size = rng.choice([3, 4, 5, 6, 7])
    if rng.random() < 0.5:  # stones inflame the urothelium: sterile pyuria is common
        ua = _ua(rng, rng.choice(["1+", "2+"]), "negative", rng.choice([10, 15, 20]), rng.choice([30, 50, 75, 100]))
    else:
        ua = _ua(rng, rng.choice(["negative", "trace"]), "negative", rng.choice([0, 2, 3, 5, None]),
                 rng.choice([30, 50, 75, 100]))
    return _row(setting=rng.choice(["ED", "urgent care", "ED"]), age=rng.randint(24, 70),
                sex=rng.choice(["male", "male", "female"]), symptoms=symptoms, urinalysis=ua,
                culture=rng.choice(["no growth", "no growth", "not sent", "pending"]),
                alternative_diagnosis=f"{size} mm ureteral stone", stone=size)


def scenario_negative_workup(rng):
    alt = rng.choice([None, None, None, "overactive bladder", "new diuretic"])
    pool = ["frequency", "urgency"] if alt else LOWER
    symptoms = rng.sample(pool, rng.randint(1, 2))
    fields = _setting_any(rng)
    if alt is None and rng.random() < 0.4:  # the twin of pyelonephritis: fever and flank pain, sterile urine
        symptoms = ["fever", "flank_pain"] + rng.sample(["cva_tenderness", "dysuria"], rng.randint(0, 1))
        fields.update(setting=rng.choice(["ED", "urgent care"]), pregnant=False, procedure="")
        return _row(**fields, symptoms=symptoms, urinalysis=positive_ua(rng) if rng.random() < 0.4 else
                    negative_ua(rng), culture="no growth", treated=rng.random() < 0.3)
    if alt is None and rng.random() < 0.75:  # symptoms with a positive urinalysis but a sterile culture
        lab = dict(urinalysis=positive_ua(rng), culture="no growth")
    else:
        lab = dict(urinalysis=negative_ua(rng), culture=rng.choice(["no growth", "not sent", "pending",
                                                                    "contaminated"]))
    return _row(**fields, symptoms=symptoms, alternative_diagnosis=alt, **lab, treated=rng.random() < 0.3)


def scenario_history(rng):
    reason = rng.choice(["knee osteoarthritis follow-up", "hypertension check", "annual wellness visit",
                         "upper respiratory symptoms", "medication review", "type 2 diabetes follow-up",
                         "low back pain"])
    return _row(setting="clinic", age=rng.randint(25, 88), sex=rng.choice(["female", "male", "female"]),
                current_episode=False, reason=reason, organism=_pick(rng, ORGANISMS),
                nonspecific=rng.sample(["fatigue", "falls"], rng.randint(0, 1)))


SCENARIOS = {"cystitis": scenario_cystitis, "pyelonephritis": scenario_pyelonephritis, "cauti": scenario_cauti,
             "complicated_uti": scenario_complicated, "urosepsis": scenario_urosepsis,
             "asymptomatic_bacteriuria": scenario_asb,
             "uti_other_infection": scenario_uti_other_infection, "infected_stone": scenario_infected_stone, "fever_other_source": scenario_fever_other,
             "vaginitis": scenario_vaginitis, "sti_urethritis": scenario_sti, "nephrolithiasis": scenario_stone,
             "negative_workup": scenario_negative_workup, "history_only": scenario_history}


# ------------------------------------------------------------------------------------------------ note renderer
HEADERS = {"clinic": ["Clinic visit.", "Primary care note.", "Office visit -", ""],
           "urgent care": ["Urgent care note.", "Walk-in visit:", ""],
           "telehealth": ["Telehealth visit (video).", "Video visit:"],
           "ED": ["ED note.", "Emergency department:", "ED provider note -", ""],
           "inpatient": ["Hospital progress note, day {d}.", "Inpatient note (hospital day {d}):"],
           "nursing facility": ["Nursing facility visit.", "Long-term care progress note:", "SNF note -"],
           "prenatal": ["Prenatal visit.", "OB visit:"],
           "pre-op": ["Pre-operative evaluation.", "Pre-op clinic:"],
           "sexual health clinic": ["Sexual health clinic.", "STI clinic visit:"]}

CONTEXT = {
    "inpatient": [", admitted {days} days ago for {why},", ", on hospital day {d} after {why},"],
    "nursing facility": [", a long-term resident with {why},", ", a nursing home resident with {why},"],
}
INPATIENT_WHY = ["hip fracture repair", "a COPD exacerbation", "a stroke", "a heart failure exacerbation",
                 "a fall with rib fractures"]
NH_WHY = ["advanced dementia", "Parkinson disease", "prior stroke with left hemiparesis", "heart failure"]
VISIT = ["here for", "seen for", "presents for", "in clinic for", "follow-up visit for"]
COMORBID = [" with type 2 diabetes", " with CKD stage 3", " with BPH", " with recurrent infections", ""]


def _sex_word(rng, sex: str, age: int) -> str:
    if sex == "female":
        return rng.choice(["woman", "female", "F"])
    return rng.choice(["man", "male", "M"])


def _excluded_text(rng, excluded: str | None, side: str) -> str:
    """A test for another diagnosis that came back negative (written in UTIs; its positive twin in negatives)."""
    return {None: "",
            "wet mount": rng.choice(["Pelvic exam: no discharge; wet mount negative.", "Wet mount: no clue cells, "
                                     "no yeast, no trichomonads."]),
            "naat": rng.choice(["Chlamydia/gonorrhea NAAT negative.", "NAAT for chlamydia and gonorrhea: "
                                "negative."]),
            "ct": rng.choice(["CT: no stone, no hydronephrosis.", f"Non-contrast CT without a {side} ureteral stone."]),
            "ultrasound": "Bedside ultrasound: no hydronephrosis.",
            "cxr": rng.choice(["Chest X-ray clear.", "CXR without infiltrate; lungs clear.",
                               "Mild cough from a cold last week; lungs clear, chest X-ray clear."]),
            "flu": rng.choice(["Influenza PCR negative.", "Rapid influenza A/B negative; no sore throat."])}[excluded]


def _alternative_text(rng, row: dict, category: str) -> list[str]:
    alt = row["alternative_diagnosis"]
    if category == "vaginitis":
        discharge = {"vulvovaginal candidiasis": ["thick white vaginal discharge and vulvar itching",
                                                  "curd-like discharge with intense itching"],
                     "bacterial vaginosis": ["a thin gray discharge with a fishy odor",
                                             "a malodorous watery discharge"],
                     "trichomoniasis": ["a frothy yellow-green discharge",
                                        "a frothy discharge and vulvar soreness"]}[alt]
        proof = {"vulvovaginal candidiasis": "Wet mount: budding yeast and pseudohyphae.",
                 "bacterial vaginosis": "Wet mount: clue cells, whiff test positive.",
                 "trichomoniasis": "Wet mount shows motile trichomonads."}[alt]
        return [rng.choice(["Also has {d}.", "Notes {d}.", "Reports {d} for a week."]).format(d=rng.choice(discharge)),
                proof, "The burning is external, where urine touches irritated skin." if rng.random() < 0.5 else ""]
    if category == "sti_urethritis":
        return [rng.choice(["Clear urethral discharge. New partner 3 weeks ago.",
                            "Mucopurulent discharge on exam; inconsistent condom use.",
                            "Reports a new sexual partner; notes discharge."]),
                rng.choice([f"NAAT positive for {row['organism']}.", f"{row['organism']} detected by NAAT."])]
    if row["stone"]:
        stone = f"{row['stone']} mm ureteral stone"
        return [rng.choice(["Pain is colicky and radiates to the groin.",
                            "Writhing with waves of pain radiating to the groin; vomited once."]),
                rng.choice([f"CT: {stone} with mild hydronephrosis.", f"Non-contrast CT shows a {stone}."])]
    if alt == "new diuretic":
        return ["Furosemide was increased last week; the frequency started the next day."]
    if alt == "overactive bladder":
        return ["Long-standing urgency with small leaks, unchanged for months, typical of overactive bladder."]
    return []


def _plan(rng, row: dict, category: str) -> str:
    """Plans are written without diagnoses or drug names: treating is not the label (ASB of pregnancy, pneumonia,
    STI are treated; a UTI may wait for its culture)."""
    if row["stone"]:
        main = rng.choice(["Analgesia and tamsulosin; urology follow-up.", "Tamsulosin, strain urine."])
        if row["treated"]:
            main = "Start antibiotics. " + main
    elif row["treated"]:
        main = rng.choice(["Start antibiotics.", "Empiric antibiotics started.", "Antibiotics prescribed.",
                           "Oral antibiotics, adjust to culture."])
    else:
        main = rng.choice(["No antibiotics for now.", "Antibiotics deferred until the culture is back.",
                           "Hold antibiotics; reassess with culture."])
    return " ".join(p for p in (main, rng.choice(FOLLOW_UP)) if p)


def render_note(rng: random.Random, row: dict, category: str, include_plan: bool) -> str:
    age, sex = row["age"], row["sex"]
    day = rng.randint(3, 9)
    header = rng.choice(HEADERS[row["setting"]]).format(d=day)
    who = f"{age}-year-old {_sex_word(rng, sex, age)}"
    if who.endswith(" F") or who.endswith(" M"):
        who = f"{age}{who[-1]}"
    parts: list[str] = []
    extra = ""
    if row["setting"] == "inpatient":
        extra = rng.choice(CONTEXT["inpatient"]).format(days=day - 1, d=day, why=rng.choice(INPATIENT_WHY))
    elif row["setting"] == "nursing facility":
        extra = rng.choice(CONTEXT["nursing facility"]).format(why=rng.choice(NH_WHY))
    elif row["pregnant"]:
        extra = f" G{rng.randint(1, 4)} at {rng.randint(10, 30)} weeks"
    elif row["setting"] == "pre-op":
        extra = " seen before elective " + row["procedure"]
    elif row["setting"] in ("clinic", "urgent care", "ED") and age >= 45:
        extra = rng.choice(COMORBID)
    if row["catheter"]:
        extra += rng.choice([" with an indwelling Foley catheter", " with a chronic suprapubic catheter"])

    side = rng.choice(["right", "left"])
    symptoms = row["symptoms"]
    phrases = [_pick(rng, SYMPTOM_TEXT[s]).format(side=side) for s in symptoms if s != "cva_tenderness"]
    if row["fever_source"]:
        phrases.append(_pick(rng, OTHER_SOURCE_TEXT[row["fever_source"]]))
    nonspecific = [_pick(rng, NONSPECIFIC_TEXT[n]) for n in row["nonspecific"]]

    if not row["current_episode"]:
        parts.append(f"{who}{extra} {rng.choice(VISIT)} {row['reason']}.")
        past = _join([_pick(rng, SYMPTOM_TEXT[x]).format(side=side)
                      for x in rng.sample(["dysuria", "frequency", "urgency", "fever", "flank_pain"], 2)])
        parts.append(rng.choice([
            f"Last {rng.choice(['month', 'spring', 'year'])} had {past}; urine culture grew "
            f"{rng.choice(['>100,000 CFU/mL', '>=10^5 CFU/mL', '100K CFU/mL'])} {row['organism']}, treated, resolved.",
            f"PMH: recurrent UTIs ({rng.randint(2, 4)} episodes last year), on "
            f"{rng.choice(['nightly nitrofurantoin', 'post-coital TMP-SMX', 'vaginal estrogen'])} for prevention.",
            f"History of E. coli UTI {rng.randint(3, 14)} months ago; urine culture then grew >100,000 CFU/mL "
            f"{row['organism']}, treated and resolved.",
            f"Past history notable for pyelonephritis in {rng.randint(2012, 2022)} with fever and flank pain; "
            f"no recurrence since.",
            f"Hospitalized last year for urosepsis; urine culture then grew {row['organism']}.",
        ]))
        if nonspecific:
            parts.append(f"Also noted: {_join(nonspecific)}.")
        parts.append(rng.choice(["Currently denies dysuria, frequency or fever.", "No urinary complaints today.",
                                 "ROS negative for urinary symptoms.", ""]))
        parts.append(rng.choice(["Exam: vitals normal.", f"Exam: BP {rng.randint(118, 152)}/{rng.randint(68, 92)}, "
                                 f"HR {rng.randint(60, 96)}, afebrile.", ""]))
        if include_plan:
            parts.append("Plan: " + rng.choice(["Continue current medications.", "Continue UTI prophylaxis.",
                                                "No antibiotics needed.", "Follow up in 3 months."]))
    else:
        verb = rng.choice(["reports", "presents with", "complains of", "c/o", "with", "has had", "noted to have"])
        if phrases and row["reason"]:
            parts.append(f"{who}{extra} {rng.choice(VISIT)} {row['reason']}; also {verb} {_join(phrases)} "
                         f"{rng.choice(DURATIONS)}.")
        elif phrases:
            parts.append(f"{who}{extra} {verb} {_join(phrases)} {rng.choice(DURATIONS)}.")
        elif row["reason"]:
            parts.append(f"{who}{extra} {rng.choice(VISIT)} {row['reason']}.")
        else:
            parts.append(f"{who}{extra} {rng.choice(VISIT)} routine review.")
        if nonspecific:
            parts.append(f"Also noted: {_join(nonspecific)}.")
        if category in ("asymptomatic_bacteriuria", "cystitis", "complicated_uti") and rng.random() < 0.35:
            # a treated past episode: its symptoms are gone (ASB on test of cure) or another has begun (a UTI)
            parts.append(f"Treated for a UTI {rng.randint(2, 5)} weeks ago; the "
                         f"{_pick(rng, SYMPTOM_TEXT[rng.choice(['dysuria', 'frequency', 'urgency'])])} resolved"
                         + rng.choice([".", "; urine sent again today."]))
        elif rng.random() < 0.4:
            parts.append(rng.choice(HISTORY_LINES).format(n=rng.randint(2, 4), m=rng.randint(3, 14),
                                                          y=rng.randint(2012, 2022)))
        if sex == "female" and row["age"] < 45 and rng.random() < 0.5:
            parts.append(rng.choice(["New sexual partner last month.", "Sexually active with one partner.",
                                     "Sexually active, inconsistent condom use."]))
        parts.extend(_alternative_text(rng, row, category))
        # pertinent negatives, for both labels
        absent = [NEGATABLE[s] for s in NEGATABLE if s not in symptoms]
        if category in ("cystitis", "complicated_uti") and rng.random() < 0.5:
            absent.append("vaginal discharge" if sex == "female" else "urethral discharge")
        if absent and rng.random() < 0.8:
            rng.shuffle(absent)
            listed = _join(absent[:rng.randint(1, 4)], "or")
            parts.append(rng.choice(NEGATIONS).format(x=listed, X=_cap(listed)))
        febrile = "fever" in symptoms
        exam = [_temp(rng, febrile)]
        if category == "urosepsis" or (febrile and rng.random() < 0.45):
            exam.append(f"BP {rng.randint(78, 98)}/{rng.randint(40, 58)}, HR {rng.randint(108, 130)}")
        else:
            exam.append(f"HR {rng.randint(64, 108) if not febrile else rng.randint(96, 124)}")
        if "cva_tenderness" in symptoms:
            exam.append(f"{side} CVA tenderness")
        elif rng.random() < 0.5:
            exam.append("no CVA tenderness")
        if "suprapubic_pain" in symptoms and rng.random() < 0.6:
            exam.append("suprapubic tenderness")
        elif rng.random() < 0.3:
            exam.append("no suprapubic tenderness")
        if rng.random() < 0.3:
            exam.append("lungs clear")
        if row["setting"] != "telehealth":
            parts.append("Exam: " + ", ".join(exam) + ".")
        elif febrile:
            parts.append(f"Home {_temp(rng, True)}.")
        if row["fever_source"]:
            parts.append(_pick(rng, OTHER_SOURCE_PROOF[row["fever_source"]]))
        parts.append(_excluded_text(rng, row["excluded"], side))
        ua_text = render_ua(rng, row["urinalysis"])
        if row["setting"] == "telehealth" and row["urinalysis"] is not None:
            ua_text = ua_text.replace("Urine dipstick:", "Home dipstick:").replace("Dipstick UA", "Home dipstick")
        parts.append(ua_text)
        parts.append(render_culture(rng, row["culture"], row["organism"]))
        if febrile and rng.random() < 0.4:
            parts.append(rng.choice(["Blood cultures: no growth to date.", "Blood cultures x2 pending.",
                                     "Blood cultures drawn."]))
        if include_plan:
            parts.append(rng.choice(["Plan:", "A/P:", "Plan -"]) + " " + _plan(rng, row, category))
    note = " ".join(p for p in parts if p)
    note = note[0].upper() + note[1:]
    return (header + " " + note).strip() if header else note


# ------------------------------------------------------------------------------------------------- the splits
def _cycle(rng: random.Random, scenarios: list[str], n: int) -> list[str]:
    out: list[str] = []
    while len(out) < n:
        block = list(scenarios)
        rng.shuffle(block)
        out.extend(block)
    return out[:n]


def generate(seed: int = SEED) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    seen: set[str] = set()
    splits: dict[str, list[dict]] = {}
    counter = 0
    for split, size in SIZES.items():
        half = size // 2
        plan = _cycle(rng, POSITIVE_PLAN, size - half) + _cycle(rng, NEGATIVE_PLAN, half)
        rows = []
        for category in plan:
            while True:
                fields = SCENARIOS[category](rng)
                if fields["setting"] == "telehealth":  # a home dipstick at most, no culture yet
                    if fields["urinalysis"]:
                        fields["urinalysis"].update(wbc_per_hpf=None, rbc_per_hpf=None, squamous_cells=None,
                                                    bacteria=None)
                    if fields["culture"] != "not sent":
                        fields.update(culture="pending")
                    if fields["organism"] and not fields["alternative_diagnosis"]:
                        fields["organism"] = None
                include_plan = rng.random() < 0.65
                text = render_note(rng, fields, category, include_plan)
                if text not in seen and uti_label(fields) == ("yes" if category in POSITIVE_SCENARIOS else "no"):
                    break
            seen.add(text)
            lab_decides = fields["culture"] not in ("positive", "no growth")
            level = min(2, BASE_DIFFICULTY[category] + (1 if lab_decides else 0))
            row = {**fields, "text": text, "category": category, "difficulty": LEVELS[level],
                   "assessment_included": include_plan}
            row["label"] = uti_label(row)
            rows.append(row)
        rng.shuffle(rows)
        for row in rows:
            counter += 1
            row["id"] = f"uti-{counter:04d}"
        splits[split] = rows
    return splits


if __name__ == "__main__":
    from medbench.taskdata import write_jsonl_splits

    write_jsonl_splits(generate(SEED), Path(__file__).resolve().parent / "data")
