"""`memo rationale`: a short rationale and a 1-10 rating per (video, aspect), cached in the log, into the
feature store.

    summary = run_rationales(project, aspects=["humor", "emotion"])
    print(show_rationales(project, "vid1"))

The stages of one run:
1. zero-shot: for every video that needs one (all of them with few_shot = 0; with few-shot, the
   labelled videos that may serve as exemplars), a prompt with the ad's texts (transcript
   windowed to [rationale] transcript_chars) and the aspect's definition.
2. few-shot (few_shot > 0): each video's prompt gets k exemplars, the most E5-similar ads of the
   training side of its held-out fold, with their zero-shot rationales (see fewshot.py).
3. ratings: with [rationale] ratings = "distribution" (default) the expected 1-10 rating read from
   the writer's next-token distribution at a rating slot (rating.py; cached in the log's
   `ratings` table), with "parsed" the "Rating: N/10" line of each final rationale.
4. the final rationale of each (video, aspect) (few-shot if asked, else zero-shot) goes to the
   feature store: E5 of its text as stream `rationale.<aspect>`, the ratings as stream `ratings`.

Every generation is looked up in the log by its cache key first (video, aspect, model and
revision, adapter hash, template hash, prompt hash, generation parameters), so a rerun generates
only what is missing and a killed run resumes; each batch is logged as soon as it is done.

Up to date: a finished run saves a fingerprint of everything it read and wrote (data files,
config, writer identity, templates, the log file, the feature-store tables it wrote) in
<workdir>/rationales/state.json. A run whose fingerprint matches does nothing and says so, in
about a second: no model, no log or store read.

This file runs those stages in order, writes the feature store and shows an ad's rationales. The
parts: settings.py (the run's [rationale] with the command's choices, a copy: the project's config
is never changed), jobs.py (what to generate: prompts, exemplars, cache keys), runner.py (the
writer and generating what the log lacks), rating.py (distribution ratings), state.py (up to date).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memo.errors import ConfigError, MemoError
from memo.progress import say
from memo.rationales.aspects import Aspect
from memo.rationales.jobs import Context, few_shot_jobs, run_context, zero_shot_job
from memo.rationales.log import GenerationLog
from memo.rationales.runner import run_jobs, writer_for
from memo.rationales.settings import RationaleSettings, resolve_settings, store_view
from memo.rationales.state import save_state, up_to_date

if TYPE_CHECKING:
    from memo.project import Project
    from memo.rationales.writer import Writer


def log_path(project: Project) -> Path:
    from memo.rationales.log import log_file

    return log_file(project.workdir)


def run_rationales(
    project: Project,
    aspects: list[str] | None = None,
    model: str | None = None,
    adapter: str | None = None,
    splits: list[str] | None = None,
    few_shot: int | None = None,
    limit: int | None = None,
    device: str = "auto",
    progress: bool = True,
    writer: Writer | None = None,
) -> dict[str, Any]:
    """Write (or find in the log) a rationale and rating per video and aspect; store E5 of the texts and the
    ratings.

    aspects, model, adapter, few_shot choose for this run only (memo.rationales.settings): the store
    keys their tables by them, and project.config stays as it is. Returns a summary: generated,
    cached, tokens, seconds, per-aspect rating coverage, the log path.
    """
    settings = resolve_settings(project.config, aspects, model, adapter, few_shot)
    ds = project.dataset
    names = splits or list(ds.splits)
    unknown = [s for s in names if s not in ds.splits]
    if unknown:
        raise ConfigError(f"unknown split {unknown[0]!r}; this dataset has: {', '.join(ds.splits)}.")
    writer = writer or writer_for(project, device, settings.section)
    keyed = store_view(project, settings)  # what the store keys and the rating cache read
    saved = up_to_date(keyed, writer, names, limit)
    if saved is not None:
        if progress:
            say(
                f"rationales are up to date (nothing they read changed since {saved['written']}): "
                f"{sum(saved['videos'].values())} videos x {len(saved['aspects'])} aspects in the "
                f"feature store; log {saved['log']}"
            )
        return saved
    ctx = run_context(project, settings.section, writer)
    t_start = time.perf_counter()
    videos = {s: _ids(project, s, limit) for s in names}
    with GenerationLog(log_path(project)) as log:
        # 1, 2. zero-shot, then few-shot
        final = _final_rationales(ctx, writer, log, settings.aspects, videos, limit, device, progress)
        rows = log.get_many(final.values())
        # what the fusion's prompt quotes
        log.set_final({(v, a): k for (_, v, a), k in final.items() if k in rows})
        # 3. ratings, 4. the feature store
        values = _ratings(ctx, keyed, writer, log, settings.aspects, final, rows, progress)
        coverage = _store(keyed, settings.aspects, final, rows, values, device, progress)
    summary = _summary(ctx, settings, videos, coverage, t_start, log_path(project))
    if progress:
        _say_summary(summary, ctx)
    save_state(keyed, writer, names, limit, summary)
    return summary


def _ids(project: Project, split: str, limit: int | None) -> list[str]:
    """A split's videos, the first `limit` of them with a limit."""
    ids = project.dataset.splits[split].ids
    return ids[:limit] if limit else ids


def _final_rationales(
    ctx: Context,
    writer: Writer,
    log: GenerationLog,
    chosen: list[Aspect],
    videos: dict[str, list[str]],
    limit: int | None,
    device: str,
    progress: bool,
) -> dict[tuple[str, str, str], str]:
    """Generate what the log lacks; (split, video, aspect) -> the cache key of its final rationale."""
    labelled = ctx.project.dataset.labelled()
    # 1. zero-shot: every requested video without few-shot; with few-shot, the labelled videos (the
    # exemplar pool)
    zs_videos = videos if ctx.cfg.few_shot == 0 else {labelled.name: _ids(ctx.project, labelled.name, limit)}
    zs_jobs = [
        ctx.finish(zero_shot_job(ctx, s, v, a)) for s, vids in zs_videos.items() for v in vids for a in chosen
    ]
    run_jobs(ctx, writer, log, zs_jobs, progress)
    final = {(j.split, j.video, j.aspect.name): j.key for j in zs_jobs}

    # 2. few-shot: exemplars from the training side of each video's held-out fold
    if ctx.cfg.few_shot > 0:
        fs_jobs = few_shot_jobs(ctx, log, zs_jobs, videos, chosen, device)
        run_jobs(ctx, writer, log, fs_jobs, progress)
        final = {(j.split, j.video, j.aspect.name): j.key for j in fs_jobs}
    return final


def _ratings(
    ctx: Context,
    keyed: Project,
    writer: Writer,
    log: GenerationLog,
    chosen: list[Aspect],
    final: dict[tuple[str, str, str], str],
    rows: dict,
    progress: bool,
) -> dict[tuple[str, str, str], float | None]:
    """(split, video, aspect) -> rating: from the writer's next-token distribution (cached in the log's
    `ratings` table), or with [rationale] ratings = "parsed" the "Rating: N/10" line of the final texts."""
    if ctx.cfg.ratings != "distribution":
        return {k3: rows[k].rating for k3, k in final.items() if k in rows}
    from memo.rationales.rating import log_ratings

    aspect_of = {a.name: a for a in chosen}
    values, ctx.rated = log_ratings(
        keyed, writer, log, [(s, v, aspect_of[a]) for s, v, a in final], ctx.identity, progress
    )
    return values


def _summary(
    ctx: Context,
    settings: RationaleSettings,
    videos: dict[str, list[str]],
    coverage: dict[str, int],
    t_start: float,
    log: Path,
) -> dict[str, Any]:
    return {
        "generated": ctx.generated,
        "cached": ctx.cached,
        "rated": ctx.rated,
        "ratings": settings.section.ratings,
        "tokens": ctx.tokens,
        "tokens_per_s": round(ctx.tokens / ctx.seconds, 1) if ctx.seconds else None,
        "seconds": round(time.perf_counter() - t_start, 1),
        "aspects": [a.name for a in settings.aspects],
        "videos": {s: len(ids) for s, ids in videos.items()},
        "ratings_present": coverage,
        "stages": ctx.stages,
        "model": ctx.identity["model"],
        "log": str(log),
        "shortened": ctx.shortened,
        "up_to_date": False,
    }


def _say_summary(summary: dict[str, Any], ctx: Context) -> None:
    from memo.models import is_tiny

    cfg = ctx.cfg

    rated = ", ".join(f"{a} {n}" for a, n in summary["ratings_present"].items())
    how = (
        f"from the next-token distribution ({ctx.rated} read now)"
        if cfg.ratings == "distribution"
        else "parsed from the texts"
    )
    say(
        f"rationales: {ctx.generated} generated, {ctx.cached} from the log; ratings {how}: {rated} "
        f"(of {sum(summary['videos'].values())} videos); log {summary['log']}"
    )
    if ctx.shortened:
        say(
            f"  {ctx.shortened} prompt(s) had their ad texts shortened to leave {cfg.max_new_tokens} "
            "tokens for the answer "
            f"within the model's {ctx.budget + int(cfg.max_new_tokens)} positions."
        )
    if is_tiny(ctx.identity["model"]):
        noise = "its ratings are noise too" if cfg.ratings == "distribution" else "so few or no ratings parse"
        say(
            f"  the writer is {ctx.identity['model']}, a tiny randomly initialised model: it writes "
            "noise by design "
            f"(this checks the machinery), {noise}; a real model writes rationales and ratings."
        )


# ----------------------------------------------------------------------------- feature store


def _store(
    project: Project,
    chosen: list[Aspect],
    final: dict,
    rows: dict,
    values: dict,
    device: str,
    progress: bool,
) -> dict[str, int]:
    """E5 of each final rationale -> stream rationale.<aspect>; `values[(split, video, aspect)]` -> stream
    ratings (NaN = missing)."""
    from memo.features import put_named_stream, put_text_stream

    aspect_names = [a.name for a in chosen]
    coverage = {a: 0 for a in aspect_names}
    for a in aspect_names:
        texts = {v: rows[k].response for (s, v, asp), k in final.items() if asp == a and k in rows}
        put_text_stream(project, f"rationale.{a}", texts, device=device, progress=progress)
    ratings: dict[str, np.ndarray] = {}
    for s, v, a in final:
        vec = ratings.setdefault(v, np.full(len(aspect_names), np.nan, np.float32))
        r = values.get((s, v, a))
        if r is not None and np.isfinite(r):
            vec[aspect_names.index(a)] = r
            coverage[a] += 1
    put_named_stream(project, "ratings", ratings, aspect_names)
    return coverage


# ----------------------------------------------------------------------------- show


def show_rationales(project: Project, video_id: str) -> str:
    """An ad's rationales and ratings from the log: the latest of each aspect and stage, newest model
    first."""
    p = log_path(project)
    if not p.is_file():
        raise MemoError(f"no rationale log at {p}; run `memo rationale` first.")
    with GenerationLog(p) as log:
        rows = log.rows(video=str(video_id))
        # oldest first: the newest of each aspect wins
        dist = {r.aspect: r for r in log.rating_rows(str(video_id))}
    if not rows:
        raise MemoError(
            f"video {video_id!r} has no rationales in the log; run `memo rationale` (check the id with "
            "`memo data check`)."
        )
    latest: dict[tuple, Any] = {}
    for r in rows:  # oldest first, so the last one of each (aspect, stage) wins
        latest[(r.aspect, r.stage)] = r
    lines = [f"{video_id}: {len(latest)} rationale(s) ({len(rows)} generation(s) in the log)"]
    try:
        split = next(s for s in project.dataset.splits.values() if str(video_id) in s.table.index)
        row = split.table.loc[str(video_id)]
        lines[0] += f"; {split.name}, brand {row['group']}, title {str(row.get('title') or '')[:80]!r}"
    except (StopIteration, MemoError, OSError):
        pass
    for (aspect, stage), r in sorted(latest.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]))):
        rating = f"{r.rating:g}/10" if r.rating is not None else "no rating"
        fold = f", fold {r.fold}" if r.fold is not None else ""
        ex = f", exemplars {', '.join(r.exemplars)}" if r.exemplars else ""
        lines.append(f"\n[{aspect}] {rating} ({stage}{fold}{ex}; {r.model}; {r.tokens} tokens; {r.created})")
        lines.append(r.response or "(empty)")
    for aspect, r in sorted(dist.items(), key=lambda kv: str(kv[0])):
        lines.append(
            f"\n[{aspect}] {r.expected:.2f}/10 from the next-token distribution (std {r.std:.2f}, "
            f"label mass {r.mass:.2f}; {r.model}; {r.created})"
        )
    return "\n".join(lines)
