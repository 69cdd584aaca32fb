"""MindMem-ReAd's output: the ranked table `readvise` returns and `memo readvise` prints, and the two
files it writes, <out>/readvise.json (everything) and <out>/readvise.md (for people), each with the
sentence that says the scores are the model's predictions, not measured recall.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from memo.evaluation.readvise_candidates import Candidate, Generator
    from memo.evaluation.readvise_scoring import AdScorer

HONEST = (
    "The scores are predictions of the {scorer} model trained on {dataset}; the improvement is what "
    "the model predicts, "
    "not measured human recall. Test a rewritten ad with people before trusting it."
)


def readvise_record(
    scoring: AdScorer,
    gen: Generator,
    aspects,
    rounds: int,
    candidates: int,
    history: list[dict],
    stop: str,
    notes: list[str],
    original: Candidate,
    ranked: list[Candidate],
) -> dict[str, Any]:
    """What readvise.json holds: the ad, the scorer, the writer, every round, the original and every
    candidate (best first; the first `candidates` are the ones returned), the notes, the honest sentence."""
    top = ranked[:candidates]
    return {
        "ad": scoring.ad,
        "video": scoring.video,
        "scorer": scoring.name,
        "scorer_source": scoring.meta.get("source"),
        "scorer_cv": scoring.meta.get("cv"),
        "targets": scoring.targets,
        "field": scoring.field,
        "writer": gen.writer.identity(),
        "aspects": [a.name for a in aspects],
        "rounds_run": len(history),
        "rounds_max": rounds,
        "candidates_per_round": candidates,
        "stop": stop,
        "history": history,
        "honest": HONEST.format(scorer=scoring.name, dataset=scoring.project.dataset.root.name),
        "notes": notes,
        "original": _cand_json(original, original),
        "ranked": [_cand_json(c, original) for c in top],
        "all": [_cand_json(c, original) for c in ranked],
        "generated": gen.generated,
        "from_log": gen.cached,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def result_attrs(report: dict[str, Any], out: Path) -> dict[str, Any]:
    """The returned DataFrame's attrs: the original, the notes, the honest sentence, why the rounds stopped
    and the two files."""
    return {
        "original": report["original"],
        "notes": report["notes"],
        "honest": report["honest"],
        "stop": report["stop"],
        "json": str(out / "readvise.json"),
        "markdown": str(out / "readvise.md"),
        "rounds_run": report["rounds_run"],
    }


def moved(c: Candidate, original: Candidate, k: int = 3) -> list[tuple[str, float]]:
    """The k aspects whose rating changed most from the original, (aspect, change), largest first."""
    d = [
        (a, float(c.ratings[a] - original.ratings[a]))
        for a in c.ratings
        if c.ratings.get(a) is not None and original.ratings.get(a) is not None
    ]
    d = [x for x in d if x[1] != 0]
    return sorted(d, key=lambda x: (-abs(x[1]), x[0]))[:k]


def reasons_moved(c: Candidate, original: Candidate, k: int = 3) -> list[tuple[str, float]]:
    """The k reasons whose contribution to the score changed most from the original's, (reason in words,
    change), largest first: the scorer's own explanation (memo.predictors' protocol), [] where it has
    none."""
    if not c.contributions or not original.contributions:
        return []
    keys = set(c.contributions) | set(original.contributions)
    d = [(w, c.contributions.get(w, 0.0) - original.contributions.get(w, 0.0)) for w in keys]
    d = [x for x in d if abs(x[1]) > 1e-12]
    return sorted(d, key=lambda x: (-abs(x[1]), x[0]))[:k]


def _why(c: Candidate, original: Candidate) -> str:
    """Why a candidate scores as it does against the original: the scorer's reasons that moved, where it
    explains itself; else the aspect ratings that moved."""
    r = reasons_moved(c, original)
    if r:
        return ", ".join(f"{w} {v:+.3f}" for w, v in r)
    if c.contributions and original.contributions:
        return "no reason moved"
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
        "contributions": c.contributions,
        "reasons_moved": reasons_moved(c, original) if c is not original else [],
        "why": _why(c, original) if c is not original else "",
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
        "| rank | id | round | focus | predicted | change | why (the scorer's reasons that moved, else "
        "aspect ratings) |",
        "|---|---|---|---|---|---|---|",
    ]
    for k, c in enumerate(rep["ranked"], 1):
        why = c["why"]
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
