"""Ads that are in no split: reading them, and their features, the one path for scoring a new ad.

    ads = read_ads("ads.csv")                        # validated: id, title, description, tags, ... video_path
    base, notes = base_features(project, est, None, None, streams)   # the one row every new ad starts from
    X = ads_features(config, base, ads, streams, device, cache=project.workdir / "ads")
    predict_each(est, X)                             # ids x targets, each ad scored alone

`memo score` (memo.submission.scoring) and MindMem-ReAd's candidates (memo.evaluation.readvise_scoring)
both go through `ads_features`. An ad starts as the `base` row: without a dataset video, the
training split's medians for the metadata streams and "missing" for everything else; a readvise
of a dataset video starts from that video's stored row. Then its texts replace the row's: each E5
text stream the model reads is computed by the e5 extractor, with the run's encoder and settings,
the cues are read from its title and description, and where the ad has a `video_path` the media
streams (vit, audio, stats) the model reads are computed by their extractors. Those features go
to a feature store of the ads' own, <cache>/ads-<hash>/features, keyed by a hash of the ads'
contents (texts, ids, video files), so they never mix with the dataset's videos of the same id
and the same file scores again from the store.

The CSV is untrusted: only the ADS_COLUMNS are accepted, ids follow the dataset's rule for ids
(memo.store.SAFE_ID: they name files in the store), and every error is one sentence naming the
row.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from memo.data import TEXT_FIELDS
from memo.errors import MemoError
from memo.store import SAFE_ID_RULE, is_safe_id, stable_hash
from memo.streams import CUES_STREAM

if TYPE_CHECKING:
    from memo.config import Config
    from memo.project import Project
    from memo.store import Features, Stream

# what an ads table may hold: an id, the dataset's text fields, a video file and the channel (the
# brand's name, read only by the "title names the brand" cue)
ADS_COLUMNS = ("id", *TEXT_FIELDS, "video_path", "channel")
MEDIA_EXTRACTORS = ("vit", "audio", "stats")  # extractors that read an ad's video file


# ----------------------------------------------------------------------------- reading and checking


def read_ads(path: str | Path) -> pd.DataFrame:
    """The ads of a CSV (columns ADS_COLUMNS; `id` optional, else the row numbers), validated
    (`validate_ads`); a relative video_path is read from the CSV's folder."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise MemoError(f"no ads file at {path}; pass a CSV with a title or description column.")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, csv.Error) as e:
        raise MemoError(f"cannot read {path} as a CSV ({type(e).__name__}); save it as UTF-8 CSV.") from None
    return validate_ads(raw, base=path.parent, source=path.name)


def validate_ads(ads: pd.DataFrame, base: Path | None = None, source: str = "the ads") -> pd.DataFrame:
    """The ads as memo scores them: indexed by a safe, unique `id` (the `id` column, else an index named
    id, else row numbers 1..N), every text field as a string ("" where empty), `channel`, and
    `video_path` as an absolute path or None. One MemoError, naming the row, for what cannot be scored."""
    if not isinstance(ads, pd.DataFrame) or ads.empty:
        raise MemoError(f"{source} holds no ads; give one row per ad with a title or description.")
    table = ads.reset_index() if ads.index.name == "id" and "id" not in ads.columns else ads.copy()
    unknown = [str(c) for c in table.columns if c not in ADS_COLUMNS]
    if unknown:
        raise MemoError(
            f"{source} has the unknown column(s) {', '.join(unknown)}; the accepted columns are "
            f"{', '.join(ADS_COLUMNS)}."
        )
    ids = table["id"].map(_cell).tolist() if "id" in table else [str(k + 1) for k in range(len(table))]
    for k, i in enumerate(ids):
        if not is_safe_id(i):
            raise MemoError(
                f"row {k + 1} of {source} has the id {i!r}, which is not a plain name ({SAFE_ID_RULE}); "
                "rename it (ids name files in the feature store)."
            )
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise MemoError(f"{source} gives the id {dup[0]!r} to more than one ad; give each ad its own id.")
    out = pd.DataFrame(index=pd.Index(ids, name="id"))
    for c in (*TEXT_FIELDS, "channel"):
        out[c] = table[c].map(_cell).tolist() if c in table else ""
    for k, i in enumerate(ids):
        if not any(out.at[i, c].strip() for c in TEXT_FIELDS):
            raise MemoError(
                f"ad {i} (row {k + 1} of {source}) has no text: its {', '.join(TEXT_FIELDS)} are all empty; "
                "fill one of them or remove the row."
            )
    videos = table["video_path"] if "video_path" in table else [""] * len(ids)
    paths = [_video(v, base, i, k, source) for k, (i, v) in enumerate(zip(ids, videos))]
    out["video_path"] = pd.Series(paths, index=out.index, dtype=object)  # None where there is none
    return out


def _cell(v) -> str:
    return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v).strip()


def _video(value, base: Path | None, ad: str, row: int, source: str) -> str | None:
    value = _cell(value)
    if not value:
        return None
    path = Path(value).expanduser()
    path = path if path.is_absolute() or base is None else base / path
    if not path.is_file():
        raise MemoError(
            f"the video_path of ad {ad} (row {row + 1} of {source}), {value}, does not exist; fix the path "
            "(a relative one is read from the CSV's folder) or leave the cell empty."
        )
    return str(path.resolve())


def _has_video(v) -> bool:
    return isinstance(v, str) and bool(v)


def ads_key(ads: pd.DataFrame) -> str:
    """'ads-<hash>': the ads' own split name and store folder, from their ids, texts and video files (path,
    size, modification time), so other ads never read these ads' features."""
    files = [
        [v, Path(v).stat().st_size, Path(v).stat().st_mtime_ns] if _has_video(v) else None
        for v in ads["video_path"]
    ]
    texts = ads[[*TEXT_FIELDS, "channel"]].to_dict(orient="split")
    return f"ads-{stable_hash({'ads': texts, 'videos': files}, 16)}"


# ----------------------------------------------------------------------------- the row an ad starts from


def base_features(
    project: Project, est, split: str | None, video: str | None, trained_streams: list[str]
) -> tuple[Features, list[str]]:
    """One-row Features every ad starts from, and notes on where each stream came from.

    With a video: its own row (metadata, pictures, sound, organiser features as stored). Without:
    a row of the training split with every stream missing, then the training medians for the
    metadata stream and the table's numeric columns. Rationale streams (`rationale.*`, `ratings`)
    describe a dataset video's texts, not a new one's: they are missing either way.
    """
    from memo.features.load import load_available
    from memo.store import Features, Stream

    ds = project.dataset
    notes: list[str] = []
    X, load_notes = load_available(project, split or ds.train_split, est.streams)
    notes += [n for n in load_notes if any(f"stream {s} " in n for s in trained_streams)]
    derived = [n for n in X.streams if n == "ratings" or n.startswith("rationale.")]
    for n in derived:
        X.streams[n] = Stream(
            np.zeros_like(X.streams[n].values), np.zeros_like(X.streams[n].mask), X.streams[n].names
        )
    if derived:
        notes.append(
            f"{', '.join(derived)} are treated as missing for every ad alike (they describe a dataset "
            "video's texts)."
        )
    if split is not None:
        row = X.take([X.ids.index(video)])
        notes.append(f"everything but the rewritten text comes from video {video} ({split} split).")
        return row, notes
    table = X.table.iloc[[0]].copy()
    numeric = ds.labelled().numeric_columns
    for c in table.columns:
        if c in numeric:
            table[c] = pd.to_numeric(X.table[c], errors="coerce").median()
        elif c not in ("group",):
            table[c] = None
    table.index = pd.Index(["original"], name="id")
    table["group"] = ""
    streams = {}
    for name, s in X.streams.items():
        values, mask = np.zeros_like(s.values[:1]), np.zeros_like(s.mask[:1])
        if name.startswith("metadata") and s.present.any():  # metadata.absolute, metadata.brand
            values[0, 0] = np.median(s.values[s.present][:, 0], axis=0)  # (K,) medians of the training videos
            mask[0, 0] = True
        streams[name] = Stream(values, mask, s.names)
    kept = [
        n for n in streams if not n.startswith(("metadata", "e5.")) and n != CUES_STREAM and n not in derived
    ]
    media = [n for n in kept if n in MEDIA_EXTRACTORS]
    never = [n for n in kept if n not in MEDIA_EXTRACTORS]
    notes.append(
        f"the metadata of a new ad is the {ds.train_split} split's median"
        + (f"; {', '.join(media)} are missing unless the ad has a video_path" if media else "")
        + (f"; {', '.join(never)} are missing for a new ad" if never else "")
        + "."
    )
    return Features(["original"], np.array([""]), table, streams), notes


# ----------------------------------------------------------------------------- an ad's features


def ads_features(
    config: Config, base: Features, ads: pd.DataFrame, streams: list[str], device: str, cache: Path
) -> Features:
    """Features of each ad (validate_ads' table): the `base` row, with the ads' texts, their E5 streams
    and cues, and where an ad has a video its media streams (the module docstring). `streams` are those the
    model reads; `config` the run's (its encoder and extractors)."""
    from memo.features.cues import cue_stream
    from memo.store import Features

    n = len(ads)
    X = base.take(np.zeros(n, dtype=int))  # (n,) copies of the base row
    table = X.table.copy()
    table.index = ads.index
    for c in ads.columns:
        if c in TEXT_FIELDS or c in ("channel", "video_path"):
            table[c] = ads[c].to_numpy(object)
    table["group"] = ads["channel"].to_numpy(object)  # the cues ask whether the title names it
    out = dict(X.streams)
    computed = _extracted(config, ads, [s for s in streams if s in X.streams], device, cache)
    for name, s in computed.items():
        rows = (
            np.flatnonzero(ads["video_path"].map(_has_video).to_numpy())
            if name in MEDIA_EXTRACTORS
            else np.arange(n)
        )
        out[name] = _replace_rows(out[name], s, rows)
    if CUES_STREAM in out:
        out[CUES_STREAM] = cue_stream(table)
    return Features(list(ads.index), table["group"].astype(str).to_numpy(), table, out)


def _extracted(config: Config, ads: pd.DataFrame, streams: list[str], device: str, cache: Path) -> dict:
    """The E5 and media streams among `streams` for the ads, computed by their extractors into the ads' own
    store (<cache>/ads-<hash>/features) and loaded from it."""
    from memo.features.base import EXTRACTORS, Outcome
    from memo.features.load import load_features

    fields = [s.partition(".")[2] for s in streams if s.startswith("e5.")]
    videos = ads["video_path"].map(_has_video).any()
    media = [s for s in streams if s in MEDIA_EXTRACTORS and videos]
    wanted = [f"e5.{f}" for f in fields] + media
    if not wanted:
        return {}
    key = ads_key(ads)
    project = ads_project(config, ads, key, cache / key)
    if fields:
        project = project.with_settings(features={"text_fields": fields})
    split = project.dataset.splits[key]
    for name in (["e5"] if fields else []) + media:
        EXTRACTORS.get(name)(project, device=device).run(split, Outcome(name), progress=False)
    X = load_features(project, key, wanted)
    return {name: X.streams[name] for name in wanted}


def ads_project(config: Config, ads: pd.DataFrame, split: str, root: Path) -> Project:
    """A project over the ads alone (one split named `split`), working in `root`: the run's config, so the
    extractors key the store and compute exactly as for the dataset."""
    import copy
    import dataclasses

    from memo.data import Dataset, Split
    from memo.project import Project

    cfg = copy.copy(config)
    cfg.project = dataclasses.replace(config.project, workdir=str(root.resolve()))
    table = ads.copy()
    table["group"] = table["channel"]
    table["frames_dir"] = None
    sp = Split(split, table, list(TEXT_FIELDS), [], [])
    return Project.of(cfg, Dataset(root, "ads", {split: sp}, [], "id", split, None))


def _replace_rows(base: Stream, new: Stream, rows: np.ndarray) -> Stream:
    """`base` with `rows` taken from `new` (both N rows), padded to the longer sequence."""
    from memo.store import Stream

    t = max(base.values.shape[1], new.values.shape[1])
    values = np.zeros((len(base.values), t, base.dim), np.float32)
    mask = np.zeros((len(base.values), t), bool)
    values[:, : base.values.shape[1]], mask[:, : base.mask.shape[1]] = base.values, base.mask
    values[rows], mask[rows] = 0.0, False
    values[rows, : new.values.shape[1]] = new.values[rows]
    mask[rows, : new.mask.shape[1]] = new.mask[rows]
    return Stream(values, mask, new.names or base.names)


def predict_each(est, X: Features) -> pd.DataFrame:
    """Predictions of each ad alone, so an ad's score does not depend on the other ads it came with (a search
    that rank-averages candidates ranks among the batch it is given)."""
    return pd.concat([est.predict(X.take([i])) for i in range(len(X))])
