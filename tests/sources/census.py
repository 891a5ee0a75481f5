"""Tiny UCI Census-Income (KDD) files in the real format: 42 fields separated by ", ", no header.

Values come from the value lists of ``census-income.names``. Planted structure for MMoE's two tasks:
income over 50K is likelier with more weeks worked, capital gains, a managerial or professional
occupation, and middle age; "never married" is likely under 25 and for a child of the householder,
rare past 35. Both depend on age, so the tasks are related but not the same. Missing values (``?``)
are where the real files have them: the migration fields of about half the rows, now and then a
country of birth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TRAIN, TEST = "census-income.data", "census-income.test"
NIU = "Not in universe"
POOLS = {  # nominal fields: a few of their real values (the first is the commonest)
    "class_worker": [NIU, "Private", "Self-employed-not incorporated", "Local government", "Federal government"],
    "det_ind_code": ["0", "33", "43", "4", "42", "45"],
    "det_occ_code": ["0", "2", "26", "19", "29", "36"],
    "education": ["High school graduate", "Children", "Some college but no degree", "Bachelors degree(BA AB BS)",
                  "Masters degree(MA MS MEng MEd MSW MBA)"],
    "hs_college": [NIU, "High school", "College or university"],
    "major_ind_code": ["Not in universe or children", "Retail trade", "Manufacturing-durable goods", "Education"],
    "race": ["White", "Black", "Asian or Pacific Islander", "Other", "Amer Indian Aleut or Eskimo"],
    "hisp_origin": ["All other", "Mexican-American", "Mexican (Mexicano)", "Central or South American", "NA"],
    "sex": ["Female", "Male"],
    "union_member": [NIU, "No", "Yes"],
    "unemp_reason": [NIU, "Other job loser", "Re-entrant", "Job loser - on layoff"],
    "full_or_part_emp": ["Children or Armed Forces", "Full-time schedules", "Not in labor force", "PT for non-econ reasons usually FT"],
    "tax_filer_stat": ["Nonfiler", "Joint both under 65", "Single", "Head of household"],
    "region_prev_res": [NIU, "South", "West", "Midwest", "Northeast", "Abroad"],
    "state_prev_res": [NIU, "California", "Utah", "Florida", "North Carolina"],
    "det_hh_fam_stat": ["Householder", "Child <18 never marr not in subfamily", "Spouse of householder",
                        "Nonfamily householder", "Child 18+ never marr Not in a subfamily"],
    "mig_chg_msa": ["Nonmover", "MSA to MSA", "NonMSA to nonMSA", "Not identifiable"],
    "mig_chg_reg": ["Nonmover", "Same county", "Different county same state", "Different region"],
    "mig_move_reg": ["Nonmover", "Same county", "Different county same state", "Different state in South"],
    "mig_same": ["Not in universe under 1 year old", "Yes", "No"],
    "mig_prev_sunbelt": [NIU, "Yes", "No"],
    "fam_under_18": [NIU, "Both parents present", "Mother only present", "Father only present"],
    "country_father": ["United-States", "Mexico", "Puerto-Rico", "Italy", "Canada"],
    "country_mother": ["United-States", "Mexico", "Puerto-Rico", "Italy", "Canada"],
    "country_self": ["United-States", "Mexico", "Puerto-Rico", "Germany"],
    "citizenship": ["Native- Born in the United States", "Foreign born- Not a citizen of U S ",
                    "Foreign born- U S citizen by naturalization"],
    "own_or_self": ["0", "2", "1"],
    "vet_question": [NIU, "No", "Yes"],
    "vet_benefits": ["2", "0", "1"],
    "year": ["94", "95"],
}
OCCUPATIONS = [NIU, "Professional specialty", "Executive admin and managerial", "Other service", "Sales",
               "Adm support including clerical", "Precision production craft & repair"]
MARRIED = ["Married-civilian spouse present", "Divorced", "Widowed", "Separated", "Married-spouse absent"]
HOUSEHOLD = ["Householder", "Spouse of householder", "Child 18 or older", "Child under 18 never married",
             "Nonrelative of householder", "Other relative of householder"]
MIGRATION = ("mig_chg_msa", "mig_chg_reg", "mig_move_reg", "mig_prev_sunbelt")


def rows(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` lines of the 42 fields."""
    from components.sources.census import FIELDS

    age = rng.integers(0, 90, size=n)
    weeks = np.where(age < 16, 0, rng.choice([0, 20, 40, 52], size=n, p=[0.3, 0.1, 0.1, 0.5]))
    gains = np.where(rng.random(n) < 0.08, rng.integers(1000, 99999, size=n), 0)
    occupation = rng.choice(len(OCCUPATIONS), size=n)
    household = np.where(age < 18, 3, rng.choice(len(HOUSEHOLD), size=n))
    top = np.isin(occupation, [1, 2])
    logit = -5.5 + 3.0 * top + 2.5 * (weeks == 52) + 2.5 * (gains > 0) + 1.0 * ((age > 35) & (age < 65))
    income = rng.random(n) < 1 / (1 + np.exp(-logit))
    single_logit = np.where(age < 25, 3.0, np.where(age < 35, 0.0, -2.5)) + 1.5 * np.isin(household, [2, 3])
    never = rng.random(n) < 1 / (1 + np.exp(-single_logit))
    marital = np.where(never, "Never married", np.array(MARRIED)[rng.choice(len(MARRIED), size=n)])
    values = {
        "age": age.astype(str),
        "wage_per_hour": np.where(rng.random(n) < 0.06, rng.integers(300, 2500, size=n), 0).astype(str),
        "marital_stat": marital,
        "major_occ_code": np.array(OCCUPATIONS)[occupation],
        "capital_gains": gains.astype(str),
        "capital_losses": np.where(rng.random(n) < 0.02, rng.integers(100, 3000, size=n), 0).astype(str),
        "stock_dividends": np.where(rng.random(n) < 0.1, rng.integers(1, 20000, size=n), 0).astype(str),
        "det_hh_summ": np.array(HOUSEHOLD)[household],
        "instance_weight": np.round(rng.uniform(300, 4000, size=n), 2).astype(str),
        "num_emp": np.where(weeks > 0, rng.integers(0, 7, size=n), 0).astype(str),
        "weeks_worked": weeks.astype(str),
        "income_50k": np.where(income, "50000+.", "- 50000."),
    }
    for name, pool in POOLS.items():
        p = 1.0 / np.arange(1, len(pool) + 1)
        values[name] = np.array(pool)[rng.choice(len(pool), size=n, p=p / p.sum())]
    moved = rng.random(n) < 0.5  # the migration questions were asked in one of the two years only
    for name in MIGRATION:
        values[name] = np.where(moved, "?", values[name])
    for name in ("country_father", "country_mother", "country_self"):
        values[name] = np.where(rng.random(n) < 0.03, "?", values[name])
    return [", ".join(fields) for fields in zip(*(values[name].tolist() for name, _ in FIELDS))]


def write(raw_dir: Path, *, train_rows: int = 2000, test_rows: int = 1000, seed: int = 0) -> dict:
    """Write the training and test files into ``raw_dir``; returns the ``ingest`` overrides that read them."""
    rng = np.random.default_rng(seed)
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name, n in ((TRAIN, train_rows), (TEST, test_rows)):
        (raw_dir / name).write_text("\n".join(rows(rng, n)) + "\n")
    return {"source": "census", "raw_dir": str(raw_dir), "census": {"train_file": TRAIN, "test_file": TEST}}
