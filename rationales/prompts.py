"""Prompt templates (files, versioned by their hash), chat messages for one ad, and the rating parser.

    tpl = load_template("default")                   # rationales/prompts/default.txt, or a file path
    tpl.hash                                         # SHA-256 of the file: part of the cache key
    # [{"role": "system"|"user"|"assistant", "content": ...}]
    msgs = tpl.messages(aspect, ad, exemplars=[...])
    parse_rating("... Rating: 7/10")                  # 7.0; None when missing or malformed
    plain_prompt(msgs)  # one completion text, for base models without a chat template

A template file holds sections that start with a line `=== NAME ===` (system, user, answer), each
a Jinja template; lines before the first section are comments. A few-shot prompt is the system
section, then for each exemplar a user turn (the exemplar ad) and an assistant turn (its answer),
then the user turn of the ad itself. Models without a system role (Gemma-3) get it prepended to
the first user turn by their own chat template.

Base models (google/gemma-3-270m, any tokenizer without a chat template) get the same messages as
one plain completion text (`plain_prompt`): the system text, each exemplar's ad and its answer
after "Answer:", the ad, and an open "Answer:" (or "Rating (1-10):" when a rating is read).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memo.errors import ConfigError

PROMPTS_DIR = Path(__file__).parent / "prompts"
SECTIONS = ("system", "user", "answer")
_SECTION = re.compile(r"^=== *([a-z_]+) *===\s*$", re.M)


@dataclass
class Exemplar:
    """One few-shot example: another ad from the training fold and the answer shown for it."""

    video: str
    ad: dict[str, str]
    rationale: str
    memorability: str = ""  # low | medium | high, or "" when labels are not shown


@dataclass
class Template:
    name: str
    text: str
    sections: dict[str, Any] = field(repr=False, default_factory=dict)  # name -> jinja2.Template

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    def render(self, section: str, **values: Any) -> str:
        return self.sections[section].render(**values).strip()

    def messages(
        self, aspect, ad: dict[str, str], exemplars: list[Exemplar] = (), images: list | None = None
    ) -> list[dict]:
        """Chat messages for one (ad, aspect); `images` (PIL) go before the ad's text in its turn."""
        a = {"name": aspect.name, "definition": aspect.definition, "look_for": aspect.look_for}
        msgs: list[dict] = []
        system = self.render("system", aspect=a)
        if system:
            msgs.append({"role": "system", "content": system})
        for ex in exemplars:
            msgs.append(
                {
                    "role": "user",
                    "content": self.render("user", aspect=a, ad=ex.ad, memorability=ex.memorability),
                }
            )
            msgs.append(
                {"role": "assistant", "content": self.render("answer", aspect=a, rationale=ex.rationale)}
            )
        text = self.render("user", aspect=a, ad=ad, memorability="")
        if images:
            content = [{"type": "image", "image": im} for im in images] + [{"type": "text", "text": text}]
            msgs.append({"role": "user", "content": content})
        else:
            msgs.append({"role": "user", "content": text})
        return msgs


def load_template(name_or_path: str) -> Template:
    """A template by name (rationales/prompts/NAME.txt) or by file path."""
    import jinja2

    p = Path(name_or_path).expanduser()
    if not p.is_file():
        p = PROMPTS_DIR / f"{name_or_path}.txt"
    if not p.is_file():
        known = sorted(q.stem for q in PROMPTS_DIR.glob("*.txt"))
        raise ConfigError(
            f"prompt template {name_or_path!r} is neither a file nor one of: {', '.join(known)}; fix "
            "[rationale] prompt."
        )
    text = p.read_text(encoding="utf-8")
    parts = _SECTION.split(text)  # [comments, name1, body1, name2, body2, ...]
    bodies = {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}
    missing = [s for s in ("user", "answer") if s not in bodies]
    if missing:
        raise ConfigError(
            f"prompt template {p} lacks the section(s) {', '.join(missing)}; add lines '=== user ===' "
            "and '=== answer ==='."
        )
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)
    try:
        sections = {s: env.from_string(bodies.get(s, "").strip("\n")) for s in SECTIONS}
    except jinja2.TemplateSyntaxError as e:
        raise ConfigError(f"prompt template {p} line {e.lineno}: {e.message}; fix the Jinja syntax.") from e
    return Template(p.stem, text, sections)


def window_text(text: str, max_chars: int) -> str:
    """Fit a long text into `max_chars`: keep the head (2/3) and the tail (1/3), cut at spaces, mark the gap.

    Ads say the brand and the call to action at the start and the end, so both ends are kept.
    """
    text = " ".join(str(text or "").split())
    if max_chars <= 0 or len(text) <= max_chars:
        return text
    head_n, tail_n = (2 * max_chars) // 3, max_chars // 3 - 7
    head = text[:head_n].rsplit(" ", 1)[0] if " " in text[:head_n] else text[:head_n]
    tail = text[len(text) - max(tail_n, 0) :]
    tail = tail.split(" ", 1)[1] if " " in tail else tail
    return f"{head} [...] {tail}"


def ad_fields(row: Any, transcript_chars: int, other_chars: int | None = None) -> dict[str, str]:
    """The text fields a prompt shows, from a split-table row (missing fields -> "")."""

    def get(k: str) -> str:
        v = row.get(k) if hasattr(row, "get") else None
        if v is None or (isinstance(v, float) and v != v):
            return ""
        return str(v)

    cap = other_chars if other_chars is not None else max(transcript_chars // 2, 200)
    return {
        "title": window_text(get("title"), cap),
        "description": window_text(get("description"), cap),
        "tags": window_text(get("tags").replace(",", ", "), min(cap, 200)),
        "transcript": window_text(get("transcript") or get("captions"), transcript_chars),
    }


# ----------------------------------------------------------------------------- base models

ANSWER = "Answer:"
RATING_SLOT = "Rating (1-10):"


def plain_prompt(messages: list[dict], answer: str = ANSWER) -> str:
    """Chat messages -> one completion text for a base model (no chat template), ending in an open `answer`.

    system text, then each user turn followed by its assistant turn as "Answer: ...", then the last
    user turn and `answer` with nothing after it: a base model continues from there. Image parts
    are dropped (a base model reads text only).
    """

    def text(m: dict) -> str:
        c = m.get("content")
        if isinstance(c, str):
            return c.strip()
        return "\n".join(p.get("text", "").strip() for p in c if p.get("type") == "text")

    parts: list[str] = []
    for m in messages:
        if m["role"] == "assistant":
            parts.append(f"{ANSWER} {text(m)}")
        else:
            parts.append(text(m))
    parts.append(answer)
    return "\n\n".join(p for p in parts if p)


# ----------------------------------------------------------------------------- ratings

# "Rating: 7/10", "**Rating:** 8", "rating of 6.5", "rated 9/10" (the last one in the text wins)
_RATED = re.compile(
    r"\brat(?:ing|ed)\b[^0-9a-z\n]{0,6}(?:(?:of|is|at|=)\b[^0-9a-z\n]{0,4})?(\d{1,3}(?:\.\d)?)(?![\d])", re.I
)
# "7/10", "7 / 10", "7 out of 10"
_OUT_OF = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d)?)\s*(?:/|out of)\s*10(?![\d])", re.I)


def parse_rating(text: str | None) -> float | None:
    """The 1-10 rating at the end of a rationale, or None when it is missing or malformed (never raises).

    The last "Rating: N" (or "N/10", "N out of 10") counts; a value outside 1-10 is malformed.
    """
    if not text:
        return None
    found = [(m.start(), m.group(1)) for pat in (_RATED, _OUT_OF) for m in pat.finditer(text)]
    if not found:
        return None
    _, value = max(found)
    try:
        v = float(value)
    except ValueError:
        return None
    return v if 1.0 <= v <= 10.0 else None
