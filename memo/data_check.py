"""What `memo data check` adds to the readers: every organiser feature file and video opened, and a summary.

    problems = check_dataset(ds)        # the readers' problems, then every feature file and video opened
    summarize(ds)                       # one row per split: counts, groups, targets, modalities

The readers (memo.layouts) record what they see in the tables; these checks open every file, which
is slow on a full release, so they run on `memo data check` and before `memo submit`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from memo.data import Dataset, Problem, Split


def check_feature_files(split: Split) -> list[Problem]:
    """Open every organiser feature file: unreadable, non-finite or wrongly shaped arrays are defects.

    The shape a feature type should have is the most common one among its files, with the row
    count free (organisers ship (3, D) and sometimes (2, D) per video), so only the last axis and
    the number of axes must agree.
    """
    problems = []
    for name, files in split.feature_files.items():
        shapes: dict[str, tuple] = {}
        for i, p in files.items():
            try:
                a = np.load(p, allow_pickle=False)
            except Exception as e:  # a truncated or non-npy file: any loader error means unreadable
                problems.append(
                    Problem(
                        f"{split.name}: feature file {p} cannot be read ({type(e).__name__}); re-download it."
                    )
                )
                continue
            if not np.issubdtype(a.dtype, np.number) or not np.isfinite(a).all():
                problems.append(
                    Problem(
                        f"{split.name}: feature file {p} holds non-finite or non-numeric values; "
                        "re-extract it."
                    )
                )
            shapes[i] = a.shape
        if not shapes:
            continue
        signature = pd.Series({i: (len(s), s[-1] if s else 0) for i, s in shapes.items()})
        expected = signature.mode().iloc[0]
        for i in signature.index[signature != expected]:
            want = (
                f"(T, {expected[1]})"
                if expected[0] == 2
                else f"({expected[1]},)"
                if expected[0] == 1
                else f"{expected[0]} axes"
            )
            problems.append(
                Problem(
                    f"{split.name}: feature {name} of video {i!r} has shape {shapes[i]} where the "
                    f"others are {want}; re-extract it."
                )
            )
    return problems


def check_videos(split: Split) -> list[Problem]:
    """Open every video file of a split with PyAV and decode its first frame: a truncated or
    non-video file is a defect (it would fail feature extraction much later)."""
    if "video_path" not in split.table:
        return []
    paths = {i: p for i, p in split.table["video_path"].items() if isinstance(p, str) and p}
    if not paths:
        return []
    import av

    problems = []
    for i, p in paths.items():
        try:
            with av.open(p) as c:
                if not c.streams.video:
                    raise ValueError("it has no video stream")
                next(c.decode(video=0))
        except StopIteration:
            problems.append(Problem(f"{split.name}: video file {p} of {i!r} holds no frame; re-download it."))
        # PyAV raises many kinds (InvalidDataError, EOFError, ...): any means unreadable
        except Exception as e:
            problems.append(
                Problem(
                    f"{split.name}: video file {p} of {i!r} cannot be decoded "
                    f"({type(e).__name__}); re-download it."
                )
            )
    return problems


def check_dataset(ds: Dataset, videos: bool = True) -> list[Problem]:
    """What `memo data check` reports: the readers' problems, then every organiser feature file and
    (with `videos`) every video file opened."""
    problems = list(ds.problems)
    for split in ds.splits.values():
        problems += check_feature_files(split)
        if videos:
            problems += check_videos(split)
    return problems


def summarize(ds: Dataset) -> pd.DataFrame:
    """One row per split: counts, groups, targets, and how many videos have each modality."""
    rows, count_columns = [], set()
    for s in ds.splits.values():
        row = {
            "split": s.name,
            "videos": len(s.table),
            "groups": s.table["group"].nunique(),
            "labelled": s.labelled,
        }
        for c in s.target_columns:
            v = pd.to_numeric(s.table[c], errors="coerce")
            row[c] = f"{v.mean():.3f} ± {v.std():.3f} [{v.min():.2f}, {v.max():.2f}]"
        counts = s.modality_counts()
        count_columns |= set(counts)
        row.update(counts)
        if "captions" in s.table:
            per_video = (
                s.table["captions"]
                .fillna("")
                .astype(str)
                .map(lambda c: len([x for x in c.split("\n") if x.strip()]))
            )
            row["captions per video"] = (
                f"{per_video.mean():.2f} (min {per_video.min()}, max {per_video.max()})"
            )
        rows.append(row)
    df = pd.DataFrame(rows).set_index("split")
    # a modality one split lacks altogether is a count of 0 there, not NaN
    for c in count_columns:
        df[c] = df[c].fillna(0).astype(int)
    return df.astype(object).where(df.notna(), "-")
