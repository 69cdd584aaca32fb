"""Running the writer over a run's jobs: the writer a run's settings name, and the generation of the jobs
the log lacks, in chunks (frames decoded per chunk, so memory stays flat), each batch logged as soon
as it is done (a killed run resumes where it stopped).

    writer = writer_for(project, "cpu", settings.section)
    run_jobs(ctx, writer, log, jobs, progress=True)     # ctx.generated, ctx.cached, ctx.tokens, ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memo.rationales.jobs import Context, Job
from memo.rationales.log import GenerationLog, Record
from memo.rationales.prompts import parse_rating

if TYPE_CHECKING:
    from memo.config import RationaleConfig
    from memo.project import Project
    from memo.rationales.writer import Generation, Writer


def writer_for(
    project: Project, device: str = "auto", section: RationaleConfig | None = None, model: str | None = None
) -> Writer:
    """The rationale writer: [rationale] model (else [models] llm; `model` overrides both), adapter, backend
    of `section` (a run's settings; the project's [rationale] when None), in [models] precision. The one
    place a Writer is made for a project (rationales, ratings, MindMem-ReAd's rewrites)."""
    from memo.rationales.writer import Writer

    cfg = section if section is not None else project.config.rationale
    models = project.config.models
    return Writer(
        model or cfg.model or models.llm,
        adapter=cfg.adapter or None,
        device=device if device != "auto" else (models.device or "auto"),
        backend=cfg.backend,
        tensor_parallel=cfg.tensor_parallel,
        precision=models.precision,
    )


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


def _record(ctx: Context, j: Job, g: Generation) -> Record:
    """The log's row of one generated job."""
    return Record(
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


def run_jobs(ctx: Context, writer: Writer, log: GenerationLog, jobs: list[Job], progress: bool) -> None:
    """Generate the jobs whose key is not in the log; log each batch as soon as it is done."""
    from tqdm.auto import tqdm

    done = set(log.get_many(j.key for j in jobs))
    todo = list({j.key: j for j in jobs if j.key not in done}.values())
    ctx.cached += len(jobs) - len(todo)
    if not todo:
        return
    cfg = ctx.cfg
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
                    recs.append(_record(ctx, j, g))
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
