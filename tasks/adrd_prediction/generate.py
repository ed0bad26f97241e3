"""Generator for the ``adrd_prediction`` task: a longitudinal health history -> Alzheimer's disease or a related
dementia (ADRD) diagnosed within five years of the index date?

Each synthetic patient is drawn from a population of adults aged 65-94 seen in primary care; the history text
(dated diagnoses with ICD-10 codes, medications, visits, cognitive scores, social and family history) is
rendered from the sampled risk factors plus distractor conditions that are not in the model. The label is
DRAWN from the risk model, not thresholded: ``yes`` with probability p (Bernoulli(p), seeded), so two patients
with the same record can have different outcomes and no rule on the text can be right every time. The best
possible classifier is the risk model itself (its AUROC is reported in README.md).

Risk model (five-year cumulative risk p; odds ratios used as relative risks, which they approximate while p is
small):

  logit(p) = INTERCEPT + ln(2) x (age - 75) / 5 + sum over factors present of w(age) x ln(OR)

* INTERCEPT = -3.8: a 75-year-old with no factor has p = 2.2%, and the mean five-year risk of the sampled
  population is about 12.7% (about 2.5% a year, in line with published incidence of dementia among adults 65
  and over, which is about 1-2% a year at 65-74 and over 5% a year after 85).
* ln(2) per 5 years of age: dementia incidence roughly doubles every five years after 65 (Jorm & Jolley,
  Neurology 1998).
* w(age) attenuates the vascular, lifestyle and genetic factors after 75 (1 at <= 75, falling linearly to 0.5 at
  90): their associations are weaker when measured late in life (Lancet Commission, Livingston et al. 2020 and
  2024). Cognitive status (MCI, subjective decline) is not attenuated.

  factor (key)                    OR   basis
  mci                             6.0  documented mild cognitive impairment (G31.84): community MCI converts at
                                       roughly 5-10% a year (Petersen et al., AAN guideline, Neurology 2018)
  apoe4                           2.5  one APOE e4 allele on genotyping (e3/e4, e2/e4; Farrer et al., JAMA 1997)
  subjective_cognitive_decline    2.0  self-reported decline with normal testing (Mitchell et al., Acta Psychiatr
                                       Scand 2014)
  stroke                          1.7  prior ischaemic stroke (Kuzma et al., Alzheimers Dement 2018)
  hearing_loss                    1.7  hearing loss NOT corrected by hearing aids (Lancet Commission 2020/2024;
                                       aided hearing loss is written into some histories but carries no excess)
  depression                      1.7  Lancet Commission 2020 (RR 1.9, shrunk for late-life onset)
  tbi                             1.5  traumatic brain injury with loss of consciousness; Lancet Commission 2020
  hypertension                    1.3  Lancet Commission 2020 (RR 1.6 for midlife; weaker when late-life)
  smoking                         1.4  current smoking at the index date; Lancet Commission 2020
  social_isolation                1.5  Lancet Commission 2020
  low_education                   1.4  fewer than 12 years of schooling; Lancet Commission 2020
  diabetes                        1.5  type 2 diabetes; Lancet Commission 2020
  family_history                  1.5  a parent or sibling with Alzheimer's disease/dementia (Green et al., JAMA
                                       2002, MIRAGE)
  anticholinergic                 1.4  >= 1 year of a strong anticholinergic (ACB score 3: oxybutynin,
                                       amitriptyline, paroxetine, diphenhydramine, hydroxyzine, tolterodine)
                                       (Coupland et al., JAMA Intern Med 2019; Gray et al., JAMA Intern Med 2015)
  physical_inactivity             1.3  Lancet Commission 2020

Population: age bands 65-69 28%, 70-74 25%, 75-79 18%, 80-84 13%, 85-89 10%, 90-94 6%; MCI prevalence rises
with age (5% at 65, +0.7 points a year, as in Petersen 2018), subjective decline in a further 15%; the other
factors at the prevalences in ``PREVALENCE``. Not in the model (distractors written into the histories):
hyperlipidemia, osteoarthritis, GERD, hypothyroidism, BPH, osteoporosis, gout, cataract, allergic rhinitis,
aided hearing loss, former smoking, sex.

Splits. ``train`` 200, ``validation`` 50 and ``test`` 400 (the 100 of version 1.0, then 300 drawn after them)
are case-control samples: patients are drawn from the population and their outcome drawn from the model until
each split (each test batch) holds equal numbers of ``yes`` and ``no`` (balanced, as in the study).
``test_prevalence`` (400, ``generate_prevalence``) is a plain population sample at the natural prevalence (about
1 in 8), the split the ``adrd_prediction_prevalence`` variant scores with F1 and AUROC.

``difficulty`` is how well the record supports the realised outcome in a balanced sample: q = the model's
probability of that outcome after the case-control shift (logit - logit(MEAN_RISK)); easy q >= 0.7, medium
0.5 <= q < 0.7, hard q < 0.5 (the outcome goes against the record). ``category`` is the cognitive status at the
index date (none / subjective_decline / mci).

Rationales (``render_rationale``) are what a clinician or an LLM could write from the history: accurate about the
record, and blind to the risk model and to the outcome's probability (they are never computed from ``risk_logit``;
a rationale that banded the model's own probability would hand rationale training the Bayes-optimal answer, which
label-only training must learn from noisy outcomes). The writer (``_writer``) reads the record with a deliberately
imperfect bedside rule of thumb, not the generator's model:

1. The evidence, from the record alone, so its text is the same whichever way the outcome fell: the age at the
   index date (the number, unweighed); the major findings (MCI, APOE e4, subjective decline) and the other risk
   factors the writer notices, each with its timing. Easily overlooked factors (``OVERLOOKED``: hearing,
   schooling, isolation, inactivity, anticholinergic burden, the vascular and mood diagnoses, head injury) are
   each missed with probability ``WRITER_MISS`` (0.5); then what is in the patient's favour (reassuring findings,
   the checked factors absent). Each factor named is named on its true side: a risk factor is never reassurance,
   and vice versa; a factor missed is left unsaid, never called absent.
2. The overall impression: the writer's points (MCI 3; APOE e4, family history, stroke 2; every other factor it
   noticed 1; age not counted), moved by one point either way or not at all (1:2:1, its judgment), in four bands
   (>= 5 high, >= 3 somewhat above, >= 1 somewhat below, else low against the average older adult). Its verdict
   (above average = "yes") is about as good as a bag-of-words model on the history (README.md).
3. The conclusion, the only label-dependent sentence. Concordant rows (``rationale_stance``; the writer's band
   on the label's side): the evidence "points" (high/low) or "leans, though not strongly" towards or away from
   a diagnosis. Discordant rows never claim the evidence favours the label: "Despite this <band> profile, X and
   Y ..." names at most two pieces of evidence the record really holds for the label (for "yes": older age
   (78+) and factors the writer named, strongest first; for "no": an age under 70, the reassuring findings,
   cognition first, then the checked factors absent), says the label "remains possible" ("yes") or that many
   (some, from a high-risk impression) such patients stay free of dementia ("no"), and that the record as a
   whole points the other way. With nothing to cite, it says the outcome is not predictable from this record.
   ``rationale_stance`` is the writer's, not ``difficulty`` (the model's): they differ on about a third of rows.

Rationales never state a probability, the odds ratios or any threshold, nor the word "answer"; consumers append
the answer itself. The writer's misses and judgment come from a random stream of its own, seeded by the record's
text (``_writer``), and the rationale consumes one draw of the patient stream (its phrasing variant), as it always
did, so rendering it never changes the patients drawn after it.

A second writer, the clinician (``rationale_clinician``, ``render_clinician_rationale``; since 1.3, every other
field unchanged), reads the record as a careful clinician does: rationale quality is a factor of the rationale_sft
study (the seed's rationales were judged medically accurate, and a reading that ignores age, the largest risk in
five-year dementia, is not). It weighs age in the usual five-year bands (65-69 0 points, 70-74 1, 75-79 2, 80-84
3, 85+ 4: incidence climbs steeply with age, which is medical knowledge, not the model) and names every factor the
record documents (MCI 3, APOE e4 2, every other 1: a bedside weighting, not the model's odds ratios, with no
attenuation), with no misses and no judgment noise. Its bands: >= 8 high, >= 6 somewhat above (the typical older
adult here scores 5, the population's median), >= 4 somewhat below, else low. Evidence, impression and conclusion
follow the rules above (``_conclusion``; older age is cited for "yes" from 75), never a probability, odds ratio,
threshold or the word "answer"; its phrasing variant comes from a stream of its own seeded by the record, so it
draws nothing from the patients' stream. Each writer's verdict (impression above average = "yes"), F1 / macro-F1,
beside the risk model's (logit above the population's mean risk, the Bayes rule on a balanced split):

  split              heuristic (``rationale``)   clinician (``rationale_clinician``)   risk model
  train              0.68 / 0.65                 0.74 / 0.72                           0.77 / 0.76
  validation         0.68 / 0.61                 0.75 / 0.72                           0.78 / 0.76
  test               0.64 / 0.63                 0.75 / 0.73                           0.75 / 0.74
  test_prevalence    0.32 / 0.53                 0.42 / 0.61                           0.44 / 0.64

Run ``python generate.py`` to rewrite data/{train,validation,test,test_prevalence}.jsonl (seed 4242).
"""

from __future__ import annotations

import datetime as dt
import math
import random
from pathlib import Path

from medbench.taskdata import grown_splits, write_jsonl_splits

SEED = 4242
# balanced test 400 (1.1; 100 in 1.0): 100 items give a paired difference a 95% CI half-width of about 0.06 at
# 10% discordance, too wide to read a null as equivalence within 0.05 (0.03 at 400). The 1.0 test items are
# drawn and shuffled first, the 300 new ones after them, so train, validation and those 100 stay as they were.
SIZES = {"train": 200, "validation": 50, "test": 400}
FIRST_TEST_DRAW = 100
PREVALENCE_SIZE = 400
LABELS = ["no", "yes"]
INTERCEPT = -3.8
AGE_REFERENCE = 75
AGE_LOG_RR_PER_5_YEARS = math.log(2.0)
MEAN_RISK = 0.127  # mean five-year risk of the sampled population (a test re-estimates it)
ODDS_RATIO = {
    "mci": 6.0, "apoe4": 2.5, "subjective_cognitive_decline": 2.0, "stroke": 1.7, "hearing_loss": 1.7,
    "depression": 1.7, "tbi": 1.5, "hypertension": 1.3, "smoking": 1.4, "social_isolation": 1.5,
    "low_education": 1.4, "diabetes": 1.5, "family_history": 1.5, "anticholinergic": 1.4,
    "physical_inactivity": 1.3,
}
NOT_ATTENUATED = {"mci", "subjective_cognitive_decline"}
FACTORS = list(ODDS_RATIO)
PREVALENCE = {
    "apoe4": 0.15, "stroke": 0.08, "hearing_loss": 0.2, "depression": 0.15, "tbi": 0.08, "hypertension": 0.5,
    "smoking": 0.10, "social_isolation": 0.2, "low_education": 0.2, "diabetes": 0.24, "family_history": 0.2,
    "anticholinergic": 0.15, "physical_inactivity": 0.3,
}
AGE_BANDS = {(65, 69): 0.28, (70, 74): 0.25, (75, 79): 0.18, (80, 84): 0.13, (85, 89): 0.10, (90, 94): 0.06}
SUBJECTIVE_DECLINE_SHARE = 0.15


# --------------------------------------------------------------------------------------------------- the model
def attenuation(age: int) -> float:
    return 1.0 if age <= 75 else max(0.5, 1.0 - 0.5 * (age - 75) / 15)


def risk_logit(age: int, risk_factors: dict[str, bool]) -> float:
    logit = INTERCEPT + AGE_LOG_RR_PER_5_YEARS * (age - AGE_REFERENCE) / 5
    w = attenuation(age)
    return logit + sum(math.log(ODDS_RATIO[f]) * (1.0 if f in NOT_ATTENUATED else w)
                       for f in FACTORS if risk_factors.get(f))


def risk_probability(age: int, risk_factors: dict[str, bool]) -> float:
    return 1 / (1 + math.exp(-risk_logit(age, risk_factors)))


def balanced_probability(logit: float) -> float:
    """P(yes) for this record in a 50/50 case-control sample: the intercept shifts by -logit(MEAN_RISK)."""
    return 1 / (1 + math.exp(-(logit - math.log(MEAN_RISK / (1 - MEAN_RISK)))))


def difficulty_of(logit: float, label: str) -> str:
    q = balanced_probability(logit)
    q = q if label == "yes" else 1 - q
    return "easy" if q >= 0.7 else "medium" if q >= 0.5 else "hard"


def sample_patient(rng: random.Random) -> tuple[int, dict[str, bool]]:
    band = rng.choices(list(AGE_BANDS), weights=list(AGE_BANDS.values()))[0]
    age = rng.randint(*band)
    factors = {f: rng.random() < p for f, p in PREVALENCE.items()}
    mci_share = 0.05 + 0.007 * (age - 65)
    u = rng.random()
    factors["mci"] = u < mci_share
    factors["subjective_cognitive_decline"] = mci_share <= u < mci_share + SUBJECTIVE_DECLINE_SHARE
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
AIDED_HEARING_SHARE = 0.15  # of patients without the (unaided) factor: aided hearing loss, a distractor


def _date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randint(0, max(0, (end - start).days)))


def _ago(when: dt.date, index: dt.date) -> str:
    years = (index - when).days // 365
    return "less than a year before the index date" if years < 1 else \
        f"{years} year{'s' if years > 1 else ''} before the index date"


def render_history(rng: random.Random, age: int, sex: str, factors: dict[str, bool]) -> tuple[str, dict]:
    """The history text and what a rationale may cite: ``risk`` (factor -> phrase with its timing) and
    ``reassuring`` (phrases for findings that argue against dementia), all taken from the text."""
    index = dt.date(rng.randint(2015, 2021), rng.randint(1, 12), rng.randint(1, 28))
    start = index - dt.timedelta(days=365 * rng.randint(6, 10))
    recent = index - dt.timedelta(days=365 * 3)
    events: list[tuple[dt.date, str]] = []
    meds: list[str] = []
    risk: dict[str, str] = {}
    reassuring: list[str] = []
    pronoun = "she" if sex == "female" else "he"
    parent = rng.choice(["mother", "father"])

    def event(when, text):
        events.append((when, text))

    # --- static sections
    if factors["low_education"]:
        years = rng.choice([6, 8, 9, 10])
        education = f"left school after grade {years}"
        risk["low_education"] = f"only {years} years of schooling"
    else:
        education = rng.choice(["high school graduate", "some college", "bachelor's degree", "master's degree",
                                "trade school after high school"])
        if education in ("bachelor's degree", "master's degree"):
            reassuring.append(f"a {education}")
    if factors["family_history"]:
        fam = rng.choice([f"{parent} diagnosed with Alzheimer's disease at {rng.randint(72, 86)}",
                          f"{parent} had dementia in {'her' if parent == 'mother' else 'his'} late 70s",
                          "older sister with Alzheimer's disease"])
        risk["family_history"] = f"a family history of dementia ({fam})"
        family = fam + rng.choice(["", f"; {rng.choice(['mother', 'father'])} with type 2 diabetes"])
    else:
        family = rng.choice(["father died of myocardial infarction at 70; mother with breast cancer",
                             "mother with hypertension, lived to 94; father died of lung cancer",
                             "no dementia in parents or siblings", "siblings healthy; parents died in their 80s of "
                                                                   "heart disease"])
    social = []
    if factors["smoking"]:
        amount = rng.choice(["1 pack", "half a pack", "15 cigarettes"])
        social.append(f"current smoker, {amount}/day (F17.210)")
        risk["smoking"] = f"current smoking ({amount} a day)"
    else:
        social.append(rng.choice(["never smoker", "never smoker", f"former smoker, quit in "
                                                                 f"{index.year - rng.randint(15, 35)}"]))
    if factors["physical_inactivity"]:
        social.append(rng.choice(["sedentary, no regular exercise (Z72.3)",
                                  "physically inactive, mostly sits at home (Z72.3)"]))
        risk["physical_inactivity"] = "physical inactivity"
    else:
        activity = rng.choice(["walks 30 minutes most days", "swims twice a week", "golfs and gardens",
                               "attends an exercise class three times a week"])
        social.append(activity)
        reassuring.append(f"regular exercise ({activity})")
    if factors["social_isolation"]:
        social.append(rng.choice(["lives alone since being widowed, rarely sees anyone (Z60.2)",
                                  "lives alone, no close contacts, stopped attending community activities (Z60.2)"]))
        risk["social_isolation"] = "social isolation (lives alone with few contacts)"
    else:
        living = rng.choice(["lives with spouse", "lives with daughter's family", "lives with spouse, "
                             "volunteers weekly", "lives alone, sees friends at church weekly"])
        social.append(living)
        if "volunteers" in living or "friends" in living:
            reassuring.append("an active social life")
    social.append(rng.choice(["alcohol: rarely", "alcohol: 1-2 drinks per week", "no alcohol"]))

    # --- dated events for the factors present
    def dx_date():
        return _date(rng, start, index - dt.timedelta(days=60))

    if factors["hypertension"]:
        d, drug = dx_date(), rng.choice(ANTIHTN)
        event(d, f"{rng.choice(VISIT_KINDS[:3])}: BP {rng.randint(146, 168)}/{rng.randint(88, 100)} on two "
                 f"readings. Dx essential hypertension (I10); started {drug}.")
        meds.append(drug)
        risk["hypertension"] = f"hypertension since {d.year}, treated with {drug.split()[0]}"
    if factors["diabetes"]:
        d, a1c = dx_date(), rng.choice([6.8, 7.1, 7.4, 7.9, 8.3])
        event(d, f"Labs: HbA1c {a1c}%. Dx type 2 diabetes mellitus (E11.9); metformin 500 mg twice daily.")
        meds.append("metformin 500 mg twice daily")
        risk["diabetes"] = f"type 2 diabetes since {d.year} (HbA1c {a1c} at diagnosis)"
    if factors["depression"]:
        d, drug = dx_date(), rng.choice(ANTIDEPRESSANT)
        event(d, f"Behavioral health: PHQ-9 {rng.randint(14, 21)}. Dx major depressive disorder, "
                 f"{rng.choice(['single episode, moderate (F32.1)', 'recurrent, moderate (F33.1)'])}; {drug}.")
        meds.append(drug)
        risk["depression"] = f"major depression diagnosed {d.year}, {_ago(d, index)}"
    if factors["hearing_loss"]:
        d = dx_date()
        event(d, f"Audiology: bilateral sensorineural hearing loss (H90.3), {rng.choice(['mild', 'moderate'])}"
                 f"{rng.choice(['', ' to severe'])}; "
                 f"{rng.choice(['hearing aids recommended, declined', 'not using hearing aids'])}.")
        risk["hearing_loss"] = f"bilateral hearing loss since {d.year}, untreated (no hearing aids)"
    elif rng.random() < AIDED_HEARING_SHARE:
        d = dx_date()
        event(d, "Audiology: bilateral sensorineural hearing loss (H90.3), mild to moderate; fitted with "
                 "bilateral hearing aids, wears them daily.")
        reassuring.append(f"hearing loss corrected with hearing aids since {d.year}")
    if factors["tbi"]:
        d = dx_date()
        cause = rng.choice(["fall from a ladder", "motor vehicle collision", "fall on ice", "fall down stairs"])
        event(d, f"ED: {cause} with loss of consciousness about {rng.randint(1, 10)} minutes; concussion with "
                 f"loss of consciousness (S06.0X1A), CT head without bleed.")
        risk["tbi"] = f"a head injury with loss of consciousness in {d.year} ({cause})"
    if factors["stroke"]:
        d = dx_date()
        event(d, f"Hospitalization: acute ischemic stroke, {rng.choice(['left', 'right'])} MCA territory "
                 f"(I63.9); residual mild hand weakness. Discharged on aspirin 81 mg and atorvastatin 40 mg.")
        meds.extend(["aspirin 81 mg daily", "atorvastatin 40 mg daily"])
        risk["stroke"] = f"an ischemic stroke in {d.year}, {_ago(d, index)}"
    if factors["anticholinergic"]:
        d = _date(rng, start, index - dt.timedelta(days=500))
        drug, indication = rng.choice(ANTICHOLINERGIC)
        event(d, f"Dx {indication}; started {drug}.")
        event(_date(rng, d + dt.timedelta(days=400), index - dt.timedelta(days=30)),
              f"Medication review: continues {drug}.")
        meds.append(drug)
        risk["anticholinergic"] = f"{drug.split()[0]}, a strongly anticholinergic drug, taken since {d.year}"
    if factors["apoe4"]:
        d = dx_date()
        genotype = rng.choice(["e3/e4", "e3/e4", "e2/e4"])
        event(d, f"Research study APOE genotyping: {genotype}.")
        risk["apoe4"] = f"APOE {genotype} on genotyping (one e4 allele)"
    elif rng.random() < 0.15:
        genotype = rng.choice(["e3/e3", "e2/e3"])
        event(dx_date(), f"Research study APOE genotyping: {genotype}.")
        reassuring.append(f"APOE {genotype} (no e4 allele)")

    # --- cognition
    if factors["mci"]:
        d = _date(rng, recent, index - dt.timedelta(days=30))
        moca = rng.randint(19, 24)
        first = d - dt.timedelta(days=rng.randint(60, 200))
        event(first, f"{rng.choice(VISIT_KINDS[:2])}: family notes {pronoun} repeats questions and misses bills. "
                     f"MoCA {moca + rng.randint(0, 2)}/30. Referred to memory clinic.")
        event(d, f"Memory clinic: MoCA {moca}/30; neuropsychological testing shows impaired delayed recall, "
                 f"independent in daily activities. Dx mild cognitive impairment (G31.84).")
        # Independence in daily activities is what makes it MCI, not dementia: context, not a reassurance.
        risk["mci"] = f"mild cognitive impairment diagnosed {d.year} (MoCA {moca}/30), {_ago(d, index)}, still " \
                      f"independent in daily activities"
    elif factors["subjective_cognitive_decline"]:
        d = _date(rng, recent, index - dt.timedelta(days=30))
        moca = rng.randint(26, 29)
        event(d, f"{rng.choice(VISIT_KINDS)}: reports {pronoun} is more forgetful than a few years ago "
                 f"({rng.choice(['misplaces keys', 'forgets names', 'loses track of conversations'])}). "
                 f"MoCA {moca}/30, normal. Subjective cognitive decline; recheck in one year.")
        risk["subjective_cognitive_decline"] = f"self-reported memory decline in {d.year} despite a normal " \
                                               f"MoCA ({moca}/30)"
    elif rng.random() < 0.5:
        d = _date(rng, recent, index - dt.timedelta(days=30))
        screen = rng.choice(["Mini-Cog 5/5", "MoCA 28/30", "MoCA 29/30"])
        event(d, f"Annual wellness visit: cognitive screen {screen}, no concerns raised.")
        reassuring.append(f"a normal cognitive screen in {d.year} ({screen})")
    else:
        reassuring.append("no memory complaints recorded")

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
    lines = [f"Index date: {index.isoformat()}. Age at index: {age}. Sex: {sex}.",
             f"Education: {education}.", f"Family history: {family}.", f"Social history: {'; '.join(social)}.",
             "Timeline:"]
    lines += [f"- {when.isoformat()}: {text}" for when, text in events]
    lines.append("Medications at index: " + (", ".join(dict.fromkeys(meds)) if meds else "none") + ".")
    return "\n".join(lines), {"index_date": index.isoformat(), "risk": risk, "reassuring": reassuring}


# ------------------------------------------------------------------------------------------------ rationales
# A rationale is what a clinician (or an LLM) would write from the history, never from the risk model above: it
# cannot know the patient's true risk, only what the record says. The writer (``_writer``) reads the record with a
# common bedside rule of thumb that is deliberately NOT the generator's model: it counts the risk factors it notices
# (cognitive findings, APOE e4, family history and stroke weigh more), does not weigh age, misses factors that are
# easily overlooked in practice, and its overall impression varies by a point either way, as two clinicians' do.
# Its notes are drawn from a random stream of their own, seeded by the record's text, so the same record always
# gets the same notes and the patients drawn after it never change.
WRITER_POINTS = {"mci": 3, "apoe4": 2, "family_history": 2, "stroke": 2}  # every other factor noticed: 1
# Factors the writer may miss (each with WRITER_MISS): easy to overlook in a busy record, and under-recognised as
# dementia risks in practice (hearing, schooling, isolation, inactivity, anticholinergic burden, hypertension).
OVERLOOKED = {"hearing_loss", "low_education", "social_isolation", "physical_inactivity", "anticholinergic",
              "hypertension", "smoking", "diabetes", "depression", "tbi"}
WRITER_MISS = 0.5
MAJOR = ("mci", "apoe4", "subjective_cognitive_decline")  # named first: the cognitive and genetic findings
# Factors the writer checks for and names as absent when the record lacks them.
ABSENT_NAMES = {"stroke": "stroke", "diabetes": "diabetes",
                "depression": "depression", "hearing_loss": "untreated hearing loss", "apoe4": "known APOE e4"}
# What a discordant "yes" names as the evidence it rests on (only factors the writer named).
FACTOR_NAMES = {
    "mci": "the mild cognitive impairment", "apoe4": "the APOE e4 allele",
    "subjective_cognitive_decline": "the self-reported memory decline", "stroke": "the prior stroke",
    "hearing_loss": "the untreated hearing loss", "depression": "the depression", "tbi": "the head injury",
    "hypertension": "the hypertension", "smoking": "current smoking", "social_isolation": "the social isolation",
    "low_education": "the limited schooling", "diabetes": "the diabetes",
    "family_history": "the family history of dementia", "anticholinergic": "the long-term anticholinergic drug",
    "physical_inactivity": "the physical inactivity",
}
# The writer's overall impression from its points (after its judgment noise): minimum points, band, phrases.
PROFILES = [(5, "high", "a high-risk profile, well above the average older adult's", "this high-risk profile"),
            (3, "raised", "a risk profile somewhat above the average older adult's",
             "this somewhat above-average profile"),
            (1, "lowered", "a risk profile somewhat below the average older adult's",
             "this somewhat below-average profile"),
            (None, "low", "a low-risk profile, well below the average older adult's", "this low-risk profile")]
# A discordant "no" cites the reassurance that bears most on cognition first.
REASSURANCE_ORDER = ("a normal cognitive screen", "APOE", "no memory complaints", "hearing loss corrected",
                     "regular exercise", "an active social life")


def _join(items: list[str], last: str = "and") -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {last} " + items[-1]


def _record_text(age: int, details: dict) -> str:
    """What a writer's own random stream is seeded with: the record as the rationale reads it."""
    return repr((age, details["index_date"], sorted(details["risk"].items()), details["reassuring"]))


def _writer(age: int, factors: dict[str, bool], details: dict) -> tuple[list[str], int]:
    """What the writer notices (the factors present it names, strongest-looking first) and its points, from the
    record alone: its own random stream is seeded by the record's text (never the outcome, never the model)."""
    rng = random.Random("writer|" + _record_text(age, details))
    noticed = [f for f in FACTORS if factors[f] and not (f in OVERLOOKED and rng.random() < WRITER_MISS)]
    noticed.sort(key=lambda f: (f not in MAJOR, -WRITER_POINTS.get(f, 1)))
    points = sum(WRITER_POINTS.get(f, 1) for f in noticed) + rng.choice((-1, 0, 0, 1))
    return noticed, points


def profile_of(points: int) -> tuple[str, str, str]:
    """(band, sentence phrase, short phrase) of the writer's overall impression."""
    return next((band, phrase, short) for cut, band, phrase, short in PROFILES if cut is None or points >= cut)


def _evidence(age: int, factors: dict[str, bool], details: dict, noticed: list[str], age_note: str = "",
              older: int = 78) -> tuple[list[str], list[str], list[str]]:
    """The record's evidence as the writer reads it, the same whatever the outcome: sentences, then what a
    discordant rationale may cite for "yes" (factors named, age from ``older``) and for "no" (young age,
    reassurance, absent factors). ``age_note``: how the writer weighs the age (the heuristic writer does not)."""
    major = [details["risk"][f] for f in noticed if f in MAJOR]
    lesser = [details["risk"][f] for f in noticed if f not in MAJOR]
    genotyped = any(r.startswith("APOE") for r in details["reassuring"])
    absent = [name for f, name in ABSENT_NAMES.items() if not factors[f] and not (f == "apoe4" and genotyped)]
    absent_phrase = ["no " + _join(absent, last="or") + " documented"] if absent else []
    favour = list(details["reassuring"]) + absent_phrase
    sentences = [f"At the index date ({details['index_date']}) the patient is {age}{age_note}."]
    if major:
        sentences.append("Major risk factors in the record: " + "; ".join(major) + ".")
    if lesser:
        sentences.append("Other risk factors in the record: " + "; ".join(lesser) + ".")
    if not noticed:
        sentences.append("No dementia risk factor stands out in the record.")
    sentences.append(("In the patient's favour: " + "; ".join(favour) + ".") if favour
                     else "Nothing in the record counts in the patient's favour.")
    for_yes = (["older age"] if age >= older else []) + [FACTOR_NAMES[f] for f in noticed]
    ranked = sorted(details["reassuring"], key=lambda r: next(
        (i for i, start in enumerate(REASSURANCE_ORDER) if r.startswith(start)), len(REASSURANCE_ORDER)))
    for_no = (["a relatively young age"] if age < 70 else []) + ranked + (
        ["the absence of " + _join(absent, last="or")] if absent else [])
    return sentences, for_yes, for_no


def _conclusion(variant: int, label: str, age: int, band: str, short: str, for_yes: list[str],
                for_no: list[str]) -> str:
    """The last sentence: reaches ``label`` through the evidence that supports it, as strongly as the writer's
    impression does (``band``: concordant when it is on the label's side)."""
    direction = "towards" if label == "yes" else "away from"
    if (label == "yes") == (band in ("high", "raised")):  # the writer's reading supports the outcome
        opener = ("Taken together", "On balance")[variant]
        if band in ("high", "low"):
            return f"{opener}, the evidence points {direction} a dementia diagnosis within five years."
        return f"{opener}, the evidence leans {direction} a dementia diagnosis within five years, though not strongly."
    # Discordant: the outcome goes against the writer's reading. Say so, and cite only evidence that is there.
    if label == "yes":
        cited = for_yes[:2]
        if not cited:
            return (f"Nothing in the record raises the risk above the baseline for age {age}, so a dementia diagnosis "
                    "within five years is not predictable from this record.")
        verb = "leaves" if len(cited) == 1 else "leave"
        return (f"Despite {short}, {_join(cited)} {verb} a residual risk, so a dementia diagnosis within five years "
                f"remains possible, " + ("though the record as a whole points away from it",
                                       "even though the record as a whole does not predict it")[variant] + ".")
    share = "some" if band == "high" else "many"  # the writer's impression, not the model's risk
    cited = for_no[:2]
    if not cited:
        return ("Nothing in the record counts in the patient's favour, so remaining free of dementia for five years "
                f"is not predictable from this record, though {share} patients with such a record do.")
    verb = "counts" if len(cited) == 1 else "count"
    return (f"Despite {short}, {_join(cited)} {verb} in the patient's favour, and {share} patients with such a "
            f"record remain free of dementia for five years, " + ("though the record as a whole points towards a "
                                                                 "diagnosis", "even though the record as a whole "
                                                                 "does not predict that")[variant] + ".")


def rationale_parts(age: int, factors: dict[str, bool], details: dict) -> tuple[list[str], str, str, list, list]:
    """The label-independent part: (evidence sentences, band, profile sentence, for_yes, for_no)."""
    noticed, points = _writer(age, factors, details)
    band, phrase, short = profile_of(points)
    sentences, for_yes, for_no = _evidence(age, factors, details, noticed)
    return [*sentences, f"Overall this is {phrase}."], band, short, for_yes, for_no


def render_rationale(rng: random.Random, age: int, factors: dict[str, bool], details: dict, label: str) -> str:
    """The record's evidence as the writer reads it (the same text whatever the outcome), its overall impression,
    then a conclusion that reaches ``label`` only through evidence the record holds (module docstring)."""
    sentences, band, short, for_yes, for_no = rationale_parts(age, factors, details)
    variant = rng.choice((0, 1))  # one draw, as the generator always made, so the patients stay the same
    return " ".join([*sentences, _conclusion(variant, label, age, band, short, for_yes, for_no)])


def rationale_stance(age: int, factors: dict[str, bool], details: dict, label: str) -> str:
    """"concordant" when the writer's impression is on the label's side, else "discordant"."""
    band = rationale_parts(age, factors, details)[1]
    return "concordant" if (label == "yes") == (band in ("high", "raised")) else "discordant"


# The clinician writer (``rationale_clinician``): the record read as a careful clinician reads it. Age is weighed in
# the usual five-year bands (medical knowledge, not the model: incidence climbs steeply with age), every documented
# factor is named, nothing is missed and there is no judgment noise. Its points are a bedside weighting, not the
# model's coefficients: MCI 3, APOE e4 2, every other factor 1, age 0-4; the typical older adult in primary care
# scores about 5 (the population's median), so 6 or more reads as above average.
CLINICIAN_POINTS = {"mci": 3, "apoe4": 2}  # every other factor documented: 1
CLINICIAN_AGE = [(85, 4, ": at 85 or over, age alone makes dementia common"),
                 (80, 3, ": in the early 80s, age is itself a major risk factor"),
                 (75, 2, ": in the late 70s, age clearly adds to the risk"),
                 (70, 1, ": in the early 70s, age adds somewhat to the risk"),
                 (65, 0, ": in the late 60s, still young for dementia")]
CLINICIAN_CUTS = {"high": 8, "raised": 6, "lowered": 4}  # the bands of PROFILES, on the clinician's points


def clinician_parts(age: int, factors: dict[str, bool], details: dict) -> tuple[list[str], str, str, list, list]:
    """The clinician's label-independent part: (evidence sentences, band, profile sentence, for_yes, for_no)."""
    _, age_points, note = next(band for band in CLINICIAN_AGE if age >= band[0])
    named = sorted((f for f in FACTORS if factors[f]), key=lambda f: (f not in MAJOR, -CLINICIAN_POINTS.get(f, 1)))
    points = age_points + sum(CLINICIAN_POINTS.get(f, 1) for f in named)
    band, phrase, short = next((band, phrase, short) for _, band, phrase, short in PROFILES
                               if band == "low" or points >= CLINICIAN_CUTS[band])
    sentences, for_yes, for_no = _evidence(age, factors, details, named, note, older=75)
    return [*sentences, f"Overall this is {phrase}."], band, short, for_yes, for_no


def render_clinician_rationale(age: int, factors: dict[str, bool], details: dict, label: str) -> str:
    """The clinician's rationale: the same structure and conclusion rules as ``render_rationale``, its phrasing
    variant from a stream of its own (seeded by the record), so rendering it draws nothing from the patients'."""
    sentences, band, short, for_yes, for_no = clinician_parts(age, factors, details)
    variant = random.Random("clinician|" + _record_text(age, details)).choice((0, 1))
    return " ".join([*sentences, _conclusion(variant, label, age, band, short, for_yes, for_no)])


# ------------------------------------------------------------------------------------------------- the splits
def _status(factors: dict[str, bool]) -> str:
    return "mci" if factors["mci"] else "subjective_decline" if factors["subjective_cognitive_decline"] else "none"


def _row(rng: random.Random, age: int, factors: dict[str, bool], label: str) -> dict:
    sex = rng.choice(["female", "male"])
    history, details = render_history(rng, age, sex, factors)
    logit = risk_logit(age, factors)
    return {"history": history, "label": label, "age": age, "sex": sex, "index_date": details["index_date"],
            "risk_factors": factors, "probability": round(risk_probability(age, factors), 4),
            "logit": round(logit, 4), "rationale": render_rationale(rng, age, factors, details, label),
            "rationale_stance": rationale_stance(age, factors, details, label),
            "rationale_clinician": render_clinician_rationale(age, factors, details, label),
            "difficulty": difficulty_of(logit, label), "category": _status(factors)}


def _draw(rng: random.Random) -> tuple[int, dict[str, bool], str]:
    age, factors = sample_patient(rng)
    label = "yes" if rng.random() < risk_probability(age, factors) else "no"
    return age, factors, label


def generate(seed: int = SEED) -> dict[str, list[dict]]:
    """The balanced (case-control) splits: outcomes drawn from the model until each label fills half."""
    return grown_splits(random.Random(seed), SIZES, FIRST_TEST_DRAW, "adrd", _draw_balanced)


def _draw_balanced(rng: random.Random, size: int, seen: set[str]) -> list[dict]:
    """``size`` new patients, half of each outcome, in shuffled order."""
    need = {label: size // 2 for label in LABELS}
    rows = []
    while any(need.values()):
        age, factors, label = _draw(rng)
        if not need[label]:
            continue
        row = _row(rng, age, factors, label)
        if row["history"] in seen:
            continue
        seen.add(row["history"])
        need[label] -= 1
        rows.append(row)
    rng.shuffle(rows)
    return rows


def generate_prevalence(seed: int = SEED, size: int = PREVALENCE_SIZE) -> list[dict]:
    """A population sample at the natural prevalence (its own random stream, so the balanced splits do not
    change with its size)."""
    rng = random.Random(f"{seed}-prevalence")
    rows = []
    for i in range(size):
        row = _row(rng, *_draw(rng))
        row["id"] = f"adrd-p{i + 1:04d}"
        rows.append(row)
    return rows


if __name__ == "__main__":
    write_jsonl_splits({**generate(SEED), "test_prevalence": generate_prevalence(SEED)},
                       Path(__file__).resolve().parent / "data")
