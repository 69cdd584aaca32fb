"""MindMem-ReAd's candidates: what one is, and how the writer LLM writes and rates them.

A candidate is a rewritten ad text with its predicted scores and aspect ratings (`Candidate`).
The writer is the rationale writer ([rationale] model, else [models] llm); `Generator` runs it
through the rationale log (stage "readvise"), which is also the cache. `write_rounds` is the loop
of rounds, each prompt seeded with the best candidates so far (`write_prompt`); `rate` asks for
the 1-10 aspect ratings that say why a candidate moved. memo.evaluation.readvise puts it together.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from memo.project import Project

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
    # reason in words -> contribution to the score, where the scorer explains itself (memo.predictors)
    contributions: dict[str, float] = field(default_factory=dict)

    @property
    def score(self) -> float:
        """Mean predicted score over the targets: what candidates are ranked by."""
        return float(np.mean(list(self.scores.values()))) if self.scores else float("nan")


# ----------------------------------------------------------------------------- the writer


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
        from memo.rationales.runner import writer_for

        self.project = project
        self.writer = writer_for(project, device)
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


# ----------------------------------------------------------------------------- the rounds


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
