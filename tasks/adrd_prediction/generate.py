"""Generator for the ``adrd_prediction`` task: a longitudinal health history → Alzheimer's disease or a related
dementia (ADRD) diagnosed within five years of the index date?

Each synthetic patient is drawn from a documented logistic risk model; the history text (dated diagnoses with
ICD-10 codes, medications, visits, cognitive scores, social and family history) is rendered from the sampled
risk factors plus distractor conditions that are not in the model. The label is THRESHOLDED, not drawn:
"yes" if and only if the model's five-year probability is >= 0.5, so the ground truth is a deterministic function
of the structured fields (``risk_probability``) and every row's ``rationale`` can explain it from the history.

Risk model: logit(p) = -3.0 + ln(2) x (age - 75) / 5 + sum of ln(relative risk) over the factors present.
The intercept puts a 75-year-old with no factor at p = 0.047; risk doubles every five years of age (dementia
incidence roughly doubles every 5 years after 65: Jorm & Jolley, Neurology 1998). Relative risks:

  factor (key)                    RR   basis
  mci                             8.0  documented mild cognitive impairment (G31.84): 10-15%/year progression
                                       (Petersen et al., AAN practice guideline, Neurology 2018)
  apoe4                           3.0  one APOE e4 allele on genotyping (e3/e4, e2/e4; Farrer et al., JAMA 1997)
  subjective_cognitive_decline    2.0  self-reported decline with normal testing (Mitchell et al., Acta Psychiatr
                                       Scand 2014)
  stroke                          1.7  prior ischaemic stroke (Kuzma et al., Alzheimers Dement 2018)
  hearing_loss                    1.9  Lancet Commission 2020 (Livingston et al.)
  depression                      1.9  Lancet Commission 2020
  tbi                             1.8  traumatic brain injury with loss of consciousness; Lancet Commission 2020
  hypertension                    1.6  Lancet Commission 2020
  smoking                         1.6  current smoking at the index date; Lancet Commission 2020
  social_isolation                1.6  Lancet Commission 2020
  low_education                   1.6  fewer than 12 years of schooling; Lancet Commission 2020
  diabetes                        1.5  type 2 diabetes; Lancet Commission 2020
  family_history                  1.5  a parent or sibling with Alzheimer's disease/dementia (Green et al., JAMA
                                       2002, MIRAGE)
  anticholinergic                 1.5  >= 1 year of a strong anticholinergic (ACB score 3: oxybutynin, amitriptyline,
                                       paroxetine, diphenhydramine, hydroxyzine, tolterodine) (Coupland et al.,
                                       JAMA Intern Med 2019; Gray et al., JAMA Intern Med 2015)
  physical_inactivity             1.4  Lancet Commission 2020

Not in the model (distractors written into the histories): hyperlipidemia, osteoarthritis, GERD, hypothyroidism,
BPH, osteoporosis, gout, cataract, allergic rhinitis, former smoking quit more than 10 years before, sex.

Balance: each split holds equal numbers of "yes" and "no" (train 200, validation 50, test 100); within each label
30% are "hard" (|logit| < 0.5, p in 0.38-0.62), 35% "medium" (|logit| < 1.25) and 35% "easy" (``difficulty``),
filled by rejection sampling from the population priors in ``PREVALENCE``. ``category`` is the cognitive status
at the index date (none / subjective decline / MCI). Run ``python generate.py`` to rewrite
data/{train,validation,test}.jsonl (seed 4242).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from pathlib import Path

SEED = 4242
SIZES = {"train": 200, "validation": 50, "test": 100}
LABELS = ["no", "yes"]
THRESHOLD = 0.5
INTERCEPT = -3.0
AGE_REFERENCE = 75
AGE_LOG_RR_PER_5_YEARS = math.log(2.0)
RELATIVE_RISK = {
    "mci": 8.0, "apoe4": 3.0, "subjective_cognitive_decline": 2.0, "stroke": 1.7, "hearing_loss": 1.9,
    "depression": 1.9, "tbi": 1.8, "hypertension": 1.6, "smoking": 1.6, "social_isolation": 1.6,
    "low_education": 1.6, "diabetes": 1.5, "family_history": 1.5, "anticholinergic": 1.5,
    "physical_inactivity": 1.4,
}
FACTORS = list(RELATIVE_RISK)
PREVALENCE = {
    "apoe4": 0.15, "stroke": 0.08, "hearing_loss": 0.3, "depression": 0.2, "tbi": 0.08, "hypertension": 0.5,
    "smoking": 0.14, "social_isolation": 0.22, "low_education": 0.2, "diabetes": 0.24, "family_history": 0.22,
    "anticholinergic": 0.2, "physical_inactivity": 0.3,
}
COGNITIVE_STATUS = {"none": 0.62, "subjective_cognitive_decline": 0.22, "mci": 0.16}
DIFFICULTY_SHARE = {"hard": 0.30, "medium": 0.35, "easy": 0.35}


# --------------------------------------------------------------------------------------------------- the model
def risk_logit(age: int, risk_factors: dict[str, bool]) -> float:
    logit = INTERCEPT + AGE_LOG_RR_PER_5_YEARS * (age - AGE_REFERENCE) / 5
    return logit + sum(math.log(RELATIVE_RISK[f]) for f in FACTORS if risk_factors.get(f))


def risk_probability(age: int, risk_factors: dict[str, bool]) -> float:
    return 1 / (1 + math.exp(-risk_logit(age, risk_factors)))


def adrd_label(age: int, risk_factors: dict[str, bool]) -> str:
    return "yes" if risk_probability(age, risk_factors) >= THRESHOLD else "no"


def difficulty_of(logit: float) -> str:
    return "hard" if abs(logit) < 0.5 else "medium" if abs(logit) < 1.25 else "easy"


def _sample_patient(rng: random.Random) -> tuple[int, dict[str, bool]]:
    age = rng.randint(65, 93)
    factors = {f: rng.random() < p for f, p in PREVALENCE.items()}
    status = rng.choices(list(COGNITIVE_STATUS), weights=list(COGNITIVE_STATUS.values()))[0]
    factors["mci"] = status == "mci"
    factors["subjective_cognitive_decline"] = status == "subjective_cognitive_decline"
    return age, {f: factors[f] for f in FACTORS}


# ------------------------------------------------------------------------------------------------- rendering
ANTIHTN = ["lisinopril 10 mg daily", "amlodipine 5 mg daily", "losartan 50 mg daily",
           "hydrochlorothiazide 25 mg daily"]
ANTICHOLINERGIC = [("oxybutynin 5 mg twice daily", "overactive bladder (N32.81)"),
                   ("amitriptyline 25 mg at bedtime", "chronic neuropathic pain (M79.2)"),
                   ("paroxetine 20 mg daily", "generalized anxiety disorder (F41.1)"),
                   ("diphenhydramine 50 mg nightly", "insomnia (G47.00)"),
                   ("hydroxyzine 25 mg three times daily", "chronic pruritus (L29.9)"),
                   ("tolterodine 2 mg twice daily", "urge incontinence (N39.41)")]
ANTIDEPRESSANT = ["sertraline 50 mg daily", "escitalopram 10 mg daily", "bupropion XL 150 mg daily",
                  "citalopram 20 mg daily"]
DISTRACTORS = [
    ("Dx hyperlipidemia (E78.5); started atorvastatin 20 mg daily.", "atorvastatin 20 mg daily", None),
    ("Dx primary osteoarthritis of the right knee (M17.11); acetaminophen as needed, physical therapy.",
     "acetaminophen 500 mg as needed", None),
    ("Dx gastro-esophageal reflux disease (K21.9); omeprazole 20 mg daily.", "omeprazole 20 mg daily", None),
    ("Dx hypothyroidism (E03.9), TSH 8.1; levothyroxine 50 mcg daily.", "levothyroxine 50 mcg daily", None),
    ("Dx benign prostatic hyperplasia (N40.0); tamsulosin 0.4 mg daily.", "tamsulosin 0.4 mg daily", "male"),
    ("DEXA T-score -2.7. Dx osteoporosis (M81.0); alendronate 70 mg weekly.", "alendronate 70 mg weekly", "female"),
    ("Acute gout flare, left first MTP (M10.072); colchicine course.", None, None),
    ("Cataract extraction with lens implant, right eye; vision 20/25 afterwards.", None, None),
    ("Seasonal allergic rhinitis (J30.2); loratadine 10 mg daily as needed.", "loratadine 10 mg as needed", None),
    ("Screening colonoscopy: two small tubular adenomas removed.", None, None),
    ("Basal cell carcinoma of the left cheek excised, margins clear.", None, None),
    ("Herpes zoster, right T8 dermatome (B02.9); valacyclovir course.", None, None),
    ("Community-acquired pneumonia (J18.9), treated as an outpatient with doxycycline.", None, None),
]
ROUTINE_NOTES = ["influenza vaccine given", "routine labs normal", "weight stable", "no new complaints",
                 "BMI 27", "pneumococcal vaccine given", "shingles vaccine given", "blood pressure at goal"]
VISIT_KINDS = ["Primary care visit", "Annual wellness visit", "Follow-up visit", "Telehealth visit"]


def _date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randint(0, max(0, (end - start).days)))


def render_history(rng: random.Random, age: int, sex: str, factors: dict[str, bool]) -> tuple[str, dict]:
    """The history text and the details the rationale cites."""
    index = dt.date(rng.randint(2015, 2021), rng.randint(1, 12), rng.randint(1, 28))
    start = index - dt.timedelta(days=365 * rng.randint(6, 10))
    recent = index - dt.timedelta(days=365 * 3)
    events: list[tuple[dt.date, str]] = []
    meds: list[str] = []
    details: dict[str, str] = {}
    pronoun = "she" if sex == "female" else "he"
    parent = rng.choice(["mother", "father"])

    def event(when, text):
        events.append((when, text))

    # --- static sections
    if factors["low_education"]:
        years = rng.choice([6, 8, 9, 10])
        education = f"left school after grade {years}"
        details["low_education"] = f"{years} years of schooling"
    else:
        education = rng.choice(["high school graduate", "some college", "bachelor's degree", "master's degree",
                                "trade school after high school"])
    if factors["family_history"]:
        fam = rng.choice([f"{parent} diagnosed with Alzheimer's disease at {rng.randint(72, 86)}",
                          f"{parent} had dementia in {'her' if parent == 'mother' else 'his'} late 70s",
                          "older sister with Alzheimer's disease"])
        details["family_history"] = fam
        family = fam + rng.choice(["", f"; {rng.choice(['mother', 'father'])} with type 2 diabetes"])
    else:
        family = rng.choice(["father died of myocardial infarction at 70; mother with breast cancer",
                             "mother with hypertension, lived to 94; father died of lung cancer",
                             "no dementia in parents or siblings", "siblings healthy; parents died in their 80s of "
                                                                   "heart disease"])
    social = []
    if factors["smoking"]:
        social.append(f"current smoker, {rng.choice(['1 pack', 'half a pack', '15 cigarettes'])}/day "
                      f"(F17.210)")
        details["smoking"] = "current smoker"
    else:
        social.append(rng.choice(["never smoker", "never smoker", f"former smoker, quit in "
                                                                 f"{index.year - rng.randint(15, 35)}"]))
    if factors["physical_inactivity"]:
        social.append(rng.choice(["sedentary, no regular exercise (Z72.3)",
                                  "physically inactive, mostly sits at home (Z72.3)"]))
        details["physical_inactivity"] = "physical inactivity"
    else:
        social.append(rng.choice(["walks 30 minutes most days", "swims twice a week", "golfs and gardens",
                                  "attends an exercise class three times a week"]))
    if factors["social_isolation"]:
        social.append(rng.choice(["lives alone since being widowed, rarely sees anyone (Z60.2)",
                                  "lives alone, no close contacts, stopped attending community activities (Z60.2)"]))
        details["social_isolation"] = "social isolation"
    else:
        social.append(rng.choice(["lives with spouse", "lives with daughter's family", "lives with spouse, "
                                  "volunteers weekly", "lives alone, sees friends at church weekly"]))
    social.append(rng.choice(["alcohol: rarely", "alcohol: 1-2 drinks per week", "no alcohol"]))

    # --- dated events for the factors present
    def dx_date():
        return _date(rng, start, index - dt.timedelta(days=60))

    if factors["hypertension"]:
        d, drug = dx_date(), rng.choice(ANTIHTN)
        event(d, f"{rng.choice(VISIT_KINDS[:3])}: BP {rng.randint(146, 168)}/{rng.randint(88, 100)} on two "
                 f"readings. Dx essential hypertension (I10); started {drug}.")
        meds.append(drug)
        details["hypertension"] = f"hypertension since {d.year}"
    if factors["diabetes"]:
        d = dx_date()
        event(d, f"Labs: HbA1c {rng.choice([6.8, 7.1, 7.4, 7.9, 8.3])}%. Dx type 2 diabetes mellitus (E11.9); "
                 f"metformin 500 mg twice daily.")
        meds.append("metformin 500 mg twice daily")
        details["diabetes"] = f"type 2 diabetes since {d.year}"
    if factors["depression"]:
        d, drug = dx_date(), rng.choice(ANTIDEPRESSANT)
        event(d, f"Behavioral health: PHQ-9 {rng.randint(14, 21)}. Dx major depressive disorder, "
                 f"{rng.choice(['single episode, moderate (F32.1)', 'recurrent, moderate (F33.1)'])}; {drug}.")
        meds.append(drug)
        details["depression"] = f"major depression ({d.year})"
    if factors["hearing_loss"]:
        d = dx_date()
        event(d, f"Audiology: bilateral sensorineural hearing loss (H90.3), {rng.choice(['mild', 'moderate'])}"
                 f"{rng.choice(['', ' to severe'])}.")
        details["hearing_loss"] = "bilateral hearing loss"
    if factors["tbi"]:
        d = dx_date()
        cause = rng.choice(["fall from a ladder", "motor vehicle collision", "fall on ice", "fall down stairs"])
        event(d, f"ED: {cause} with loss of consciousness about {rng.randint(1, 10)} minutes; concussion with "
                 f"loss of consciousness (S06.0X1A), CT head without bleed.")
        details["tbi"] = f"traumatic brain injury with loss of consciousness ({d.year})"
    if factors["stroke"]:
        d = dx_date()
        event(d, f"Hospitalization: acute ischemic stroke, {rng.choice(['left', 'right'])} MCA territory "
                 f"(I63.9); residual mild hand weakness. Discharged on aspirin 81 mg and atorvastatin 40 mg.")
        meds.extend(["aspirin 81 mg daily", "atorvastatin 40 mg daily"])
        details["stroke"] = f"ischemic stroke ({d.year})"
    if factors["anticholinergic"]:
        d = _date(rng, start, index - dt.timedelta(days=500))
        drug, indication = rng.choice(ANTICHOLINERGIC)
        event(d, f"Dx {indication}; started {drug}.")
        event(_date(rng, d + dt.timedelta(days=400), index - dt.timedelta(days=30)),
              f"Medication review: continues {drug}.")
        meds.append(drug)
        details["anticholinergic"] = f"long-term {drug.split()[0]} (strong anticholinergic) since {d.year}"
    if factors["apoe4"]:
        d = dx_date()
        genotype = rng.choice(["e3/e4", "e3/e4", "e2/e4"])
        event(d, f"Research study APOE genotyping: {genotype}.")
        details["apoe4"] = f"APOE {genotype} (e4 carrier)"
    elif rng.random() < 0.15:
        event(dx_date(), f"Research study APOE genotyping: {rng.choice(['e3/e3', 'e2/e3'])}.")

    # --- cognition
    if factors["mci"]:
        d = _date(rng, recent, index - dt.timedelta(days=30))
        moca = rng.randint(19, 24)
        event(d - dt.timedelta(days=rng.randint(60, 200)),
              f"{rng.choice(VISIT_KINDS[:2])}: family notes {pronoun} repeats questions and misses bills. "
              f"MoCA {moca + rng.randint(0, 2)}/30. Referred to memory clinic.")
        event(d, f"Memory clinic: MoCA {moca}/30; neuropsychological testing shows impaired delayed recall, "
                 f"independent in daily activities. Dx mild cognitive impairment (G31.84).")
        details["mci"] = f"mild cognitive impairment diagnosed {d.year} (MoCA {moca}/30)"
    elif factors["subjective_cognitive_decline"]:
        d = _date(rng, recent, index - dt.timedelta(days=30))
        event(d, f"{rng.choice(VISIT_KINDS)}: reports {pronoun} is more forgetful than a few years ago "
                 f"({rng.choice(['misplaces keys', 'forgets names', 'loses track of conversations'])}). "
                 f"MoCA {rng.randint(26, 29)}/30, normal. Subjective cognitive decline; recheck in one year.")
        details["subjective_cognitive_decline"] = f"subjective memory complaints ({d.year}) with normal testing"
    elif rng.random() < 0.5:
        event(_date(rng, recent, index - dt.timedelta(days=30)),
              f"Annual wellness visit: cognitive screen {rng.choice(['Mini-Cog 5/5', 'MoCA 28/30', 'MoCA 29/30'])}, "
              f"no concerns raised.")

    # --- distractors and routine visits
    for text, med, only_sex in rng.sample(DISTRACTORS, rng.randint(2, 4)):
        if only_sex and only_sex != sex:
            continue
        event(dx_date(), text)
        if med:
            meds.append(med)
    for _ in range(rng.randint(1, 3)):
        event(dx_date(), f"{rng.choice(VISIT_KINDS)}: {rng.choice(ROUTINE_NOTES)}.")

    events.sort(key=lambda e: e[0])
    sex_word = sex
    lines = [f"Index date: {index.isoformat()}. Age at index: {age}. Sex: {sex_word}.",
             f"Education: {education}.", f"Family history: {family}.", f"Social history: {'; '.join(social)}.",
             "Timeline:"]
    lines += [f"- {when.isoformat()}: {text}" for when, text in events]
    lines.append("Medications at index: " + (", ".join(dict.fromkeys(meds)) if meds else "none") + ".")
    details["index_date"] = index.isoformat()
    return "\n".join(lines), details


FACTOR_NAMES = {
    "mci": "mild cognitive impairment", "apoe4": "APOE e4", "subjective_cognitive_decline": "subjective decline",
    "stroke": "stroke", "hearing_loss": "hearing loss", "depression": "depression", "tbi": "head injury",
    "hypertension": "hypertension", "smoking": "current smoking", "social_isolation": "social isolation",
    "low_education": "low education", "diabetes": "diabetes", "family_history": "family history of dementia",
    "anticholinergic": "anticholinergic use", "physical_inactivity": "physical inactivity",
}


def render_rationale(rng: random.Random, age: int, factors: dict[str, bool], details: dict, probability: float,
                     label: str) -> str:
    present = sorted([f for f in FACTORS if factors[f]], key=lambda f: -RELATIVE_RISK[f])
    absent = [f for f in ("mci", "stroke", "hypertension", "diabetes", "depression", "hearing_loss")
              if not factors[f]]
    age_note = ("advanced age, a major risk factor by itself" if age >= 85 else "older age" if age >= 78
                else "a moderate age-related baseline risk" if age >= 70 else "relatively young for dementia")
    parts = [f"At the index date the patient is {age} ({age_note})."]
    if present:
        parts.append("Documented risk factors: " + "; ".join(details[f] for f in present) + ".")
    else:
        parts.append("No modelled dementia risk factor is documented.")
    if absent:
        parts.append("Not present: " + ", ".join(FACTOR_NAMES[f] for f in absent) + ".")
    if present:
        strongest = FACTOR_NAMES[present[0]]
        if label == "yes":
            parts.append(rng.choice([f"The strongest contributor is {strongest}.",
                                     f"{strongest[0].upper() + strongest[1:]} weighs most heavily."]))
        else:
            parts.append(rng.choice([f"Even the strongest of these, {strongest}, does not raise the risk enough "
                                     f"at this age.", f"These factors add risk, led by {strongest}, but not enough."]))
    side = "at or above" if label == "yes" else "below"
    parts.append(f"Combining age and these factors gives an estimated five-year dementia risk of "
                 f"{round(100 * probability)}%, {side} the 50% threshold, so the answer is {label}.")
    return " ".join(parts)


# ------------------------------------------------------------------------------------------------- the splits
def _quotas(k: int) -> dict[str, int]:
    hard = round(DIFFICULTY_SHARE["hard"] * k)
    medium = round(DIFFICULTY_SHARE["medium"] * k)
    return {"hard": hard, "medium": medium, "easy": k - hard - medium}


def generate(seed: int = SEED) -> dict[str, list[dict]]:
    rng = random.Random(seed)
    seen: set[str] = set()
    splits: dict[str, list[dict]] = {}
    counter = 0
    for split, size in SIZES.items():
        need = {(label, level): n for label in LABELS for level, n in _quotas(size // 2).items()}
        rows = []
        while any(need.values()):
            age, factors = _sample_patient(rng)
            logit = risk_logit(age, factors)
            if abs(logit) < 0.02:  # never on the threshold itself
                continue
            key = (adrd_label(age, factors), difficulty_of(logit))
            if not need[key]:
                continue
            sex = rng.choice(["female", "male"])
            history, details = render_history(rng, age, sex, factors)
            if history in seen:
                continue
            seen.add(history)
            need[key] -= 1
            probability = round(risk_probability(age, factors), 4)  # as stored, so the rationale quotes it
            label = key[0]
            status = "mci" if factors["mci"] else ("subjective_decline" if factors["subjective_cognitive_decline"]
                                                   else "none")
            rows.append({"history": history, "label": label, "age": age, "sex": sex,
                         "index_date": details["index_date"], "risk_factors": factors,
                         "probability": probability, "logit": round(logit, 4),
                         "rationale": render_rationale(rng, age, factors, details, probability, label),
                         "difficulty": key[1], "category": status})
        rng.shuffle(rows)
        for row in rows:
            counter += 1
            row["id"] = f"adrd-{counter:04d}"
        splits[split] = rows
    return splits




if __name__ == "__main__":
    from medbench.taskdata import write_jsonl_splits

    write_jsonl_splits(generate(SEED), Path(__file__).resolve().parent / "data")
