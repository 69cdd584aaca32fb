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
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memo.errors import ConfigError, MemoError
from memo.progress import say
from memo.rationales.aspects import Aspect, resolve_aspects
from memo.rationales.log import GenerationLog, Record, cache_key, sha
from memo.rationales.prompts import Exemplar, Template, ad_fields, load_template, parse_rating, window_text

if TYPE_CHECKING:
    from memo.project import Project
    from memo.rationales.writer import Writer

ZERO, FEW = "zero-shot", "few-shot"
RATINGS = ("distribution", "parsed")  # [rationale] ratings


def log_path(project: Project) -> Path:
    from memo.rationales.log import log_file

    return log_file(project.workdir)


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
    """What every job of one run shares."""

    project: Project
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


def _apply_overrides(project: Project, aspects, model, adapter, few_shot) -> list[Aspect]:
    """Command-line choices go into project.config.rationale, which keys the feature-store tables."""
    cfg = project.config.rationale
    if cfg.ratings not in RATINGS:
        raise ConfigError(
            f"[rationale] ratings = {cfg.ratings!r} is not one of {', '.join(RATINGS)}; "
            "'distribution' reads each rating from the model's next-token distribution."
        )
    if cfg.ratings == "distribution" and cfg.backend != "transformers":
        raise ConfigError(
            f"[rationale] ratings = 'distribution' reads the model's logits, which backend = {cfg.backend!r} "
            "does not give; set backend = 'transformers' or ratings = 'parsed'."
        )
    chosen = resolve_aspects(aspects or cfg.aspects, project.config)
    cfg.aspects = [a.name for a in chosen]
    if model:
        cfg.model = model
    if adapter:
        cfg.adapter = str(adapter)
    if few_shot is not None:
        if few_shot < 0:
            raise ConfigError(f"--few-shot {few_shot} must be 0 (zero-shot) or more.")
        cfg.few_shot = int(few_shot)
    return chosen


def writer_for(project: Project, device: str = "auto") -> Writer:
    """The project's rationale writer: [rationale] model (else [models] llm), adapter, backend."""
    from memo.rationales.writer import Writer

    cfg = project.config.rationale
    dev = device if device != "auto" else (project.config.models.device or "auto")
    return Writer(
        cfg.model or project.config.models.llm,
        adapter=cfg.adapter or None,
        device=dev,
        backend=cfg.backend,
        tensor_parallel=cfg.tensor_parallel,
    )


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

    Returns a summary: generated, cached, tokens, seconds, per-aspect rating coverage, the log path.
    """
    chosen = _apply_overrides(project, aspects, model, adapter, few_shot)
    cfg = project.config.rationale
    ds = project.dataset
    names = splits or list(ds.splits)
    unknown = [s for s in names if s not in ds.splits]
    if unknown:
        raise ConfigError(f"unknown split {unknown[0]!r}; this dataset has: {', '.join(ds.splits)}.")
    writer = writer or writer_for(project, device)
    saved = _up_to_date(project, writer, names, limit)
    if saved is not None:
        if progress:
            say(
                f"rationales are up to date (nothing they read changed since {saved['written']}): "
                f"{sum(saved['videos'].values())} videos x {len(saved['aspects'])} aspects in the "
                f"feature store; log {saved['log']}"
            )
        return saved
    params = {"max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature}
    if cfg.temperature > 0:
        params.update(top_p=cfg.top_p, seed=project.seed)
    stops = writer.stops()  # a base model stops at a blank line; the stop changes its texts, so it keys them
    if stops:
        params["stop"] = stops
    ctx = Context(project, load_template(cfg.prompt), writer.identity(), params, cfg.frames)
    limit_positions = writer.max_positions()
    if limit_positions:
        ctx.budget, ctx.count = limit_positions - int(cfg.max_new_tokens), writer.prompt_tokens
    t_start = time.perf_counter()

    def ids_of(split: str) -> list[str]:
        ids = ds.splits[split].ids
        return ids[:limit] if limit else ids

    labelled = ds.labelled()
    with GenerationLog(log_path(project)) as log:
        # 1. zero-shot: every requested video without few-shot; with few-shot, the labelled videos (the
        # exemplar pool)
        zs_videos = (
            {s: ids_of(s) for s in names} if cfg.few_shot == 0 else {labelled.name: ids_of(labelled.name)}
        )
        zs_jobs = [
            ctx.finish(_zero_shot_job(ctx, s, v, a))
            for s, vids in zs_videos.items()
            for v in vids
            for a in chosen
        ]
        _run_jobs(ctx, writer, log, zs_jobs, progress)
        final = {(j.split, j.video, j.aspect.name): j.key for j in zs_jobs}

        # 2. few-shot: exemplars from the training side of each video's held-out fold
        if cfg.few_shot > 0:
            fs_jobs = _few_shot_jobs(
                ctx, log, zs_jobs, {s: ids_of(s) for s in names}, chosen, device, progress
            )
            _run_jobs(ctx, writer, log, fs_jobs, progress)
            final = {(j.split, j.video, j.aspect.name): j.key for j in fs_jobs}

        # 3. ratings: from the next-token distribution, or parsed from the final rationales
        rows = log.get_many(final.values())
        # what the fusion's prompt quotes
        log.set_final({(v, a): k for (_, v, a), k in final.items() if k in rows})
        if cfg.ratings == "distribution":
            from memo.rationales.rating import log_ratings

            aspect_of = {a.name: a for a in chosen}
            values, ctx.rated = log_ratings(
                project, writer, log, [(s, v, aspect_of[a]) for s, v, a in final], ctx.identity, progress
            )
        else:
            values = {k3: rows[k].rating for k3, k in final.items() if k in rows}

        # 4. the feature store
        coverage = _store(project, chosen, final, rows, values, device, progress)

    summary = {
        "generated": ctx.generated,
        "cached": ctx.cached,
        "rated": ctx.rated,
        "ratings": cfg.ratings,
        "tokens": ctx.tokens,
        "tokens_per_s": round(ctx.tokens / ctx.seconds, 1) if ctx.seconds else None,
        "seconds": round(time.perf_counter() - t_start, 1),
        "aspects": [a.name for a in chosen],
        "videos": {s: len(ids_of(s)) for s in names},
        "ratings_present": coverage,
        "stages": ctx.stages,
        "model": ctx.identity["model"],
        "log": str(log_path(project)),
        "shortened": ctx.shortened,
        "up_to_date": False,
    }
    if progress:
        _say_summary(summary, ctx, cfg, limit_positions)
    _save_state(project, writer, names, limit, summary)
    return summary


def _say_summary(summary: dict[str, Any], ctx: Context, cfg, limit_positions: int | None) -> None:
    from memo.models import is_tiny

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
            f"within the model's {limit_positions} positions."
        )
    if is_tiny(ctx.identity["model"]):
        noise = "its ratings are noise too" if cfg.ratings == "distribution" else "so few or no ratings parse"
        say(
            f"  the writer is {ctx.identity['model']}, a tiny randomly initialised model: it writes "
            "noise by design "
            f"(this checks the machinery), {noise}; a real model writes rationales and ratings."
        )


# ----------------------------------------------------------------------------- up to date


def _state_file(project: Project) -> Path:
    return log_path(project).with_name("state.json")


def _fingerprint(project: Project, writer: Writer, names: list[str], limit: int | None) -> str:
    """A hash of everything a run reads and writes: memo and library versions, the rationale config and
    aspect definitions, the writer's identity, both templates, the splits and limit, seed and folds,
    the data files, the log file and the feature-store tables of its streams (stat calls and a few
    small files: no model, log or array is read)."""
    import dataclasses

    from memo.features.text import ratings_table, rationale_source, text_table
    from memo.store import file_signature, library_versions, stable_hash

    cfg = project.config.rationale
    source = rationale_source(project)
    tables = [text_table(project, f"rationale.{a}", source) for a in cfg.aspects] + [ratings_table(project)]
    log = log_path(project)
    parts = {
        "versions": library_versions(),
        "config": {"rationale": dataclasses.asdict(cfg), "source": source, "e5": project.config.models.e5},
        "writer": writer.identity(),
        "templates": [load_template(cfg.prompt).hash, load_template("rating").hash],
        "scope": {
            "splits": names,
            "limit": limit,
            "seed": project.seed,
            "folds": project.config.evaluate.folds,
            "targets": project.targets,
        },
        "data": project.data_signature(),
        "log": [file_signature(p) for p in (log, log.with_name(log.name + "-wal")) if p.is_file()],
        "store": [
            [
                t.key,
                file_signature(t.dir / "manifest.json") if (t.dir / "manifest.json").is_file() else None,
                sum(1 for _ in t.arrays_dir.iterdir()) if t.arrays_dir.is_dir() else 0,
            ]
            for t in tables
        ],
    }
    return stable_hash(parts, 16)


def _up_to_date(
    project: Project, writer: Writer, names: list[str], limit: int | None
) -> dict[str, Any] | None:
    """The saved summary when nothing the run reads changed since it was saved, else None."""
    from memo.store import read_saved

    if not _state_file(project).is_file():  # no fingerprint to compute for a first run
        return None
    saved = read_saved(_state_file(project), _fingerprint(project, writer, names, limit))
    if saved is None or not isinstance(saved.get("summary"), dict):
        return None  # changed, or a damaged state file: a full (cached) run
    return {
        **saved["summary"],
        "generated": 0,
        "rated": 0,
        "up_to_date": True,
        "written": saved.get("written", ""),
    }


def _save_state(
    project: Project, writer: Writer, names: list[str], limit: int | None, summary: dict[str, Any]
) -> None:
    """Written after the log is closed and the store written, so the fingerprint sees their final state."""
    from memo.store import atomic_write_json

    atomic_write_json(
        _state_file(project),
        {
            "fingerprint": _fingerprint(project, writer, names, limit),
            "summary": summary,
            "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )


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


def _zero_shot_job(ctx: Context, split: str, video: str, aspect: Aspect) -> Job:
    row = ctx.project.dataset.splits[split].table.loc[video]

    def make(scale: float) -> list[dict]:
        msgs = ctx.template.messages(aspect, prompt_ad(row, ctx.project.config.rationale, scale=scale))
        _attach_images(msgs, _image_parts(row, ctx.frames))
        return msgs

    return Job(video, split, aspect, ZERO, None, [], ctx.fit(make))


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


def _few_shot_jobs(
    ctx: Context,
    log: GenerationLog,
    zs_jobs: list[Job],
    videos: dict[str, list[str]],
    chosen: list[Aspect],
    device: str,
    progress: bool,
) -> list[Job]:
    from memo.features import embed_texts
    from memo.rationales.fewshot import choose_exemplars, labelled_folds, levels

    project, cfg = ctx.project, ctx.project.config.rationale
    ds = project.dataset
    lab = ds.labelled()
    fold_of = labelled_folds(
        lab.ids, lab.table["group"].astype(str).tolist(), project.config.evaluate.folds, project.seed
    )
    zs_rows = log.get_many(j.key for j in zs_jobs)
    zs_text = {(j.video, j.aspect.name): zs_rows[j.key].response for j in zs_jobs if j.key in zs_rows}
    pool = list(dict.fromkeys(j.video for j in zs_jobs))  # labelled videos with zero-shot rationales
    pool_groups = lab.table.loc[pool, "group"].astype(str).tolist()
    pool_folds = [fold_of[p] for p in pool]
    target = project.targets[0]
    scores = lab.table.loc[pool, target].astype(float).tolist()

    queries = [(s, v) for s, vids in videos.items() for v in vids]
    rows = {(s, v): ds.splits[s].table.loc[v] for s, v in queries}
    texts = [_ad_text(lab.table.loc[p]) for p in pool] + [_ad_text(rows[q]) for q in queries]
    vecs = embed_texts(project, texts, device=device)  # (P + Q, D), unit norm
    pool_vecs, query_vecs = vecs[: len(pool)], vecs[len(pool) :]
    q_folds = [fold_of.get(v) if s == lab.name else None for s, v in queries]
    picks = choose_exemplars(
        [v for _, v in queries],
        [str(rows[q]["group"]) for q in queries],
        q_folds,
        query_vecs,
        pool,
        pool_groups,
        pool_folds,
        pool_vecs,
        cfg.few_shot,
    )
    level_cache: dict[int | None, dict[str, str]] = {}
    jobs = []
    for (s, v), fold in zip(queries, q_folds):
        if cfg.exemplar_labels and fold not in level_cache:
            level_cache[fold] = levels(pool, scores, pool_folds, fold)
        lv = level_cache.get(fold, {})
        for a in chosen:

            def make(scale: float, a=a, s=s, v=v, lv=lv) -> list[dict]:
                exs = [
                    Exemplar(
                        p,
                        prompt_ad(lab.table.loc[p], cfg, short=True, scale=scale),
                        (
                            zs_text[(p, a.name)]
                            if scale >= 1.0
                            else window_text(zs_text[(p, a.name)], max(40, int(1000 * scale)))
                        ),
                        lv.get(p, ""),
                    )
                    for p in picks[v]
                    if (p, a.name) in zs_text
                ]
                msgs = ctx.template.messages(a, prompt_ad(rows[(s, v)], cfg, scale=scale), exs)
                _attach_images(msgs, _image_parts(rows[(s, v)], ctx.frames))
                return msgs

            msgs = ctx.fit(make)
            used = [p for p in picks[v] if (p, a.name) in zs_text]
            jobs.append(ctx.finish(Job(v, s, a, FEW, fold, used, msgs)))
    return jobs


# ----------------------------------------------------------------------------- generation


def _decode_frames(path: str, n: int) -> list:
    """n evenly spaced frames of a video as PIL images: only the kept frames are decoded and
    converted (memo.features.media.read_frames, the one home of frame sampling)."""
    from PIL import Image

    from memo.features.media import MediaError, read_frames

    try:
        frames = read_frames(path, n=n, max_frames=max(n, 1))
    except MediaError:
        return []
    return [Image.fromarray(a) for a in frames.images]


def _materialise(messages: list[dict], cache: dict) -> list[dict]:
    """Image placeholders -> PIL frames (decoded once per video in this chunk)."""
    out = []
    for m in messages:
        if isinstance(m["content"], list):
            parts = []
            for p in m["content"]:
                if p.get("type") == "image" and "video" in p:
                    k = (p["video"], p["of"])
                    if k not in cache:
                        cache[k] = _decode_frames(p["video"], p["of"])
                    if p["frame"] < len(cache[k]):
                        parts.append({"type": "image", "image": cache[k][p["frame"]]})
                else:
                    parts.append(p)
            m = {"role": m["role"], "content": parts}
        out.append(m)
    return out


def _run_jobs(ctx: Context, writer: Writer, log: GenerationLog, jobs: list[Job], progress: bool) -> None:
    """Generate the jobs whose key is not in the log; log each batch as soon as it is done."""
    from tqdm.auto import tqdm

    done = set(log.get_many(j.key for j in jobs))
    todo = list({j.key: j for j in jobs if j.key not in done}.values())
    ctx.cached += len(jobs) - len(todo)
    if not todo:
        return
    cfg = ctx.project.config.rationale
    stage = todo[0].stage
    chunk = max(cfg.batch_size * 8, 1)  # frames are decoded per chunk, so memory stays flat
    with tqdm(
        total=len(todo), desc=f"rationales ({stage})", unit="text", disable=not progress, dynamic_ncols=True
    ) as bar:
        for a in range(0, len(todo), chunk):
            part = todo[a : a + chunk]
            images: dict = {}
            prompts = [_materialise(j.messages, images) for j in part]

            def on_batch(idx: list[int], gens) -> None:
                recs = []
                for i, g in zip(idx, gens):
                    j = part[i]
                    recs.append(
                        Record(
                            key=j.key,
                            video=j.video,
                            response=g.text,
                            split=j.split,
                            aspect=j.aspect.name,
                            stage=j.stage,
                            model=ctx.identity["model"],
                            revision=ctx.identity["revision"],
                            adapter=ctx.identity["adapter"] or None,
                            template=ctx.template.name,
                            template_hash=ctx.template.hash,
                            prompt_hash=j.prompt_hash,
                            fold=j.fold,
                            exemplars=j.exemplars,
                            params=ctx.params,
                            prompt=j.messages,
                            rating=parse_rating(g.text),
                            prompt_tokens=g.prompt_tokens,
                            tokens=g.tokens,
                            seconds=round(g.seconds, 4),
                        )
                    )
                    ctx.tokens += g.tokens
                    ctx.seconds += g.seconds
                log.add(recs)
                ctx.generated += len(recs)
                ctx.stages[j.stage] = ctx.stages.get(j.stage, 0) + len(recs)
                bar.update(len(recs))

            writer.generate(
                prompts,
                max_new_tokens=cfg.max_new_tokens,
                temperature=cfg.temperature,
                top_p=cfg.top_p,
                batch_size=cfg.batch_size,
                seed=ctx.project.seed,
                on_batch=on_batch,
                stop=ctx.params.get("stop", []),
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
