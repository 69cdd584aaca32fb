"""MindMem-ReAd (arXiv 2502.18371): rewrite an ad so that a trained predictor scores it as more memorable.

    result = readvise(project, title="Evergreen Bank", message="Save a little every day")
    result                      # DataFrame of the best candidates, ranked by predicted score
    result.attrs["original"]  # the original's predicted scores; result.attrs["json"], ["markdown"]: the files

One call, top to bottom:
1. The ad: a title and a key message (and its current description), or a dataset video id
   (`video=`) whose title, description, transcript, tags, metadata and other features are used.
2. The scorer: a trained predictor: run N's model with `run="N"` (what `memo submit --run N`
   trained), else `memo train`'s (of `scorer`, if given), else the first run that trained one
   (memo.submission.models.trained_model; the notes name which). A
   candidate is the original ad with one text field (the description, where the scorer reads
   E5 of the description, or the cues read from it) replaced, embedded with the project's E5 encoder exactly
   as
   `memo features` embeds dataset texts. Everything else the scorer reads comes from the source
   video (`video=`), or else the training split's medians (metadata) and "missing" (pictures,
   sound: a text has none); the notes say which.
3. Rounds: the writer LLM (the rationale writer: [rationale] model, else [models] llm) writes
   `candidates` scene descriptions, each leaning on one expert aspect (humor, emotion, ...: the
   aspects registry); the scorer scores them; the best two so far (with their scores) seed the
   next round's prompt. It stops after `rounds` rounds, or as soon as a round's best does not
   beat the best so far (the score stopped rising).
4. Why: the original and the returned candidates are rated 1-10 on each aspect with the
   rationale prompt and rating parser (the same as `memo rationale`); the aspects whose rating
   moved most are listed beside each candidate.
Every generation goes to the rationale log (stage "readvise"), which is also the cache: the same
call again reuses the texts and costs only the scoring.

What the numbers mean: a predicted score is the model's estimate; the improvement is what the
model predicts, not measured human recall. The output says so in a sentence every time.

Where it lives: this module is the call, top to bottom; memo.evaluation.readvise_scoring holds the
ad and the scorer (steps 1 and 2), memo.evaluation.readvise_candidates the writer, the rounds and
the ratings (3 and 4), memo.evaluation.readvise_output the table and the two files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from memo.errors import MemoError
from memo.evaluation.readvise_candidates import (
    MAX_WORDS,
    Candidate,
    Generator,
    rate,
    write_rounds,
    writer_notes,
)
from memo.evaluation.readvise_output import readvise_record, result_attrs, result_frame, write_report
from memo.evaluation.readvise_scoring import load_scorer, set_up_scorer, source_ad

if TYPE_CHECKING:
    from memo.project import Project


def readvise(
    project: Project,
    title: str | None = None,
    message: str | None = None,
    video: str | None = None,
    candidates: int = 4,
    rounds: int = 3,
    scorer: str | None = None,
    run: str | None = None,
    out: str | Path | None = None,
    device: str = "auto",
    temperature: float = 0.8,
    max_new_tokens: int = 2 * MAX_WORDS,
    progress: bool = True,
) -> pd.DataFrame:
    """Rewrite an ad over a few rounds; return the best `candidates` ranked by predicted score (see the module
    docstring).

    Writes <out>/readvise.json (every round, every candidate, the notes) and <out>/readvise.md;
    `out` defaults to <workdir>/readvise/<title slug>. The DataFrame's attrs hold the original,
    the notes, the honest-framing sentence and the two paths.
    """
    from memo.data import slug
    from memo.rationales.aspects import resolve_aspects

    if candidates < 1 or rounds < 1:
        raise MemoError(
            f"readvise needs --candidates >= 1 and --rounds >= 1 (got {candidates} and {rounds})."
        )
    ad, split = source_ad(project, title, message, video)
    est, meta = load_scorer(project, scorer, run)
    scoring = set_up_scorer(project, est, meta, scorer, ad, split, video, device)
    targets, fld = scoring.targets, scoring.field
    aspects = resolve_aspects(project.config.rationale.aspects, project.config)
    notes = scoring.notes + writer_notes(project)

    gen = Generator(project, device, video_key=f"readvise:{video or slug(ad['title'] or ad['message'])[:60]}")
    original = Candidate("original", 0, "", ad[fld] if ad.get(fld) else ad["description"])
    scoring.score([original])
    params = {
        "max_new_tokens": int(max_new_tokens),
        "temperature": temperature,
        "top_p": 0.95 if temperature > 0 else 1.0,
    }
    pool, history, stop_reason = write_rounds(
        gen,
        scoring.score,
        ad,
        aspects,
        targets,
        original.score,
        candidates,
        rounds,
        params,
        project.seed,
        progress,
    )

    ranked = sorted(pool, key=lambda c: (-c.score, c.round, c.id))
    top = ranked[:candidates]
    rate(gen, project, aspects, [original, *top], ad["title"])
    df = result_frame(original, top, targets)
    out = (
        Path(out) if out else project.workdir / "readvise" / (slug(ad["title"] or ad["message"])[:60] or "ad")
    )
    report = readvise_record(
        scoring, gen, aspects, rounds, candidates, history, stop_reason, notes, original, ranked
    )
    write_report(out, report)
    df.attrs.update(result_attrs(report, out))
    return df
