"""MindMem-ReAd's ad and scorer: the ad's texts, the trained predictor that scores a candidate, and
the features a candidate is scored on.

`source_ad` reads the ad (given, or a dataset video's); `load_scorer` finds the trained model
(memo.submission.models); `set_up_scorer` checks it can read a rewritten text and builds the
one-row features every candidate starts from (`base_features`), then `AdScorer.score` replaces one
text field with each candidate, embeds it as `memo features` does (`build_candidates_features`)
and predicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from memo.errors import MemoError

if TYPE_CHECKING:
    from memo.evaluation.readvise_candidates import Candidate
    from memo.project import Project
    from memo.store import Features

# where a candidate goes: the first of these the scorer reads
CANDIDATE_FIELDS = ("description", "transcript", "captions")
# memo.features.cues: the ad's format, read from its title and description (memo.streams.CUES_STREAM)
CUES = "cues"


def source_ad(
    project: Project, title: str | None, message: str | None, video: str | None
) -> tuple[dict[str, str], str | None]:
    """The ad's texts ({title, message, description, transcript, tags}) and the split of `video`, if one was
    named."""
    ad = {"title": "", "message": "", "description": "", "transcript": "", "tags": ""}
    split = None
    if video:
        for name, sp in project.dataset.splits.items():
            if video in sp.table.index:
                split = name
                row = sp.table.loc[video]
                for k in ("title", "description", "transcript", "tags", "captions"):
                    v = row.get(k) if k in row else None
                    if v is not None and not (isinstance(v, float) and np.isnan(v)):
                        ad[k] = str(v)
                break
        if split is None:
            raise MemoError(
                f"video {video!r} is in no split of {project.dataset.root}; pass an id from the "
                "dataset (see `memo data check`) or use --title and --message."
            )
    if title:
        ad["title"] = title
    if message:
        ad["message"] = message
    if not ad["title"].strip() and not ad["message"].strip():
        raise MemoError("readvise needs an ad: pass --title and --message (or --video with a dataset id).")
    if not ad["message"]:
        ad["message"] = ad["description"][:300] or ad["title"]
    if not ad.get("description"):
        ad["description"] = ad["message"]  # with no current description, the key message is what the ad says
    return ad, split


def load_scorer(project: Project, scorer: str | None, run: str | None = None):
    """(predictor, meta) of the trained scorer: run `run`'s model, else `memo train`'s, else a run's
    (memo.submission.models)."""
    from memo.submission.models import trained_model

    found = trained_model(project, scorer, run=run)
    return found.predictor, {**found.meta, "source": found.source}


def candidate_field(streams: list[str]) -> str:
    """The text field a candidate replaces: the first of description, transcript, captions the scorer
    reads."""
    for f in CANDIDATE_FIELDS:
        if f"e5.{f}" in streams:
            return f
    if CUES in streams:  # the cues are read from the title and description, so a new description moves them
        return "description"
    text = sorted(s for s in streams if s.startswith("e5."))
    raise MemoError(
        "the scorer reads no E5 stream of a description, transcript or captions (it reads "
        f"{', '.join(sorted(streams)) or 'nothing'}), "
        "so it cannot score a rewritten text; run `memo features --extractors e5` and retrain it"
        + (f" (it only reads {', '.join(text)})" if text else "")
        + "."
    )


def check_encoder(project: Project, scorer: str, meta: dict[str, Any]) -> None:
    """Candidates are embedded with [models] e5; a scorer trained on another encoder's vectors cannot read
    them."""
    if meta.get("config", {}).get("models", {}).get("e5") not in (None, project.config.models.e5):
        raise MemoError(
            f"the {scorer} model was trained on E5 features of {meta['config']['models']['e5']!r} but "
            "[models] e5 is "
            f"{project.config.models.e5!r}; retrain it (`memo train {scorer}`) or restore the setting."
        )


def base_features(
    project: Project, est, split: str | None, video: str | None, trained_streams: list[str]
) -> tuple[Features, list[str]]:
    """One-row Features the candidates are built on, and notes on where each stream came from.

    With a video: its own row (metadata, pictures, sound, organiser features as stored). Without:
    a row of the training split with every stream missing, then the training medians for the
    metadata stream and the table's numeric columns.
    """
    from memo.features.load import load_available

    ds = project.dataset
    notes: list[str] = []
    X, load_notes = load_available(project, split or ds.train_split, est.streams)
    notes += [n for n in load_notes if any(f"stream {s} " in n for s in trained_streams)]
    # rationale streams describe the source ad, not a candidate: masked for all rows alike, so the comparison
    # is fair
    derived = [n for n in X.streams if n == "ratings" or n.startswith("rationale.")]
    for n in derived:
        X.streams[n] = type(X.streams[n])(
            np.zeros_like(X.streams[n].values), np.zeros_like(X.streams[n].mask), X.streams[n].names
        )
    if derived:
        notes.append(
            f"{', '.join(derived)} are treated as missing for the original and every candidate alike "
            "(they describe the source ad's texts)."
        )
    if split is not None:
        row = X.take([X.ids.index(video)])
        notes.append(f"everything but the rewritten text comes from video {video} ({split} split).")
        return row, notes
    from memo.store import Features, Stream

    table = X.table.iloc[[0]].copy()
    numeric = ds.labelled().numeric_columns
    for c in table.columns:
        if c in numeric:
            table[c] = pd.to_numeric(X.table[c], errors="coerce").median()
        elif c not in ("group",):
            table[c] = None
    table.index = pd.Index(["original"], name="id")
    table["group"] = "(new ad)"
    streams = {}
    for name, s in X.streams.items():
        values = np.zeros_like(s.values[:1])
        mask = np.zeros_like(s.mask[:1])
        if name.startswith("metadata") and s.present.any():  # metadata.absolute, metadata.brand
            values[0, 0] = np.median(s.values[s.present][:, 0], axis=0)  # (K,) medians of the training videos
            mask[0, 0] = True
        streams[name] = Stream(values, mask, s.names)
    kept = [
        n
        for n in streams
        if not n.startswith("metadata") and n != CUES and not n.startswith("e5.") and n not in derived
    ]
    notes.append(
        f"no --video: metadata is the {ds.train_split} split's median"
        + (f"; {', '.join(kept)} are missing for a new ad" if kept else "")
        + "."
    )
    return Features(["original"], np.array(["(new ad)"]), table, streams), notes


def build_candidates_features(
    project: Project,
    base: Features,
    ad: dict[str, str],
    texts: list[tuple[str, str]],
    fld: str,
    device: str,
) -> Features:
    """Features of each (id, text): the base row with `fld` replaced by the text, every e5 text field
    re-embedded and the cues read again."""
    from memo.features import embed_texts
    from memo.store import Features

    n = len(texts)
    ids = [i for i, _ in texts]
    X = base.take(np.zeros(n, dtype=int))  # (n,) copies of the one base row
    table = X.table.copy()
    table.index = pd.Index(ids, name="id")
    table["title"] = ad["title"]
    table[fld] = [t for _, t in texts]
    streams = dict(X.streams)
    for name in [s for s in streams if s.startswith("e5.")]:
        f = name.split(".", 1)[1]
        col = table[f] if f in table else pd.Series([""] * n)
        vals = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in col]
        s = streams[name]
        values = np.zeros((n, 1, s.dim), np.float32)
        mask = np.zeros((n, 1), bool)
        full = [k for k, v in enumerate(vals) if v.strip()]
        if full:
            values[full, 0] = embed_texts(project, [vals[k] for k in full], device=device)  # (m, D)
            mask[full, 0] = True
        streams[name] = type(s)(values, mask, s.names)
    if CUES in streams:  # read again from each candidate's own title and description
        from memo.features.cues import cue_stream

        streams[CUES] = cue_stream(table)
    return Features(ids, X.groups, table, streams)


# ----------------------------------------------------------------------------- the scorer, set up for one ad


@dataclass
class AdScorer:
    """A trained scorer set up for one ad: a candidate is the one-row `base` features with `field`
    replaced by its text, and `est` predicts its scores; `notes` say where everything else came from."""

    project: Project
    ad: dict[str, str]
    video: str | None  # the dataset video the ad comes from, if any
    est: Any
    meta: dict[str, Any]
    name: str  # the predictor's name
    targets: list[str]  # empty: every column the predictor returns
    field: str
    base: Features
    notes: list[str]
    device: str

    def score(self, cands: list[Candidate]) -> None:
        """Fill each candidate's predicted score per target."""
        texts = [(c.id, c.text) for c in cands]
        X = build_candidates_features(self.project, self.base, self.ad, texts, self.field, self.device)
        pred = self.est.predict(X)
        for c in cands:
            c.scores = {t: float(pred.loc[c.id, t]) for t in self.targets or pred.columns}


def set_up_scorer(
    project: Project,
    est,
    meta: dict[str, Any],
    scorer: str | None,
    ad: dict[str, str],
    split: str | None,
    video: str | None,
    device: str,
) -> AdScorer:
    """The model `load_scorer` found, checked that it can score a rewritten text and set up for `ad`
    (from `video` of `split`, or a new ad); its notes name the scorer and the field candidates replace."""
    name = meta.get("predictor") or scorer
    targets = list(meta.get("targets") or [])
    fld = candidate_field(list(meta.get("streams") or est.streams))
    check_encoder(project, name, meta)
    base, notes = base_features(project, est, split, video, list(meta.get("streams") or []))
    reads = "E5 of it" if f"e5.{fld}" in (meta.get("streams") or est.streams) else "the cues read from it"
    notes.insert(
        0, f"candidates replace the {fld} (the scorer reads {reads}); the title stays {ad['title']!r}."
    )
    notes.insert(0, f"the scorer is the {name} model of {meta['source']}.")
    return AdScorer(project, ad, video, est, meta, name, targets, fld, base, notes, device)
