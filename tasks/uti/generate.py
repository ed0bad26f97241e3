"""Generator for the ``uti`` task: does a short clinical note describe a patient with a urinary tract infection?

Every note is rendered from structured fields kept in the row, and the label follows from those fields by these
rules (the documented ground truth; see ``uti_label``), applied in order:

  1. The note must describe a *current* episode. A note about another problem that only mentions past UTIs,
     prophylaxis or a historical culture → "no".
  2. At least one urinary-tract symptom or sign must be present now: dysuria, frequency, urgency, suprapubic
     pain/tenderness, gross hematuria, flank pain, costovertebral-angle (CVA) tenderness, or fever/rigors with
     no other source. Non-specific findings do NOT count: confusion, falls, fatigue, poor intake, cloudy or
     foul-smelling urine. Bacteria or pyuria without such a symptom is asymptomatic bacteriuria → "no"
     (IDSA 2019 guideline on asymptomatic bacteriuria), also in pregnancy or before surgery, even when treated.
  3. Symptoms that the note attributes to another documented diagnosis (vaginitis, sexually transmitted
     urethritis/cervicitis, a kidney stone without infection, overactive bladder, ...) do not count → "no".
  4. Laboratory evidence decides: a urine culture growing >= 10^5 CFU/mL of a uropathogen → "yes"; a culture
     with no growth → "no"; when the culture is pending, not sent or contaminated (mixed flora), the urinalysis
     decides: "yes" if leukocyte esterase >= 1+, nitrite positive or >= 10 WBC/hpf, else "no".

Upper-tract and complicated infections count as UTI: pyelonephritis, catheter-associated UTI (CAUTI), urosepsis,
and UTI in men, diabetics or nursing-home residents. The generator never writes a value on a rule's edge
(e.g. no 10^4 CFU/mL cultures, no alternative diagnosis together with a positive culture).

Scenarios (``category``): positive — cystitis, pyelonephritis, cauti, complicated_uti, urosepsis;
negative — asymptomatic_bacteriuria, vaginitis, sti_urethritis, nephrolithiasis, negative_workup, history_only.
Notes do not always carry an assessment (about 35% omit it), positives need not name "UTI" and negatives often
do (ruled out, history of, concern for), so no single keyword solves the task. ``difficulty`` is the scenario's
level (easy: classic cystitis/pyelonephritis; hard: asymptomatic bacteriuria, vaginitis, STI), one step harder
when the assessment is omitted.

Each split holds equal numbers of "yes" and "no" (train 200, validation 50, test 100), scenarios spread evenly
within each label. Run ``python generate.py`` to rewrite data/{train,validation,test}.jsonl (seed 2718).
"""

from __future__ import annotations

import random
from pathlib import Path

SEED = 2718
SIZES = {"train": 200, "validation": 50, "test": 100}
LABELS = ["no", "yes"]

URINARY_SYMPTOMS = ["dysuria", "frequency", "urgency", "suprapubic_pain", "hematuria", "flank_pain",
                    "cva_tenderness", "fever"]
POSITIVE_SCENARIOS = ["cystitis", "pyelonephritis", "cauti", "complicated_uti", "urosepsis"]
NEGATIVE_SCENARIOS = ["asymptomatic_bacteriuria", "vaginitis", "sti_urethritis", "nephrolithiasis",
                      "negative_workup", "history_only"]
BASE_DIFFICULTY = {"cystitis": 0, "pyelonephritis": 0, "urosepsis": 1, "cauti": 1, "complicated_uti": 1,
                   "asymptomatic_bacteriuria": 2, "vaginitis": 2, "sti_urethritis": 2, "nephrolithiasis": 1,
                   "negative_workup": 1, "history_only": 1}
LEVELS = ["easy", "medium", "hard"]


# ---------------------------------------------------------------------------------------------------- the rules
def ua_positive(ua: dict | None) -> bool:
    if not ua:
        return False
    return (ua.get("leukocyte_esterase") in ("1+", "2+", "3+") or ua.get("nitrite") == "positive"
            or (ua.get("wbc_per_hpf") or 0) >= 10)


def uti_label(row: dict) -> str:
    """The task's ground truth from the structured fields (see the module docstring)."""
    if not row["current_episode"]:
        return "no"
    if not [s for s in row["symptoms"] if s in URINARY_SYMPTOMS]:
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
                "painful urination"],
    "frequency": ["urinary frequency", "voiding every 30-60 minutes", "needing to urinate far more often than usual",
                  "frequency"],
    "urgency": ["urgency", "sudden urges to void", "urinary urgency",
                "feeling unable to make it to the toilet in time"],
    "suprapubic_pain": ["suprapubic pain", "lower abdominal pressure over the bladder", "suprapubic discomfort",
                        "aching low in the pelvis"],
    "hematuria": ["pink-tinged urine", "visible blood in the urine", "gross hematuria"],
    "flank_pain": ["{side} flank pain", "pain in the {side} flank", "{side}-sided back pain below the ribs"],
    "fever": ["fevers", "fevers with chills", "subjective fever with rigors", "shaking chills"],
}
NONSPECIFIC_TEXT = {
    "confusion": ["more confused than baseline", "new confusion noted by family", "increased confusion since "
                                                                                  "yesterday"],
    "falls": ["two falls this week", "an unwitnessed fall overnight", "a fall at home"],
    "cloudy_urine": ["cloudy urine in the catheter bag", "cloudy urine", "dark, cloudy urine"],
    "foul_urine": ["foul-smelling urine", "strong-smelling urine"],
    "fatigue": ["fatigue", "being more tired than usual"],
    "poor_intake": ["poor oral intake", "eating and drinking less"],
}
ORGANISMS = ["Escherichia coli", "E. coli", "Klebsiella pneumoniae", "Proteus mirabilis", "Enterococcus faecalis",
             "Escherichia coli (ESBL-negative)"]
SAPRO = "Staphylococcus saprophyticus"
CATH_ORGANISMS = ["Pseudomonas aeruginosa", "Klebsiella pneumoniae", "Enterococcus faecalis", "Proteus mirabilis",
                  "Escherichia coli"]
DURATIONS = ["for 2 days", "since yesterday", "for 3 days", "x2 days", "for about 4 days", "since this morning",
             "for the past 48 hours", "over the last day"]
ORAL_ABX = ["nitrofurantoin 100 mg twice daily for 5 days", "trimethoprim-sulfamethoxazole DS twice daily for 3 days",
            "fosfomycin 3 g once", "cephalexin 500 mg twice daily for 7 days"]
PYELO_ABX = ["ceftriaxone 1 g IV, then oral ciprofloxacin 500 mg twice daily for 7 days",
             "ciprofloxacin 500 mg twice daily for 7 days", "ceftriaxone 1 g IV daily, admit for IV fluids",
             "cefpodoxime 200 mg twice daily for 10 days after one dose of IV ceftriaxone"]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pick(rng: random.Random, options):
    return rng.choice(options)


def _join(items: list[str], last: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1]


def _symptom_phrases(rng: random.Random, symptoms: list[str], side: str) -> list[str]:
    out = []
    for s in symptoms:
        if s == "cva_tenderness":
            continue  # an exam sign, rendered with the exam
        out.append(_pick(rng, SYMPTOM_TEXT[s]).format(side=side))
    return out


def _temp(rng: random.Random, febrile: bool) -> str:
    if febrile:
        c = rng.choice([38.3, 38.5, 38.7, 38.9, 39.1, 39.4, 39.6])
    else:
        c = rng.choice([36.4, 36.6, 36.8, 36.9, 37.0, 37.2, 37.4])
    return f"T {c} °C" if rng.random() < 0.6 else f"temperature {c} °C"


# ------------------------------------------------------------------------------------------------ lab renderers
def _ua(le: str, nitrite: str, wbc: int | None, rbc: int | None = None, squamous: str | None = None,
        bacteria: str | None = None) -> dict:
    return {"leukocyte_esterase": le, "nitrite": nitrite, "wbc_per_hpf": wbc, "rbc_per_hpf": rbc,
            "squamous_cells": squamous, "bacteria": bacteria}


def positive_ua(rng: random.Random) -> dict:
    kind = rng.randrange(4)
    if kind == 0:
        return _ua(rng.choice(["2+", "3+"]), "positive", rng.choice([25, 40, 50, 75, 100]), rng.randint(2, 20),
                   "few", "many")
    if kind == 1:
        return _ua(rng.choice(["1+", "2+"]), "negative", rng.choice([15, 20, 30, 45]), rng.randint(0, 10), "few",
                   "moderate")
    if kind == 2:  # dipstick only
        return _ua(rng.choice(["1+", "2+", "3+"]), rng.choice(["positive", "negative"]), None)
    return _ua(rng.choice(["trace", "negative"]), "positive", rng.choice([None, 12, 18]), None, None, "many")


def negative_ua(rng: random.Random, rbc: int | None = None) -> dict:
    return _ua(rng.choice(["negative", "negative", "trace"]), "negative", rng.choice([0, 1, 2, 3, 4, None]), rbc,
               rng.choice(["few", None]), rng.choice(["none", None]))


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
                           "Culture final: no growth.", "Urine culture negative (no growth)."])
    if culture == "contaminated":
        return rng.choice(["Urine culture: mixed flora (>=3 organisms), suggestive of contamination.",
                           "Culture grew mixed urogenital flora, likely contaminant.",
                           "Urine culture: multiple organisms, probable contamination; no predominant pathogen."])
    if culture == "pending":
        return rng.choice(["Urine culture sent and pending.", "Culture pending.", "Urine sent for culture."])
    return rng.choice(["", "", "No urine culture sent."])


# -------------------------------------------------------------------------------------------------- scenarios
def _row(**fields) -> dict:
    base = {"setting": "", "age": 0, "sex": "", "current_episode": True, "symptoms": [], "nonspecific": [],
            "catheter": False, "pregnant": False, "urinalysis": None, "culture": "not sent", "organism": None,
            "alternative_diagnosis": None, "assessment": "", "reason": "", "procedure": ""}
    base.update(fields)
    return base


def scenario_cystitis(rng):
    sex = "female"
    age = rng.randint(18, 72)
    pool = ["dysuria", "frequency", "urgency", "suprapubic_pain", "hematuria"]
    symptoms = rng.sample(pool, rng.randint(1, 3))
    culture = rng.choices(["positive", "pending", "not sent"], weights=[5, 3, 2])[0]
    organism = (SAPRO if sex == "female" and age < 35 and rng.random() < 0.3 else _pick(rng, ORGANISMS))
    ua = positive_ua(rng)
    return _row(setting=rng.choice(["clinic", "urgent care", "telehealth", "clinic"]), age=age, sex=sex,
                symptoms=symptoms, urinalysis=ua, culture=culture,
                organism=organism if culture == "positive" else None,
                assessment=rng.choice([f"Acute cystitis. Start {_pick(rng, ORAL_ABX)}.",
                                       f"Uncomplicated lower UTI; {_pick(rng, ORAL_ABX)}.",
                                       f"{_cap(_pick(rng, ORAL_ABX))}, fluids, return if fever or flank pain.",
                                       "Cystitis - treat empirically, adjust to culture."]))


def scenario_pyelonephritis(rng):
    sex = rng.choices(["female", "male"], weights=[4, 1])[0]
    symptoms = ["fever", "flank_pain", "cva_tenderness"] + rng.sample(["dysuria", "frequency", "urgency"],
                                                                       rng.randint(0, 2))
    culture = rng.choices(["positive", "pending"], weights=[3, 1])[0]
    return _row(setting=rng.choice(["ED", "ED", "clinic", "inpatient"]), age=rng.randint(19, 80), sex=sex,
                symptoms=symptoms, urinalysis=positive_ua(rng), culture=culture,
                organism=_pick(rng, ORGANISMS) if culture == "positive" else None,
                nonspecific=rng.sample(["poor_intake", "fatigue"], rng.randint(0, 1)),
                assessment=rng.choice([f"Acute pyelonephritis. {_cap(_pick(rng, PYELO_ABX))}.",
                                       f"Upper tract infection; {_pick(rng, PYELO_ABX)}.",
                                       f"Impression: pyelonephritis without obstruction on bedside ultrasound. "
                                       f"{_cap(_pick(rng, PYELO_ABX))}."]))


def scenario_cauti(rng):
    symptoms = ["fever"] + rng.sample(["suprapubic_pain", "flank_pain", "cva_tenderness"], rng.randint(0, 2))
    return _row(setting=rng.choice(["inpatient", "nursing facility", "inpatient"]), age=rng.randint(55, 95),
                sex=rng.choice(["female", "male"]), catheter=True, symptoms=symptoms,
                nonspecific=rng.sample(["cloudy_urine", "confusion", "foul_urine"], rng.randint(0, 2)),
                urinalysis=positive_ua(rng), culture="positive", organism=_pick(rng, CATH_ORGANISMS),
                assessment=rng.choice(["Catheter-associated UTI. Catheter exchanged, culture obtained from new "
                                       "catheter, start cefepime.",
                                       "CAUTI - replace Foley, IV ceftriaxone pending sensitivities.",
                                       "Fever from a urinary source in a catheterized patient; chest film clear. "
                                       "Treat for complicated UTI for 7 days."]))


def scenario_complicated(rng):
    sex = rng.choice(["male", "female"])
    age = rng.randint(50, 96)
    symptoms = rng.sample(["dysuria", "frequency", "urgency", "suprapubic_pain"], rng.randint(1, 2))
    nonspecific = rng.sample(["confusion", "falls", "foul_urine", "fatigue"], rng.randint(0, 2))
    return _row(setting=rng.choice(["clinic", "nursing facility", "ED"]), age=age, sex=sex, symptoms=symptoms,
                nonspecific=nonspecific, urinalysis=positive_ua(rng),
                culture=rng.choices(["positive", "pending"], weights=[4, 1])[0], organism=_pick(rng, ORGANISMS),
                assessment=rng.choice(["Complicated UTI; cephalexin 500 mg four times daily for 7 days.",
                                       "Symptomatic cystitis in a "
                                       + ("man" if sex == "male" else "diabetic woman")
                                       + ", treat 7 days and recheck.",
                                       "Start ciprofloxacin, tailor to sensitivities; push fluids."]))


def scenario_urosepsis(rng):
    symptoms = ["fever"] + rng.sample(["flank_pain", "dysuria", "suprapubic_pain", "cva_tenderness"],
                                      rng.randint(1, 2))
    return _row(setting="ED", age=rng.randint(45, 92), sex=rng.choice(["female", "male"]), symptoms=symptoms,
                nonspecific=rng.sample(["confusion", "poor_intake"], rng.randint(0, 1)),
                urinalysis=positive_ua(rng), culture="positive", organism=_pick(rng, ORGANISMS),
                assessment=rng.choice(["Sepsis from a urinary source. 30 mL/kg crystalloid, piperacillin-"
                                       "tazobactam, admit.",
                                       "Urosepsis; blood cultures also growing gram-negative rods. Admit to step-down.",
                                       "Septic shock from a urinary source; norepinephrine started."]))


def scenario_asb(rng):
    kind = rng.choice(["nursing", "prenatal", "preop", "catheter", "diabetic"])
    culture = rng.choices(["positive", "positive", "not sent"], weights=[3, 1, 1])[0]
    ua = positive_ua(rng)
    organism = _pick(rng, CATH_ORGANISMS if kind == "catheter" else ORGANISMS)
    common = dict(urinalysis=ua, culture=culture, organism=organism if culture == "positive" else None)
    if kind == "nursing":
        return _row(setting="nursing facility", age=rng.randint(76, 98), sex=rng.choice(["female", "male"]),
                    nonspecific=rng.sample(["confusion", "falls", "foul_urine", "cloudy_urine", "poor_intake"],
                                           rng.randint(1, 3)),
                    assessment=rng.choice(["Asymptomatic bacteriuria; no antibiotics. Encourage fluids, review "
                                           "medications, delirium precautions.",
                                           "Positive urine culture without urinary symptoms or fever - does not meet "
                                           "criteria for UTI. Do not treat.",
                                           "Family asked about a UTI; bacteriuria alone, observe."]), **common)
    if kind == "prenatal":
        return _row(setting="prenatal", age=rng.randint(19, 41), sex="female", pregnant=True,
                    assessment=rng.choice(["Asymptomatic bacteriuria of pregnancy; cephalexin for 5 days and test "
                                           "of cure.", "ASB on routine screening - treat per prenatal protocol, "
                                           "repeat culture in 2 weeks."]), **common)
    if kind == "preop":
        procedure = rng.choice(["total knee arthroplasty", "total hip arthroplasty", "spinal fusion",
                                "hernia repair"])
        return _row(setting="pre-op", age=rng.randint(55, 82), sex=rng.choice(["female", "male"]),
                    procedure=procedure,
                    assessment=rng.choice([f"Bacteriuria on pre-op screening without symptoms; no treatment needed "
                                           f"before {procedure}.", "Cleared for surgery. Screening urine findings "
                                           "are not a UTI; no antibiotics."]), **common)
    if kind == "catheter":
        return _row(setting=rng.choice(["nursing facility", "inpatient"]), age=rng.randint(60, 95),
                    sex=rng.choice(["female", "male"]), catheter=True,
                    nonspecific=rng.sample(["cloudy_urine", "foul_urine"], rng.randint(1, 2)),
                    assessment=rng.choice(["Catheter colonization; afebrile, no systemic signs. No antibiotics; "
                                           "review need for catheter.",
                                           "Bacteriuria with chronic catheter, not CAUTI."]),
                    **common)
    return _row(setting="clinic", age=rng.randint(45, 80), sex=rng.choice(["female", "male"]),
                reason=rng.choice(["type 2 diabetes follow-up", "a diabetes check with routine labs"]),
                nonspecific=rng.sample(["fatigue", "foul_urine"], rng.randint(0, 1)),
                assessment=rng.choice(["Diabetes follow-up. Incidental pyuria/bacteriuria without symptoms - "
                                       "not treated.", "Asymptomatic bacteriuria in type 2 diabetes; no treatment "
                                       "indicated."]), **common)


def scenario_vaginitis(rng):
    kind = rng.choice(["candida", "bv", "trich"])
    symptoms = ["dysuria"] + rng.sample(["frequency", "urgency"], rng.randint(0, 1))
    ua = _ua(rng.choice(["trace", "1+"]), "negative", rng.choice([5, 8, 10, 12, 15]), rng.randint(0, 3), "many",
             rng.choice(["few", "moderate"]))
    culture = rng.choice(["contaminated", "not sent", "no growth"])
    alt = {"candida": "vulvovaginal candidiasis", "bv": "bacterial vaginosis", "trich": "trichomoniasis"}[kind]
    plan = {"candida": "fluconazole 150 mg once", "bv": "metronidazole 500 mg twice daily for 7 days",
            "trich": "metronidazole 500 mg twice daily for 7 days, partner treatment"}[kind]
    return _row(setting=rng.choice(["clinic", "urgent care", "clinic"]), age=rng.randint(18, 55),
                sex="female", symptoms=symptoms, urinalysis=ua, culture=culture, alternative_diagnosis=alt,
                assessment=rng.choice([f"{_cap(alt)}; {plan}. Dysuria is external, UTI unlikely.",
                                       f"Dysuria due to {alt}, not a urinary infection. {_cap(plan)}.",
                                       f"Most consistent with {alt}. Treat with {plan}."]))


def scenario_sti(rng):
    sex = rng.choices(["male", "female"], weights=[3, 1])[0]
    organism = rng.choice(["Chlamydia trachomatis", "Neisseria gonorrhoeae"])
    ua = _ua(rng.choice(["1+", "2+"]), "negative", rng.choice([10, 15, 20, 25]), rng.randint(0, 4), "few", "none")
    alt = "urethritis" if sex == "male" else "cervicitis"
    return _row(setting=rng.choice(["clinic", "urgent care", "sexual health clinic"]), age=rng.randint(17, 39),
                sex=sex, symptoms=["dysuria"] + rng.sample(["frequency"], rng.randint(0, 1)), urinalysis=ua,
                culture=rng.choice(["no growth", "not sent"]),
                alternative_diagnosis=f"{organism} {alt}", organism=organism,
                assessment=rng.choice([f"{organism.split()[0]} {alt}; ceftriaxone and doxycycline, partner "
                                       "notification.",
                                       f"Sexually transmitted {alt} ({organism}); not a UTI. Treat and retest in "
                                       "3 months.",
                                       f"Dysuria explained by {alt}. Urine culture is not indicated."]))


def scenario_stone(rng):
    symptoms = ["flank_pain", "hematuria"] + rng.sample(["frequency", "urgency"], rng.randint(0, 1))
    size = rng.choice([3, 4, 5, 6, 7])
    ua = _ua("negative", "negative", rng.choice([0, 2, 3, 5]), rng.choice([30, 50, 75, 100]), "few", "none")
    return _row(setting=rng.choice(["ED", "urgent care", "ED"]), age=rng.randint(24, 70),
                sex=rng.choice(["male", "male", "female"]), symptoms=symptoms, urinalysis=ua,
                culture=rng.choice(["no growth", "not sent"]),
                alternative_diagnosis=f"{size} mm ureteral stone",
                assessment=rng.choice([f"Renal colic from a {size} mm distal ureteral stone, no infection. "
                                       "Tamsulosin, ketorolac, strain urine.",
                                       f"Obstructing {size} mm stone without signs of infection; urology follow-up.",
                                       f"Nephrolithiasis ({size} mm). UTI ruled out."]))


def scenario_negative_workup(rng):
    alt = rng.choice([None, None, "overactive bladder", "interstitial cystitis", "new diuretic"])
    pool = ["frequency", "urgency"] if alt in ("overactive bladder", "new diuretic") else \
        ["dysuria", "frequency", "urgency", "suprapubic_pain"]
    symptoms = rng.sample(pool, rng.randint(1, 2))
    culture = rng.choice(["no growth", "no growth", "not sent", "contaminated"])
    assessment = {
        None: rng.choice(["Negative urinalysis; UTI ruled out. Symptomatic care, return if worse.",
                          "No evidence of urinary infection. Reassured, hydration.",
                          "Urinary symptoms with a bland urinalysis - no antibiotics."]),
        "overactive bladder": "Overactive bladder; bladder training, consider mirabegron.",
        "interstitial cystitis": "Symptoms consistent with interstitial cystitis/bladder pain syndrome; urology "
                                 "referral.",
        "new diuretic": "Frequency from the new furosemide dose; move dosing to morning.",
    }[alt]
    return _row(setting=rng.choice(["clinic", "telehealth", "urgent care"]), age=rng.randint(20, 85),
                sex=rng.choice(["female", "female", "male"]), symptoms=symptoms, urinalysis=negative_ua(rng),
                culture=culture, alternative_diagnosis=alt, assessment=assessment)


def scenario_history(rng):
    reason = rng.choice(["knee osteoarthritis follow-up", "hypertension check", "annual wellness visit",
                         "upper respiratory symptoms", "medication review", "type 2 diabetes follow-up",
                         "low back pain"])
    return _row(setting="clinic", age=rng.randint(25, 88), sex=rng.choice(["female", "male", "female"]),
                current_episode=False, assessment=f"{_cap(reason)} as above. "
                + rng.choice(["Continue UTI prophylaxis.", "No urinary issues today.", "",
                              "Discussed UTI prevention strategies."]),
                urinalysis=None, culture="not sent", organism=None, reason=reason)


SCENARIOS = {"cystitis": scenario_cystitis, "pyelonephritis": scenario_pyelonephritis, "cauti": scenario_cauti,
             "complicated_uti": scenario_complicated, "urosepsis": scenario_urosepsis,
             "asymptomatic_bacteriuria": scenario_asb, "vaginitis": scenario_vaginitis,
             "sti_urethritis": scenario_sti, "nephrolithiasis": scenario_stone,
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
INPATIENT_WHY = ["hip fracture repair", "a COPD exacerbation", "a stroke", "community-acquired pneumonia",
                 "a fall with rib fractures"]
NH_WHY = ["advanced dementia", "Parkinson disease", "prior stroke with left hemiparesis", "heart failure"]


def _sex_word(rng, sex: str, age: int) -> str:
    if sex == "female":
        return rng.choice(["woman", "female", "F"]) if age >= 18 else "girl"
    return rng.choice(["man", "male", "M"]) if age >= 18 else "boy"


def render_note(rng: random.Random, row: dict, category: str, include_assessment: bool) -> str:
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
        extra = f" G{rng.randint(1, 4)} at {rng.randint(10, 16)} weeks, routine first-trimester labs"
    elif row["setting"] == "pre-op":
        extra = " seen before elective " + row["procedure"]
    if row["catheter"]:
        options = [" with an indwelling Foley catheter", " with a chronic suprapubic catheter"]
        if row["setting"] == "inpatient":
            options.append(" with a urinary catheter placed on admission")
        extra += rng.choice(options)
    if category == "complicated_uti" and rng.random() < 0.6:
        extra += rng.choice([" with type 2 diabetes", " with CKD stage 3", " with a kidney transplant",
                             " with BPH" if row["sex"] == "male" else " with recurrent infections"])

    symptoms = row["symptoms"]
    side = rng.choice(["right", "left"])
    phrases = _symptom_phrases(rng, symptoms, side)
    nonspecific = [_pick(rng, NONSPECIFIC_TEXT[n]) for n in row["nonspecific"]]

    if not row["current_episode"]:
        intro = f"{who}{extra} here for {row['reason']}."
        parts.append(intro)
        parts.append(rng.choice([
            f"PMH: recurrent UTIs ({rng.randint(2, 4)} episodes last year), on "
            f"{rng.choice(['nightly nitrofurantoin', 'post-coital TMP-SMX', 'vaginal estrogen'])} for prevention.",
            f"History of E. coli UTI {rng.randint(3, 14)} months ago, treated and resolved.",
            f"Past history notable for pyelonephritis in {rng.randint(2012, 2022)}; no recurrence since.",
            f"Hospitalized last year for urosepsis; urine culture then grew {_pick(rng, ORGANISMS)}.",
        ]))
        parts.append(rng.choice(["Currently denies dysuria, frequency or fever.", "No urinary complaints today.",
                                 "ROS negative for urinary symptoms.", ""]))
        parts.append(rng.choice(["Vitals normal.", f"BP {rng.randint(118, 152)}/{rng.randint(68, 92)}, afebrile.",
                                 ""]))
    else:
        if phrases:
            duration = rng.choice(DURATIONS)
            if row["setting"] in ("inpatient", "nursing facility"):
                verb = rng.choice(["developed", "has had", "noted to have", "with"])
            else:
                verb = rng.choice(["reports", "presents with", "complains of", "c/o", "with"])
            parts.append(f"{who}{extra} {verb} {_join(phrases)} {duration}.")
            if nonspecific:
                parts.append(f"Also noted: {_join(nonspecific)}.")
        elif nonspecific:
            parts.append(f"{who}{extra}; {rng.choice(['staff report', 'family reports', 'noted'])} "
                         f"{_join(nonspecific)}.")
        elif row["reason"]:
            parts.append(f"{who}{extra} here for {row['reason']}.")
        else:
            parts.append(f"{who}{extra}.")
        # scenario-specific history
        if category == "vaginitis":
            discharge = {"vulvovaginal candidiasis": ["thick white vaginal discharge and vulvar itching",
                                                      "curd-like discharge with intense itching"],
                         "bacterial vaginosis": ["a thin gray discharge with a fishy odor",
                                                 "a malodorous watery discharge"],
                         "trichomoniasis": ["a frothy yellow-green discharge",
                                            "a frothy discharge and vulvar soreness"]}[row["alternative_diagnosis"]]
            template = rng.choice(["Also has {d}.", "Notes {d}.", "Reports {d} for a week.",
                                   "Burning is external, when urine touches irritated skin; {d}."])
            parts.append(template.format(d=rng.choice(discharge)))
            wet = {"vulvovaginal candidiasis": "KOH prep shows budding yeast and pseudohyphae.",
                   "bacterial vaginosis": "Wet mount: clue cells, whiff test positive, pH 5.0.",
                   "trichomoniasis": "Wet mount shows motile trichomonads."}[row["alternative_diagnosis"]]
            parts.append(wet)
        elif category == "sti_urethritis":
            parts.append(rng.choice(["Clear urethral discharge. New partner 3 weeks ago.",
                                     "Mucopurulent discharge on exam; inconsistent condom use.",
                                     "Reports a new sexual partner; notes discharge."]))
            parts.append(f"NAAT positive for {row['organism']}.")
        elif category == "nephrolithiasis":
            parts.append(rng.choice(["Pain is colicky and radiates to the groin.",
                                     "Writhing with waves of pain radiating to the groin; vomited once."]))
            parts.append(rng.choice([f"CT: {row['alternative_diagnosis']} with mild hydronephrosis.",
                                     f"Non-contrast CT shows a {row['alternative_diagnosis']}."]))
        elif category == "negative_workup" and row["alternative_diagnosis"] == "new diuretic":
            parts.append("Furosemide was increased last week.")
        # pertinent negatives
        negs = []
        if "fever" not in symptoms:
            negs.append("fever")
        if "flank_pain" not in symptoms and category != "nephrolithiasis":
            negs.append("flank pain")
        if not [s for s in symptoms if s in ("dysuria", "frequency", "urgency")]:
            negs.extend(["dysuria", "frequency"])
        if category == "cystitis" and rng.random() < 0.5:
            negs.append("vaginal discharge")
        if negs and rng.random() < 0.75:
            parts.append(rng.choice(["Denies", "No", "Negative for"]) + " " + _join(negs, "or") + ".")
        # vitals / exam
        febrile = "fever" in symptoms
        exam = [_temp(rng, febrile)]
        if category == "urosepsis":
            exam.append(f"BP {rng.randint(72, 92)}/{rng.randint(40, 56)}, HR {rng.randint(112, 134)}")
        else:
            exam.append(f"HR {rng.randint(64, 108) if not febrile else rng.randint(96, 124)}")
        if "cva_tenderness" in symptoms:
            exam.append(f"{side} CVA tenderness")
        elif rng.random() < 0.5 and category not in ("nephrolithiasis",):
            exam.append("no CVA tenderness")
        if "suprapubic_pain" in symptoms and rng.random() < 0.6:
            exam.append("suprapubic tenderness")
        if row["setting"] != "telehealth":
            parts.append("Exam: " + ", ".join(exam) + ".")
        elif febrile:
            parts.append(f"Home {_temp(rng, True)}.")
        if category == "cauti" and rng.random() < 0.7:
            parts.append(rng.choice(["Chest X-ray clear, no diarrhea, lines without erythema.",
                                     "No other source found: lungs clear, wounds clean."]))
        ua_text = render_ua(rng, row["urinalysis"])
        if row["setting"] == "telehealth" and row["urinalysis"] is not None:
            ua_text = ua_text.replace("Urine dipstick:", "Home dipstick:").replace("Dipstick UA", "Home dipstick")
        if ua_text:
            parts.append(ua_text)
        elif row["setting"] != "telehealth" and rng.random() < 0.5:
            parts.append("Urinalysis not obtained.")
        culture_text = render_culture(rng, row["culture"], row["organism"])
        if culture_text:
            parts.append(culture_text)
    if include_assessment and row["assessment"].strip():
        parts.append(rng.choice(["A/P:", "Assessment and plan:", "Plan:", "Impression:"]) + " "
                     + row["assessment"].strip())
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
        plan = _cycle(rng, POSITIVE_SCENARIOS, size - half) + _cycle(rng, NEGATIVE_SCENARIOS, half)
        rows = []
        for category in plan:
            while True:
                fields = SCENARIOS[category](rng)
                if fields["setting"] == "telehealth":  # a home dipstick at most, no culture yet
                    if fields["urinalysis"]:
                        fields["urinalysis"].update(wbc_per_hpf=None, rbc_per_hpf=None, squamous_cells=None,
                                                    bacteria=None)
                    fields.update(culture="not sent", organism=None)
                include_assessment = rng.random() < 0.65
                text = render_note(rng, fields, category, include_assessment)
                if text not in seen:
                    break
            seen.add(text)
            level = min(2, BASE_DIFFICULTY[category] + (0 if include_assessment else 1))
            row = {**fields, "text": text, "category": category, "difficulty": LEVELS[level],
                   "assessment_included": include_assessment}
            row["label"] = uti_label(row)
            expected = "yes" if category in POSITIVE_SCENARIOS else "no"
            assert row["label"] == expected, (category, row)
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
