"""Generate fastlogit's built-in diabetes data set (fastlogit/data/diabetes.csv).

Synthetic, seeded and reproducible: run ``python scripts/make_diabetes_data.py``
from the repository root and the same file comes out byte for byte.  No real
patient is in it.  The numbers are chosen to look like an adult screening
population (Pima-style data sets have similar ranges):

* age (years): 21-81, skewed young (a gamma shape shifted to 21);
* BMI (kg/m^2): normal around 31 with SD 6.5, clipped to 18-55, drifting up
  slightly with age;
* fasting/2-h plasma glucose (mg/dL): normal around 112 with SD 28, rising with
  age and BMI, clipped to 60-200 (the textbook range);
* diabetic (0/1): drawn from a logistic model in all three, steepest in glucose
  (0.045 per mg/dL, close to the textbook's W = 0.042) and 50/50 at
  139 mg/dL for a patient of BMI 31 and age 40.  Glucose rises with BMI and
  age, so a glucose-only model absorbs part of their effect and puts its
  boundary a few mg/dL lower: fitted to this file it lands at about 135 mg/dL,
  next to the textbook's 134.8 mg/dL.

Columns: glucose, bmi, age, diabetic.  400 rows.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

SEED = 20240611
ROWS = 400
OUT = Path(__file__).resolve().parent.parent / "fastlogit" / "data" / "diabetes.csv"

# Logistic model of P(diabetic | glucose, bmi, age): slopes per unit and the
# point (139 mg/dL, BMI 31, 40 years) where the odds are even.
SLOPE_GLUCOSE = 0.045   # per mg/dL
SLOPE_BMI = 0.06        # per kg/m^2
SLOPE_AGE = 0.03        # per year
CENTRE = (139.0, 31.0, 40.0)


def make(rows: int = ROWS, seed: int = SEED) -> np.ndarray:
    """(rows, 4) array: glucose, bmi, age, diabetic."""
    rng = np.random.default_rng(seed)
    age = np.clip(21 + rng.gamma(shape=2.0, scale=9.5, size=rows), 21, 81).round()
    bmi = np.clip(rng.normal(31.0 + 0.05 * (age - 40), 6.5), 18.0, 55.0).round(1)
    glucose = np.clip(
        rng.normal(112.0 + 0.35 * (age - 40) + 0.6 * (bmi - 31), 28.0), 60.0, 200.0
    ).round()
    z = (SLOPE_GLUCOSE * (glucose - CENTRE[0]) + SLOPE_BMI * (bmi - CENTRE[1])
         + SLOPE_AGE * (age - CENTRE[2]))
    diabetic = (rng.random(rows) < 1.0 / (1.0 + np.exp(-z))).astype(np.int64)
    return np.column_stack([glucose, bmi, age, diabetic])


def write(data: np.ndarray, path: Path) -> None:
    lines = ["glucose,bmi,age,diabetic"]
    lines += [f"{g:.0f},{m:.1f},{a:.0f},{d:.0f}" for g, m, a, d in data]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args()
    data = make()
    write(data, args.output)
    print(f"wrote {len(data)} rows to {args.output} "
          f"({int(data[:, 3].sum())} diabetic, glucose {data[:, 0].min():.0f}-{data[:, 0].max():.0f} mg/dL)")


if __name__ == "__main__":
    main()
