"""The synthetic MediaEval 2021 release, in its Memento10k-style layout: scores and five captions per
video, no video files, with a planted signal (see write_sample_mediaeval2021). Deterministic for a
seed, offline, instant.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from memo.errors import MemoError
from memo.samplekit.synthetic import MARKER, prepare_root, seeded_rng, sigmoid
from memo.samplekit.texts import capitalise

__all__ = ["M21_SCORE_COLUMNS", "M21_CAPTION_COLUMNS", "write_sample_mediaeval2021"]

M21_SCORE_COLUMNS = [
    "video_id",
    "video_url",
    "annotations_short_term",
    "scores_raw_short_term",
    "scores_normalized_short_term",
    "decay_alpha",
]
M21_CAPTION_COLUMNS = ["video_id"] + [f"description_{k}" for k in range(5)]
# Memento10k's memorable content is people, faces and animals doing things; scenery is forgettable.
M21_HIGH = [
    ("a woman", "laughing"),
    ("a man", "dancing"),
    ("a child", "waving at the camera"),
    ("a dog", "jumping"),
    ("a cat", "playing"),
    ("a clown", "juggling"),
    ("a girl", "singing"),
    ("a baby", "giggling"),
]
M21_LOW = [
    ("a landscape", "under a cloudy sky"),
    ("trees", "swaying in the wind"),
    ("a road", "with distant traffic"),
    ("a field", "at dusk"),
    ("calm water", "reflecting the sky"),
    ("clouds", "drifting over hills"),
]
M21_HIGH_WORDS = sorted({w for s, a in M21_HIGH for w in (s + " " + a).split()} - {"a", "at", "the"})
M21_PLACES = ["", " in a kitchen", " on a street", " in a park", " in a living room", " outdoors"]
M21_FRAMES = ["{S} is {a}{pl}.", "{S} {a} is shown{pl}.", "We see {s} {a}{pl}.", "There is {s} {a}{pl}."]


def write_sample_mediaeval2021(
    root: str | Path, n_train: int = 60, n_dev: int = 20, n_test: int = 20, seed: int = 0
) -> Path:
    """Write a Memento10k-style MediaEval 2021 release under `root` and return `root`.

    training_set/train_scores.csv, training_set/train_text_descriptions.csv (wide, UTF-8 BOM),
    dev_set/dev_scores.csv, dev_set/dev_text_descriptions.csv, test_set/test_text_descriptions.csv
    (no scores), and test_set_GT.csv at the root (not in the real release). One latent z ~ N(0,1)
    per video: each of its five captions describes people/animals in action (memorable) with
    probability sigmoid(1.8 z), else scenery; scores_raw = Binomial(n, sigmoid(1.4 + 0.9 z + noise)) / n
    with n about 90 annotations, as in Memento10k.
    """
    if min(n_train, n_dev, n_test) < 0 or n_train + n_dev < 1:
        raise MemoError(
            "write_sample_mediaeval2021 needs non-negative split sizes and at least one labelled video."
        )
    root = Path(root).expanduser()
    prepare_root(root, ["training_set", "dev_set", "test_set", "test_set_GT.csv", "README.txt"])
    scores, caps = _draw_m21(seeded_rng(seed, 10), n_train + n_dev + n_test)
    _write_m21_splits(root, scores, caps, n_train, n_dev)
    (root / "README.txt").write_text(_m21_readme(seed, n_train, n_dev, n_test), encoding="utf-8")
    return root


def _draw_m21(rng, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The score table (M21_SCORE_COLUMNS) and the caption table (M21_CAPTION_COLUMNS) of n videos.

    All come from one generator in a fixed order: reordering these lines changes the data set of a seed.
    """
    video_id = np.sort(rng.choice(np.arange(1, 10044), size=n, replace=False))
    video_id = rng.permutation(video_id)
    z = rng.standard_normal(n)
    ann = np.clip(np.round(rng.normal(90.6, 1.9, n)), 77, 103).astype(int)
    raw = rng.binomial(ann, sigmoid(1.4 + 0.9 * z + rng.normal(0, 0.3, n))) / ann
    # the official score: raw with a small decay correction
    normalized = np.clip(raw + rng.normal(0, 0.008, n), 0, 1)
    alpha = -0.0016 + 0.0003 * z + rng.normal(0, 0.001, n)
    captions, actions = _m21_captions(rng, z)
    scores = pd.DataFrame(
        {
            "video_id": video_id,
            "video_url": [
                f"https://example.org/memento-synthetic/{act}/{vid}.mp4"
                for act, vid in zip(actions, video_id)
            ],
            "annotations_short_term": ann,
            "scores_raw_short_term": raw,
            "scores_normalized_short_term": normalized,
            "decay_alpha": alpha,
        }
    )
    caps = pd.DataFrame(captions, columns=M21_CAPTION_COLUMNS[1:])
    caps.insert(0, "video_id", video_id)
    return scores, caps


def _m21_captions(rng, z) -> tuple[list[list[str]], list[str]]:
    """Five captions per video, each of people or animals in action (memorable) with probability
    sigmoid(1.8 z), else of scenery; and the action folder of each video's URL."""
    pick = lambda xs: xs[rng.integers(len(xs))]  # noqa: E731
    captions, actions = [], []
    for i in range(len(z)):
        high = [rng.random() < 1.0 / (1.0 + math.exp(-1.8 * z[i])) for _ in range(5)]
        row = []
        for h in high:
            subject, action = pick(M21_HIGH if h else M21_LOW)
            row.append(
                pick(M21_FRAMES).format(S=capitalise(subject), s=subject, a=action, pl=pick(M21_PLACES))
            )
        captions.append(row)
        # URL folder, like actions3/<label>/
        actions.append(pick(M21_HIGH if sum(high) >= 3 else M21_LOW)[0].split()[-1])
    return captions, actions


def _write_m21_splits(root: Path, scores: pd.DataFrame, caps: pd.DataFrame, n_train: int, n_dev: int) -> None:
    """Each split's folder (the test split without scores) and the test scores at the root."""
    n = len(scores)
    bounds = {"train": (0, n_train), "dev": (n_train, n_train + n_dev), "test": (n_train + n_dev, n)}
    for name, folder in (("train", "training_set"), ("dev", "dev_set"), ("test", "test_set")):
        lo, hi = bounds[name]
        if hi <= lo:
            continue
        (root / folder).mkdir(parents=True, exist_ok=True)
        if name != "test":
            scores.iloc[lo:hi].to_csv(root / folder / f"{name}_scores.csv", index=False)
        caps.iloc[lo:hi].to_csv(
            root / folder / f"{name}_text_descriptions.csv", index=False, encoding="utf-8-sig"
        )
    if n > n_train + n_dev:
        test_gt = scores.iloc[n_train + n_dev :][
            ["video_id", "scores_raw_short_term", "scores_normalized_short_term"]
        ]
        test_gt.to_csv(root / "test_set_GT.csv", index=False)


def _m21_readme(seed: int, n_train: int, n_dev: int, n_test: int) -> str:
    return f"""{MARKER} (MediaEval 2021 / Memento10k layout): NOT real data.

Written by memo.samplekit.mediaeval2021.write_sample_mediaeval2021(seed={seed}):
{n_train} train, {n_dev} dev, {n_test} test videos.
  training_set/train_scores.csv             {",".join(M21_SCORE_COLUMNS)}
  training_set/train_text_descriptions.csv  video_id,description_0..description_4
                                            (UTF-8 with a byte-order mark)
  dev_set/dev_scores.csv, dev_set/dev_text_descriptions.csv   the same
  test_set/test_text_descriptions.csv       captions only
  test_set_GT.csv                           the test scores; the real release has no such file.
No video files. Planted signal: one latent z ~ N(0,1) per video; each caption describes people or animals in
action (memorable) with probability sigmoid(1.8 z), else scenery; scores_raw_short_term =
Binomial(n, sigmoid(1.4 + 0.9 z + noise)) / n with n about 90;
scores_normalized_short_term = raw + small noise.
"""
