"""What a rationale run generates: one job per (video, aspect, stage), its prompt and its cache key.

    ctx = run_context(project, settings.section, writer)       # template, writer identity, parameters
    job = zero_shot_job(ctx, "dev", "vid1", aspect)            # prompt fitted to the writer's positions
    ctx.finish(job).key                                        # the log's cache key

A zero-shot prompt shows the ad's texts (transcript windowed to [rationale] transcript_chars) and
the aspect's definition; a few-shot prompt adds k exemplars, the most E5-similar ads of the
training side of the video's held-out fold with their zero-shot rationales (fewshot.py). A prompt
that would leave too few of the writer's positions for the answer has its ad texts shortened.
Frames are placeholders here ({"video": path, "frame": i, "of": n}), decoded only when generated
(runner.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memo.rationales.aspects import Aspect
from memo.rationales.log import GenerationLog, cache_key, sha
from memo.rationales.prompts import Exemplar, Template, ad_fields, load_template, window_text

if TYPE_CHECKING:
    from memo.config import RationaleConfig
    from memo.project import Project
    from memo.rationales.writer import Writer

ZERO, FEW = "zero-shot", "few-shot"


@dataclass
class Job:
    """One generation to look up or make."""

    video: str
    split: str
    aspect: Aspect
    stage: str
    fold: int | None
    exemplars: list[str]
    # chat messages; image parts hold {"video": path, "frame": i, "of": n} until generation
    messages: list[dict]
    key: str = ""
    prompt_hash: str = ""


@dataclass
class Context:
    """What every job of one run shares; `cfg` is the run's [rationale] (memo.rationales.settings)."""

    project: Project
    cfg: RationaleConfig
    template: Template
    identity: dict[str, str]
    params: dict[str, Any]
    frames: int
    budget: int | None = None  # prompt tokens that leave room for the answer in the model's positions
    count: Any = None  # messages -> prompt tokens (the writer's tokenizer)
    shortened: int = 0  # prompts whose texts were cut to fit the budget
    generated: int = 0
    cached: int = 0
    rated: int = 0  # ratings read from the next-token distribution now (not from the log)
    tokens: int = 0
    seconds: float = 0.0
    stages: dict[str, int] = field(default_factory=dict)

    def fit(self, make) -> list[dict]:
        """make(scale) -> chat messages whose ad texts are windowed to `scale` x the configured lengths.

        The largest scale whose prompt leaves max_new_tokens free in the model's positions (Gemma-3
        270M and the tiny models take 1024 or 32k): a prompt past them warns and degrades the answer.
        """
        msgs = make(1.0)
        if not self.budget or not self.count:
            return msgs
        scale, n = 1.0, self.count(msgs)
        while n > self.budget and scale > 0.01:
            scale *= max(0.1, min(0.9, 0.95 * self.budget / n))
            msgs = make(scale)
            n = self.count(msgs)
        self.shortened += scale < 1.0
        return msgs

    def finish(self, job: Job) -> Job:
        job.prompt_hash = sha(job.messages)
        job.key = cache_key(
            video=job.video,
            aspect=job.aspect.name,
            stage=job.stage,
            **self.identity,
            template_hash=self.template.hash,
            prompt_hash=job.prompt_hash,
            params=self.params,
        )
        return job


def run_context(project: Project, cfg: RationaleConfig, writer: Writer) -> Context:
    """The shared part of a run's jobs: template, writer identity, generation parameters (they key every
    text), and the prompt budget of the writer's positions."""
    params = {"max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature}
    if cfg.temperature > 0:
        params.update(top_p=cfg.top_p, seed=project.seed)
    stops = writer.stops()  # a base model stops at a blank line; the stop changes its texts, so it keys them
    if stops:
        params["stop"] = stops
    ctx = Context(project, cfg, load_template(cfg.prompt), writer.identity(), params, cfg.frames)
    positions = writer.max_positions()
    if positions:
        ctx.budget, ctx.count = positions - int(cfg.max_new_tokens), writer.prompt_tokens
    return ctx


# ----------------------------------------------------------------------------- prompts


def prompt_ad(row, cfg, short: bool = False, scale: float = 1.0) -> dict[str, str]:
    """The ad fields a prompt shows, windowed per [rationale] (exemplars shorter than the ad itself), times
    `scale`."""
    if short:
        n = max(20, int(cfg.exemplar_chars * scale))
        return ad_fields(row, n, n)
    n = max(40, int(cfg.transcript_chars * scale))
    return ad_fields(
        row, n, None if scale >= 1.0 else max(20, int(max(cfg.transcript_chars // 2, 200) * scale))
    )


def _image_parts(row, n: int) -> list[dict]:
    """Placeholders for n frames of the video (decoded only when the job is generated)."""
    path = row.get("video_path")
    if not n or not isinstance(path, str) or not path:
        return []
    return [{"type": "image", "video": path, "frame": i, "of": n} for i in range(n)]


def _attach_images(msgs: list[dict], parts: list[dict]) -> None:
    if parts:
        msgs[-1] = {"role": "user", "content": parts + [{"type": "text", "text": msgs[-1]["content"]}]}


def _ad_text(row) -> str:
    """The text E5 compares ads by: title, description and transcript, windowed."""
    return window_text(
        " ".join(
            str(row.get(k) or "")
            for k in ("title", "description", "transcript")
            if isinstance(row.get(k), str)
        ),
        2000,
    )


# ----------------------------------------------------------------------------- zero-shot and few-shot jobs


def zero_shot_job(ctx: Context, split: str, video: str, aspect: Aspect) -> Job:
    row = ctx.project.dataset.splits[split].table.loc[video]

    def make(scale: float) -> list[dict]:
        msgs = ctx.template.messages(aspect, prompt_ad(row, ctx.cfg, scale=scale))
        _attach_images(msgs, _image_parts(row, ctx.frames))
        return msgs

    return Job(video, split, aspect, ZERO, None, [], ctx.fit(make))


def few_shot_jobs(
    ctx: Context,
    log: GenerationLog,
    zs_jobs: list[Job],
    videos: dict[str, list[str]],
    chosen: list[Aspect],
    device: str,
) -> list[Job]:
    """A few-shot job per video of `videos` and aspect; the exemplar pool is the videos of `zs_jobs` (the
    labelled split), whose zero-shot rationales are in the log."""
    from memo.rationales.fewshot import labelled_folds, levels

    project, cfg = ctx.project, ctx.cfg
    lab = project.dataset.labelled()
    fold_of = labelled_folds(
        lab.ids, lab.table["group"].astype(str).tolist(), project.config.evaluate.folds, project.seed
    )
    zs_rows = log.get_many(j.key for j in zs_jobs)
    zs_text = {(j.video, j.aspect.name): zs_rows[j.key].response for j in zs_jobs if j.key in zs_rows}
    pool = list(dict.fromkeys(j.video for j in zs_jobs))  # labelled videos with zero-shot rationales
    pool_folds = [fold_of[p] for p in pool]
    scores = lab.table.loc[pool, project.targets[0]].astype(float).tolist()

    queries = [(s, v) for s, vids in videos.items() for v in vids]
    rows = {(s, v): project.dataset.splits[s].table.loc[v] for s, v in queries}
    q_folds = [fold_of.get(v) if s == lab.name else None for s, v in queries]
    picks = _nearest_exemplars(ctx, lab, pool, pool_folds, queries, rows, q_folds, device)
    level_cache: dict[int | None, dict[str, str]] = {}
    jobs = []
    for (s, v), fold in zip(queries, q_folds):
        if cfg.exemplar_labels and fold not in level_cache:
            level_cache[fold] = levels(pool, scores, pool_folds, fold)
        lv = level_cache.get(fold, {})
        for a in chosen:
            make = _few_shot_prompt(ctx, a, rows[(s, v)], picks[v], zs_text, lab.table, lv)
            msgs = ctx.fit(make)
            used = [p for p in picks[v] if (p, a.name) in zs_text]
            jobs.append(ctx.finish(Job(v, s, a, FEW, fold, used, msgs)))
    return jobs


def _nearest_exemplars(
    ctx: Context,
    lab,
    pool: list[str],
    pool_folds: list[int],
    queries: list,
    rows: dict,
    q_folds: list,
    device,
) -> dict[str, list[str]]:
    """video -> its exemplars: the pool ads most E5-similar to it, from the training side of its held-out
    fold, never its brand (fewshot.choose_exemplars)."""
    from memo.features import embed_texts
    from memo.rationales.fewshot import choose_exemplars

    texts = [_ad_text(lab.table.loc[p]) for p in pool] + [_ad_text(rows[q]) for q in queries]
    vecs = embed_texts(ctx.project, texts, device=device)  # (P + Q, D), unit norm
    pool_vecs, query_vecs = vecs[: len(pool)], vecs[len(pool) :]
    return choose_exemplars(
        [v for _, v in queries],
        [str(rows[q]["group"]) for q in queries],
        q_folds,
        query_vecs,
        pool,
        lab.table.loc[pool, "group"].astype(str).tolist(),
        pool_folds,
        pool_vecs,
        ctx.cfg.few_shot,
    )


def _few_shot_prompt(
    ctx: Context, aspect: Aspect, row, picked: list[str], zs_text: dict, lab_table, lv: dict
):
    """make(scale) for one video and aspect: its exemplars' ads (shorter) with their zero-shot rationales
    and, with [rationale] exemplar_labels, their memorability levels, then the ad itself."""
    cfg = ctx.cfg

    def make(scale: float) -> list[dict]:
        exs = [
            Exemplar(
                p,
                prompt_ad(lab_table.loc[p], cfg, short=True, scale=scale),
                (
                    zs_text[(p, aspect.name)]
                    if scale >= 1.0
                    else window_text(zs_text[(p, aspect.name)], max(40, int(1000 * scale)))
                ),
                lv.get(p, ""),
            )
            for p in picked
            if (p, aspect.name) in zs_text
        ]
        msgs = ctx.template.messages(aspect, prompt_ad(row, cfg, scale=scale), exs)
        _attach_images(msgs, _image_parts(row, ctx.frames))
        return msgs

    return make
