"""MindMem-ReAd's ad and scorer: the ad's texts, the trained predictor that scores a candidate, and
the features a candidate is scored on.

`source_ad` reads the ad (given, or a dataset video's); `load_scorer` finds the trained model
(memo.submission.models); `set_up_scorer` checks it can read a rewritten text and builds the
one-row features every candidate starts from (memo.submission.ads.base_features), then
`AdScorer.score` replaces one text field with each candidate and scores it as `memo score` scores a
new ad (memo.submission.ads.ads_features: the texts embedded by the e5 extractor, the cues read
again; each candidate predicted alone), with the scorer's explanation where it has one
(memo.predictors' protocol), which says why a rewrite scores higher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from memo.data import TEXT_FIELDS
from memo.errors import MemoError
from memo.submission.ads import base_features

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
        """Fill each candidate's predicted score per target and, where the scorer explains itself, its
        contributions (mean over the targets, by reason in words)."""
        from memo.predictors import explains
        from memo.submission.ads import ads_features, predict_each
        from memo.submission.scoring import grouped_contributions

        X = ads_features(
            self.project.config,
            self.base,
            self.candidate_ads(cands),
            list(self.base.streams),
            self.device,
            self.project.workdir / "ads",
        )
        pred = predict_each(self.est, X)
        targets = self.targets or list(pred.columns)
        for c in cands:
            c.scores = {t: float(pred.loc[c.id, t]) for t in targets}
        if not explains(self.est):
            return
        G = grouped_contributions(self.est.explain(X))
        G = G[G["target"].isin(targets)]
        for c in cands:
            mine = G[G["id"] == c.id]
            if set(mine["target"]) == set(targets):  # every target explained: the score's own split
                c.contributions = (mine.groupby("words")["contribution"].sum() / len(targets)).to_dict()

    def candidate_ads(self, cands: list[Candidate]) -> pd.DataFrame:
        """The candidates as ads: the ad's texts with `field` replaced by each candidate's, and the channel of
        the source video (the cues ask whether the title names it)."""
        row = self.base.table.iloc[0]
        channel = row.get("channel") if "channel" in self.base.table else None
        channel = channel if isinstance(channel, str) else str(self.base.groups[0] or "")
        texts = {k: v for k, v in self.ad.items() if k in TEXT_FIELDS}
        from memo.submission.ads import validate_ads

        rows = [{**texts, self.field: c.text, "channel": channel} for c in cands]
        return validate_ads(
            pd.DataFrame(rows, index=pd.Index([c.id for c in cands], name="id")), source="the candidates"
        )


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
