#!/usr/bin/env python3
"""Check the face score calibration (`matcher/src/face/fusion.rs`) against measured impostor scores.

The calibration models impostor SFace cosines as normal(IMPOSTOR_MEAN, IMPOSTOR_SD). This script measures impostor
populations and reports, for each, the worst ratio `empirical FMR / model FMR` over its upper tail (scores with an
empirical FMR up to 5%): a ratio at or below 1 means the model is conservative there (it never claims a score is
rarer among impostors than measured).

Populations (from one `hotspot-matcher-eval faces --identities DIR --embeddings CSV` run over a folder that holds one
sub-folder per photo *set*: the sub-folder name is the set):
- `cross`: every pair of photos from different sets (different people by construction);
- `bbt`: faceapi-bbt photos of different people (set `bbt`, files named `<person>_<n>.png`);
- `deepface`: the `No` pairs of deepface-pairs/master.csv (set `deepface`).

Usage (numpy only; see docs/face.md for the whole sequence):
    python3 scripts/face_calibration.py EMBEDDINGS.csv ../shared/data/faces/deepface-pairs/master.csv [MEAN SD]
"""

import csv
import sys
from math import erfc, sqrt

import numpy as np

MEAN, SD = 0.13, 0.10


def model_fmr(score, mean, sd):
    return 0.5 * erfc((score - mean) / sd / sqrt(2))


def main():
    embeddings_csv, master_csv = sys.argv[1], sys.argv[2]
    mean, sd = (float(sys.argv[3]), float(sys.argv[4])) if len(sys.argv) > 4 else (MEAN, SD)
    rows = list(csv.reader(open(embeddings_csv)))[1:]
    files = [r[0] for r in rows]
    vectors = np.array([[float(x) for x in r[5:]] for r in rows])
    scores = vectors @ vectors.T
    sets = np.array([f.split("/")[0] for f in files])
    iu = np.triu_indices(len(files), 1)
    populations = {"cross": scores[iu][sets[iu[0]] != sets[iu[1]]]}
    bbt = [i for i, f in enumerate(files) if f.startswith("bbt/")]
    person = lambda f: f.split("/")[1].split("_")[0]
    populations["bbt"] = np.array(
        [scores[a, b] for i, a in enumerate(bbt) for b in bbt[i + 1 :] if person(files[a]) != person(files[b])]
    )
    index = {f.split("/")[1]: i for i, f in enumerate(files) if f.startswith("deepface/")}
    pairs = list(csv.reader(open(master_csv)))[1:]
    populations["deepface"] = np.array(
        [scores[index[a], index[b]] for a, b, d in pairs if d.strip() == "No" and a in index and b in index]
    )
    print(f"model: impostor cosine ~ normal({mean}, {sd})")
    for fmr, z in [(1e-2, 2.326), (1e-3, 3.090), (1e-4, 3.719), (1e-5, 4.265), (1e-6, 4.753)]:
        print(f"  threshold at FMR {fmr:g}: {mean + z * sd:.3f}")
    for name, values in populations.items():
        v = np.sort(values)[::-1]
        n = len(v)
        tail = [(k + 1) / n / model_fmr(v[k], mean, sd) for k in range(n) if (k + 1) / n <= 0.05]
        print(
            f"{name:9} n={n:6d} mean={v.mean():.3f} sd={v.std():.3f} max={v[0]:.3f} "
            f"worst empirical/model FMR ratio in the tail: {max(tail):.2f}"
        )


if __name__ == "__main__":
    main()
