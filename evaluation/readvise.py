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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from memo.errors import MemoError

if TYPE_CHECKING:
    from memo.project import Project
    from memo.store import Features

HONEST = (
    "The scores are predictions of the {scorer} model trained on {dataset}; the improvement is what "
    "the model predicts, "
    "not measured human recall. Test a rewritten ad with people before trusting it."
)
CANDIDATE_FIELDS = ("description", "transcript", "captions")
# memo.features.cues: the ad's format, read from its title and description (memo.streams.CUES_STREAM)  # where
# a candidate goes, first the scorer reads
CUES = "cues"
MAX_WORDS = 80
SEEDS_SHOWN = 2  # best candidates so far shown in the next round's prompt
MIN_GAIN = 1e-6  # a round must beat the best so far by more than this to continue

SYSTEM = (
    "You are a creative director who writes video ads that people remember. You write concrete scene "
    "descriptions: what is seen and heard, in order."
)


@dataclass
class Candidate:
    """One ad text and what the scorer and the raters made of it."""

    id: str  # "original" or "r{round}c{k}"
    round: int  # 0 = the original
    focus: str  # the aspect the writer was asked to lean on ("" for the original)
    text: str
    scores: dict[str, float] = field(default_factory=dict)  # target -> predicted score
    ratings: dict[str, float | None] = field(default_factory=dict)  # aspect -> 1-10 rating
    rationales: dict[str, str] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """Mean predicted score over the targets: what candidates are ranked by."""
        return float(np.mean(list(self.scores.values()))) if self.scores else float("nan")


# ----------------------------------------------------------------------------- the ad and the scorer


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


# ----------------------------------------------------------------------------- the writer


def make_writer(project: Project, device: str):
    from memo.rationales.writer import Writer

    r = project.config.rationale
    dev = device if device != "auto" else (project.config.models.device or "auto")
    return Writer(
        r.model or project.config.models.llm,
        adapter=r.adapter or None,
        device=dev,
        backend=r.backend,
        tensor_parallel=getattr(r, "tensor_parallel", 1),
    )


def writer_notes(project: Project) -> list[str]:
    """A note when the writer is a tiny random model, whose candidates only check the machinery."""
    from memo.models import is_tiny

    writer_name = project.config.rationale.model or project.config.models.llm
    if is_tiny(writer_name):
        return [
            f"the writer is {writer_name}, a tiny random model: the candidates are noise; this checks "
            "the machinery only."
        ]
    return []


def write_prompt(ad: dict[str, str], aspect, best: list[Candidate], targets: list[str]) -> list[dict]:
    """Chat messages asking for one new scene description that leans on `aspect`."""
    lines = [
        f"Ad title: {ad['title'] or '(none)'}",
        f"Key message: {ad['message']}",
        f"Current description: {ad['description'] or '(none)'}",
        "",
        f"Make the ad more memorable through {aspect.name}: {aspect.definition}. Think of {aspect.look_for}.",
    ]
    if best:
        lines += [
            "",
            f"The best versions so far and their predicted memorability ({', '.join(targets)}, 0-1):",
        ]
        lines += [f"- ({c.score:.3f}) {c.text}" for c in best]
        lines += ["Write a new version that is more memorable than these."]
    lines += [
        "",
        f"Write one scene description for this ad in at most {MAX_WORDS} words: what is seen and "
        "heard, in order. "
        "Keep the brand and the key message. Answer with the description only.",
    ]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]


def clean_candidate(text: str) -> str:
    """The description alone: no quotes or heading the model may add, at most MAX_WORDS * 1.5 words."""
    t = " ".join(str(text).split()).strip().strip('"').strip()
    for head in ("Scene description:", "Description:", "Here is", "Sure"):
        if t.lower().startswith(head.lower()) and ":" in t[: len(head) + 40]:
            t = t.split(":", 1)[1].strip()
    words = t.split()
    return " ".join(words[: int(MAX_WORDS * 1.5)])


class Generator:
    """The writer plus the rationale log: generate what the log lacks, log it at once, return texts in
    order."""

    def __init__(self, project: Project, device: str, video_key: str):
        from memo.rationales.generate import log_path
        from memo.rationales.log import GenerationLog

        self.project = project
        self.writer = make_writer(project, device)
        self.log = GenerationLog(log_path(project))
        self.video_key = video_key
        self.generated = 0
        self.cached = 0

    def __call__(self, jobs: list[tuple[str, list[dict]]], params: dict[str, Any], seed: int) -> list[str]:
        """jobs: (aspect, messages); params: max_new_tokens, temperature, top_p. Texts in job order."""
        from memo.rationales.log import Record, cache_key, sha
        from memo.rationales.prompts import parse_rating

        ident = self.writer.identity()
        keys = [
            cache_key(stage="readvise", **ident, prompt=m, params=params, seed=seed, slot=k)
            for k, (_, m) in enumerate(jobs)
        ]
        have = self.log.get_many(keys)
        todo = [k for k, key in enumerate(keys) if key not in have]
        self.cached += len(jobs) - len(todo)
        if todo:

            def on_batch(idx, gens):
                recs = []
                for i, g in zip(idx, gens):
                    k = todo[i]
                    aspect, msgs = jobs[k]
                    recs.append(
                        Record(
                            key=keys[k],
                            video=self.video_key,
                            response=g.text,
                            aspect=aspect,
                            stage="readvise",
                            model=ident["model"],
                            revision=ident["revision"],
                            adapter=ident["adapter"],
                            prompt_hash=sha(msgs),
                            params={**params, "seed": seed},
                            prompt=msgs,
                            rating=parse_rating(g.text),
                            prompt_tokens=g.prompt_tokens,
                            tokens=g.tokens,
                            seconds=g.seconds,
                        )
                    )
                self.log.add(recs)

            r = self.project.config.rationale
            self.writer.generate(
                [jobs[k][1] for k in todo],
                max_new_tokens=params["max_new_tokens"],
                temperature=params["temperature"],
                top_p=params["top_p"],
                batch_size=r.batch_size,
                seed=seed,
                on_batch=on_batch,
            )
            self.generated += len(todo)
            have = self.log.get_many(keys)
        return [have[key]["response"] for key in keys]


def rate(gen: Generator, project: Project, aspects, cands: list[Candidate], title: str) -> None:
    """Fill each candidate's 1-10 rating and rationale per aspect (the rationale prompt, zero-shot,
    greedy)."""
    from memo.rationales.prompts import ad_fields, load_template, parse_rating

    r = project.config.rationale
    tpl = load_template(r.prompt)
    todo = [(c, a) for c in cands for a in aspects if a.name not in c.ratings]
    if not todo:
        return
    jobs = []
    for c, a in todo:
        fields = ad_fields(
            {"title": title, "description": c.text, "transcript": "", "tags": ""}, r.transcript_chars
        )
        jobs.append((a.name, tpl.messages(a, fields)))
    params = {"max_new_tokens": r.max_new_tokens, "temperature": 0.0, "top_p": 1.0, "template": tpl.hash}
    texts = gen(jobs, params, seed=0)
    for (c, a), t in zip(todo, texts):
        c.rationales[a.name] = t
        c.ratings[a.name] = parse_rating(t)


# ----------------------------------------------------------------------------- the loop


def write_rounds(
    gen: Generator,
    score: Callable[[list[Candidate]], None],
    ad: dict[str, str],
    aspects,
    targets: list[str],
    best: float,
    candidates: int,
    rounds: int,
    params: dict[str, Any],
    seed: int,
    progress: bool,
) -> tuple[list[Candidate], list[dict], str]:
    """Write and score `candidates` texts a round, the best so far seeding the next prompt, until the score
    stops rising.

    `score(cands)` fills each candidate's scores; `best` is the original's score. Returns every
    candidate written, one history entry per round, and why the rounds stopped.
    """
    from tqdm.auto import tqdm

    pool: list[Candidate] = []
    history = []
    stop_reason = f"ran all {rounds} rounds"
    for r in tqdm(range(1, rounds + 1), desc="readvise rounds", disable=not progress, leave=False):
        seeds = sorted(pool, key=lambda c: -c.score)[:SEEDS_SHOWN]
        # each candidate leans on another aspect
        focus = [aspects[(r - 1 + k) % len(aspects)] for k in range(candidates)]
        jobs = [(a.name, write_prompt(ad, a, seeds, targets)) for a in focus]
        texts = gen(jobs, params, seed=seed * 1000 + r)
        new = []
        for k, (a, t) in enumerate(zip(focus, texts)):
            new.append(Candidate(f"r{r}c{k + 1}", r, a.name, clean_candidate(t) or "(empty)"))
        score(new)
        pool += new
        round_best = max(c.score for c in new)
        history.append(
            {
                "round": r,
                "best": round_best,
                "best_so_far": max(best, round_best),
                "candidates": [c.id for c in new],
            }
        )
        if not round_best > best + MIN_GAIN:
            stop_reason = (
                f"stopped after round {r} of {rounds}: its best ({round_best:.4f}) did not beat the best "
                f"so far ({best:.4f})"
            )
            break
        best = round_best
    return pool, history, stop_reason


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
    scorer = meta.get("predictor") or scorer
    targets = list(meta.get("targets") or [])
    fld = candidate_field(list(meta.get("streams") or est.streams))
    check_encoder(project, scorer, meta)
    base, notes = base_features(project, est, split, video, list(meta.get("streams") or []))
    reads = "E5 of it" if f"e5.{fld}" in (meta.get("streams") or est.streams) else "the cues read from it"
    notes.insert(
        0, f"candidates replace the {fld} (the scorer reads {reads}); the title stays {ad['title']!r}."
    )
    notes.insert(0, f"the scorer is the {scorer} model of {meta['source']}.")
    aspects = resolve_aspects(project.config.rationale.aspects, project.config)
    notes += writer_notes(project)

    gen = Generator(project, device, video_key=f"readvise:{video or slug(ad['title'] or ad['message'])[:60]}")
    original = Candidate("original", 0, "", ad[fld] if ad.get(fld) else ad["description"])

    def score(cands: list[Candidate]) -> None:
        X = build_candidates_features(project, base, ad, [(c.id, c.text) for c in cands], fld, device)
        pred = est.predict(X)
        for c in cands:
            c.scores = {t: float(pred.loc[c.id, t]) for t in targets or pred.columns}

    score([original])
    params = {
        "max_new_tokens": int(max_new_tokens),
        "temperature": temperature,
        "top_p": 0.95 if temperature > 0 else 1.0,
    }
    pool, history, stop_reason = write_rounds(
        gen, score, ad, aspects, targets, original.score, candidates, rounds, params, project.seed, progress
    )

    ranked = sorted(pool, key=lambda c: (-c.score, c.round, c.id))
    top = ranked[:candidates]
    rate(gen, project, aspects, [original, *top], ad["title"])
    honest = HONEST.format(scorer=scorer, dataset=project.dataset.root.name)
    df = result_frame(original, top, targets)
    out = (
        Path(out) if out else project.workdir / "readvise" / (slug(ad["title"] or ad["message"])[:60] or "ad")
    )
    report = {
        "ad": ad,
        "video": video,
        "scorer": scorer,
        "scorer_source": meta.get("source"),
        "scorer_cv": meta.get("cv"),
        "targets": targets,
        "field": fld,
        "writer": gen.writer.identity(),
        "aspects": [a.name for a in aspects],
        "rounds_run": len(history),
        "rounds_max": rounds,
        "candidates_per_round": candidates,
        "stop": stop_reason,
        "history": history,
        "honest": honest,
        "notes": notes,
        "original": _cand_json(original, original),
        "ranked": [_cand_json(c, original) for c in top],
        "all": [_cand_json(c, original) for c in ranked],
        "generated": gen.generated,
        "from_log": gen.cached,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_report(out, report)
    df.attrs.update(
        {
            "original": report["original"],
            "notes": notes,
            "honest": honest,
            "stop": stop_reason,
            "json": str(out / "readvise.json"),
            "markdown": str(out / "readvise.md"),
            "rounds_run": len(history),
        }
    )
    return df


# ----------------------------------------------------------------------------- output


def moved(c: Candidate, original: Candidate, k: int = 3) -> list[tuple[str, float]]:
    """The k aspects whose rating changed most from the original, (aspect, change), largest first."""
    d = [
        (a, float(c.ratings[a] - original.ratings[a]))
        for a in c.ratings
        if c.ratings.get(a) is not None and original.ratings.get(a) is not None
    ]
    d = [x for x in d if x[1] != 0]
    return sorted(d, key=lambda x: (-abs(x[1]), x[0]))[:k]


def _why(c: Candidate, original: Candidate) -> str:
    m = moved(c, original)
    if m:
        return ", ".join(f"{a} {v:+g}" for a, v in m)
    rated = [a for a in c.ratings if c.ratings[a] is not None and original.ratings.get(a) is not None]
    return "no aspect rating moved" if rated else "ratings unreadable"


def _cand_json(c: Candidate, original: Candidate) -> dict[str, Any]:
    return {
        "id": c.id,
        "round": c.round,
        "focus": c.focus,
        "text": c.text,
        "scores": c.scores,
        "score": c.score,
        "improvement": (c.score - original.score) / original.score if original.score else None,
        "ratings": c.ratings,
        "rationales": c.rationales,
        "moved": moved(c, original) if c is not original else [],
    }


def result_frame(original: Candidate, top: list[Candidate], targets: list[str]) -> pd.DataFrame:
    rows = []
    for rank, c in enumerate(top, 1):
        row = {"rank": rank, "id": c.id, "round": c.round, "focus": c.focus, "score": c.score}
        for t in c.scores:
            row[t] = c.scores[t]
        row["original"] = original.score
        row["improvement"] = (c.score - original.score) / original.score if original.score else float("nan")
        row["why"] = _why(c, original)
        row["text"] = c.text
        rows.append(row)
    return pd.DataFrame(rows).set_index("rank")


def terminal_table(df: pd.DataFrame) -> str:
    """What `memo readvise` prints: the ranked table, the original's score, the notes and the honest
    sentence."""
    a = df.attrs
    shown = df.copy()
    for c in shown.columns:
        if c == "improvement":
            shown[c] = shown[c].map(lambda v: f"{v:+.1%}")
        elif shown[c].dtype.kind == "f":
            shown[c] = shown[c].map(lambda v: f"{v:.3f}")
    shown["text"] = shown["text"].map(lambda t: t if len(t) <= 70 else t[:67] + "...")
    lines = [
        f"original: predicted {a['original']['score']:.3f} "
        f"({', '.join(f'{k} {v:.3f}' for k, v in a['original']['scores'].items())})"
    ]
    with pd.option_context("display.width", 250, "display.max_columns", 50, "display.max_colwidth", 80):
        lines.append(shown.to_string())
    lines.append(a["stop"] + ".")
    lines += [f"note: {n}" for n in a["notes"]]
    lines.append(a["honest"])
    lines.append(f"full texts and ratings: {a['markdown']} and {a['json']}")
    return "\n".join(lines)


def markdown(rep: dict[str, Any]) -> str:
    o = rep["original"]
    lines = [
        f"# MindMem-ReAd: {rep['ad']['title'] or rep['ad']['message']}",
        "",
        f"> {rep['honest']}",
        "",
        f"- key message: {rep['ad']['message']}",
        f"- scorer: `{rep['scorer']}` of {rep.get('scorer_source') or '?'} (targets: "
        f"{', '.join(rep['targets'])}); candidates replace the {rep['field']}",
        f"- writer: `{rep['writer']['model']}`{' + adapter' if rep['writer'].get('adapter') else ''}; "
        f"aspects: {', '.join(rep['aspects'])}",
        f"- rounds: {rep['rounds_run']} of at most {rep['rounds_max']}, {rep['candidates_per_round']} "
        f"candidates each; {rep['stop']}",
        f"- original: predicted **{o['score']:.3f}** "
        f"({', '.join(f'{k} {v:.3f}' for k, v in o['scores'].items())})",
        "",
        "| rank | id | round | focus | predicted | change | why (aspect ratings that moved) |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, c in enumerate(rep["ranked"], 1):
        why = ", ".join(f"{a} {v:+g}" for a, v in c["moved"]) or "no aspect rating moved"
        imp = f"{c['improvement']:+.1%}" if c["improvement"] is not None else ""
        lines.append(f"| {k} | {c['id']} | {c['round']} | {c['focus']} | {c['score']:.3f} | {imp} | {why} |")
    lines += ["", "## Texts", "", f"**original**: {o['text']}", ""]
    for k, c in enumerate(rep["ranked"], 1):
        lines += [f"**{k}. {c['id']}** (predicted {c['score']:.3f}): {c['text']}", ""]
    lines += ["## Rounds", "", "| round | best in round | best so far |", "|---|---|---|"]
    lines += [f"| {h['round']} | {h['best']:.4f} | {h['best_so_far']:.4f} |" for h in rep["history"]]
    if rep["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in rep["notes"]]
    return "\n".join(lines) + "\n"


def write_report(out: Path, report: dict[str, Any]) -> None:
    """<out>/readvise.json (everything) and <out>/readvise.md (for people)."""
    from memo.store import atomic_write_json, atomic_write_text

    atomic_write_json(out / "readvise.json", report)
    atomic_write_text(out / "readvise.md", markdown(report))
