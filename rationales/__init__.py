"""Expert-aspect rationales from an instruction-tuned LLM (Gemma-3), as in DSGT (MediaEval 2025).

    from memo.rationales import run_rationales, show_rationales, ASPECTS, Writer
    run_rationales(project, aspects=["humor", "emotion"])   # `memo rationale --aspects humor,emotion`
    show_rationales(project, "vid1")                        # `memo rationale show vid1`

Modules: aspects.py (the ASPECTS registry and [aspects.NAME] of memo.toml), prompts.py (template
files, messages, the rating parser), writer.py (batched generation; reused by MindMem-ReAd),
log.py (the SQLite log that is the cache), fewshot.py (exemplars per fold), settings.py (a run's
[rationale] with the command's choices), jobs.py (prompts and cache keys), runner.py (the writer
over the jobs the log lacks), rating.py (next-token ratings), state.py (up to date), generate.py
(the stage), finetune.py (TRL SFT + LoRA of the writer). See docs/rationales.md.
"""

from memo.rationales.aspects import ASPECTS, Aspect, resolve_aspects
from memo.rationales.generate import log_path, run_rationales, show_rationales
from memo.rationales.log import GenerationLog
from memo.rationales.prompts import load_template, parse_rating
from memo.rationales.runner import writer_for
from memo.rationales.writer import Generation, Writer

__all__ = [
    "ASPECTS",
    "Aspect",
    "Generation",
    "GenerationLog",
    "Writer",
    "load_template",
    "log_path",
    "parse_rating",
    "resolve_aspects",
    "run_rationales",
    "show_rationales",
    "writer_for",
]
