"""Ratings read from the next-token distribution: one forward pass per (ad, aspect), no text generated.

    rater = Rater(Writer("gemma3-270m"))              # any causal LM; chat template or not
    out = rater.rate(groups, batch_size=8)             # groups[g] = one ad's chat prompts, one per aspect
    out.expected, out.std, out.probs  # (N,), (N,), (N, 10) over the labels 1..10, N = all prompts
    df = rate_videos(project, ["humor", "emotion"])   # index video id; columns humor, humor_std, ...

Why: a small or base model (gemma-3-270m) rarely ends a generated rationale with a parseable
"Rating: N/10", but its distribution over the next token at the rating slot is always there.
The prompt (template `rating`, the ad first and the aspect last) ends at the rating slot: for a
chat model its turn opens with "Rating (1-10):", a base model's plain completion text ends with it
(prompts.plain_prompt). The probabilities of the ten labels there, renormalised over the ten,
give the expected rating and its spread (std); `mass` is how much of the next-token probability
fell on labels at all (low mass: the model did not take the slot as a rating).

"10" is two tokens in Gemma's vocabulary ("1", "0": every digit is a token), so its first token is
also the label "1". The prompt is fed with the shared first token appended, and the same forward
pass gives both distributions: P(k) for k = 2..9 is the first-token probability; P(10) = P("1") *
P("0" | "1"); P(1) = P("1") * P(no further digit | "1"). Tokenizers that have one token per label
need no appended token. Label tokens are found by tokenizing the slot followed by each label, so a
leading-space token (SentencePiece "▁") is handled too.

Batching: prompts sorted by length, left-padded, positions counted from each prompt's first real
token (so a prompt gives the same rating alone or in a batch), and only the last two positions'
logits are computed (`logits_to_keep`): the 262k-row LM head is read for two positions, not all.
The prompts of one ad agree up to the aspect (the template puts the ad first), so by default that
shared prefix is run once per ad and its KV cache reused for each aspect's rest (mode "shared").
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from memo.errors import MemoError
from memo.rationales.prompts import RATING_SLOT, plain_prompt

if TYPE_CHECKING:
    import pandas as pd

    from memo.project import Project
    from memo.rationales.writer import Writer

LABELS = tuple(str(k) for k in range(1, 11))
STYLES = ("auto", "chat", "plain")


@dataclass
class Ratings:
    """Per prompt: the label distribution and what follows from it."""

    probs: np.ndarray  # (N, 10) over the labels 1..10, rows sum to 1
    mass: np.ndarray  # (N,) next-token probability on any label before renormalising
    seconds: float  # wall time of the forward passes

    @property
    def expected(self) -> np.ndarray:  # (N,)
        return self.probs @ np.arange(1, 11, dtype=np.float64)

    @property
    def std(self) -> np.ndarray:  # (N,)
        k = np.arange(1, 11, dtype=np.float64)
        return np.sqrt(np.clip(self.probs @ k**2 - self.expected**2, 0.0, None))


@dataclass
class LabelTokens:
    """How the ten labels continue the rating slot in this tokenizer."""

    lead: list[int]  # tokens every label starts with (e.g. a lone "▁"), appended to the prompt
    first: list[int]  # (10,) the first token of each label after `lead`
    second: list[int | None]  # (10,) the second token, or None for one-token labels
    # the first token of the two-token label(s), appended too (None: all labels are one token)
    shared: int | None
    digits: list[int]  # tokens that would continue a number after `shared` (digits)


def label_tokens(tokenizer, slot: str = RATING_SLOT) -> LabelTokens:
    """Tokenize the slot followed by " 1" .. " 10" and find what each label adds after the slot."""
    base = tokenizer(slot, add_special_tokens=False)["input_ids"]
    tails = []
    for lab in LABELS:
        full = tokenizer(f"{slot} {lab}", add_special_tokens=False)["input_ids"]
        if full[: len(base)] != base:
            raise MemoError(
                f"the tokenizer merges the rating slot {slot!r} with the label {lab!r}; ratings cannot "
                "be read from it."
            )
        tails.append(full[len(base) :])
    lead: list[int] = []
    while all(len(t) > len(lead) + 1 for t in tails) and len({t[len(lead)] for t in tails}) == 1:
        lead.append(tails[0][len(lead)])
    rest = [t[len(lead) :] for t in tails]
    if any(len(r) > 2 for r in rest):
        raise MemoError(
            "a rating label is more than two tokens in this tokenizer; ratings cannot be read in one "
            "forward pass."
        )
    first = [r[0] for r in rest]
    second = [r[1] if len(r) == 2 else None for r in rest]
    shared = {r[0] for r in rest if len(r) == 2}
    if len(shared) > 1:
        raise MemoError(
            "two-token rating labels start with different tokens; ratings cannot be read in one forward pass."
        )
    shared_tok = shared.pop() if shared else None
    digit_ids = {i for r in rest for i in r}
    for d in "0123456789":
        ids = tokenizer(d, add_special_tokens=False)["input_ids"]
        if len(ids) == 1:
            digit_ids.add(ids[0])
    return LabelTokens(lead, first, second, shared_tok, sorted(digit_ids))


def label_probs(first_logits, next_logits, lt: LabelTokens) -> tuple[np.ndarray, np.ndarray]:
    """(B, V) logits at the slot and after the shared token -> (B, 10) label probabilities, (B,) label
    mass."""
    import torch

    p1 = torch.softmax(first_logits.double(), dim=-1)  # (B, V)
    raw = p1[:, lt.first].clone()  # (B, 10)
    if lt.shared is not None:
        q = torch.softmax(next_logits.double(), dim=-1)  # (B, V): what follows the shared first token
        stop = 1.0 - q[:, lt.digits].sum(dim=-1)  # the number ends after the shared token
        for k, (f, s) in enumerate(zip(lt.first, lt.second)):
            if s is not None:
                raw[:, k] = p1[:, f] * q[:, s]
            elif f == lt.shared:
                raw[:, k] = p1[:, f] * stop
    raw = raw.clamp_min(0.0)
    mass = raw.sum(dim=-1)  # (B,)
    probs = raw / mass.clamp_min(1e-300)[:, None]
    return probs.float().cpu().numpy(), mass.float().cpu().numpy()


class Rater:
    """Reads 1-10 ratings from a Writer's model (loaded once, shared with generation)."""

    def __init__(self, writer: Writer, style: str = "auto", slot: str = RATING_SLOT):
        if style not in STYLES:
            raise MemoError(f"rating prompt style {style!r} is not one of {', '.join(STYLES)}.")
        self.writer = writer
        self.style = style
        self.slot = slot
        self._lt: LabelTokens | None = None

    def load(self) -> Rater:
        self.writer.load()
        if self.writer._llm is not None:
            raise MemoError(
                "ratings from the next-token distribution need the transformers backend; set "
                "[rationale] backend = 'transformers'."
            )
        if self._lt is None:
            self._lt = label_tokens(self.writer._tokenizer, self.slot)
        return self

    @property
    def chat(self) -> bool:
        tok = self.writer._tokenizer
        if self.style == "auto":
            return getattr(tok, "chat_template", None) is not None
        return self.style == "chat"

    def prompt_text(self, messages: list[dict]) -> str:
        """The text that ends at the rating slot (chat template + the model's turn opening, or plain)."""
        self.load()
        if self.chat:
            text = self.writer._tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
            return text + self.slot
        return plain_prompt(messages, answer=self.slot)

    def encode_group(self, group: list[list[dict]]) -> tuple[list[int], list[list[int]]]:
        """Token ids of one ad's prompts (one per aspect): their shared start, and each one's rest.

        The texts are cut where they stop agreeing (at the last line break before that point), so the
        prompts of one ad share a prefix that is encoded once; every way of running them (one at a
        time, batched, prefix shared) feeds exactly these tokens. The label lead (a lone "▁") and the
        two-token label's first token are appended to each rest.
        """
        tok = self.writer._tokenizer
        texts = [self.prompt_text(m) for m in group]
        prefix, rests = split_common(texts)
        # a chat template writes <bos> itself; a plain text gets the tokenizer's own special tokens
        head = tok(prefix, add_special_tokens=not self.chat)["input_ids"] if prefix else []
        if not prefix and not self.chat and tok.bos_token_id is not None:
            head = [tok.bos_token_id]
        lt = self._lt
        tail = lt.lead + ([lt.shared] if lt.shared is not None else [])
        return list(head), [list(tok(r, add_special_tokens=False)["input_ids"]) + tail for r in rests]

    def rate(
        self,
        groups: list[list[list[dict]]],
        batch_size: int = 8,
        mode: str = "shared",
        on_batch: Callable[[list[int], Ratings], None] | None = None,
        progress: bool = False,
    ) -> Ratings:
        """The label distribution of every prompt; `groups[g]` holds one ad's prompts (one per aspect).

        Rows of the result follow the groups in order, each group's prompts in order. mode:
        "shared" (default): batches of `batch_size` ads, each ad's common prefix run once, its cache
        reused for every aspect's rest; "batched": batches of `batch_size` whole prompts; "single":
        one prompt at a time (the naive way, for benchmarks). All three feed the same tokens, so
        they agree up to float rounding. `on_batch(rows, ratings)` is called after each batch.
        """
        from tqdm.auto import tqdm

        if mode not in ("shared", "batched", "single"):
            raise MemoError(f"rating mode {mode!r} is not one of shared, batched, single.")
        self.load()
        enc = [self.encode_group(g) for g in groups]
        rows, start = [], 0
        for g in groups:
            rows.append(list(range(start, start + len(g))))
            start += len(g)
        n = start
        probs = np.zeros((n, len(LABELS)), np.float32)
        mass = np.zeros(n, np.float32)
        seconds = 0.0

        def done(idx: list[int], p: np.ndarray, m: np.ndarray, dt: float) -> None:
            nonlocal seconds
            probs[idx], mass[idx] = p, m
            seconds += dt
            if on_batch:
                on_batch(idx, Ratings(p, m, dt))
            bar.update(len(idx))

        with tqdm(
            total=n, desc=f"ratings ({mode})", unit="prompt", disable=not progress, dynamic_ncols=True
        ) as bar:
            if mode == "shared":
                order = sorted(range(len(groups)), key=lambda g: len(enc[g][0]))
                bs = max(batch_size, 1)
                for a in range(0, len(order), bs):
                    gs = order[a : a + bs]
                    t0 = time.perf_counter()
                    outs = self._forward_shared([enc[g] for g in gs])  # per aspect slot k: (B, 10), (B,)
                    dt = time.perf_counter() - t0
                    idx = [rows[g][k] for k in range(len(outs)) for g in gs if k < len(rows[g])]
                    p = np.concatenate([o[0] for o in outs])
                    m = np.concatenate([o[1] for o in outs])
                    done(idx, p, m, dt)
            else:
                full = [
                    (rows[g][k], enc[g][0] + rest)
                    for g in range(len(groups))
                    for k, rest in enumerate(enc[g][1])
                ]
                full.sort(key=lambda t: len(t[1]))
                bs = 1 if mode == "single" else max(batch_size, 1)
                for a in range(0, len(full), bs):
                    part = full[a : a + bs]
                    t0 = time.perf_counter()
                    p, m = self._forward([ids for _, ids in part])
                    done([i for i, _ in part], p, m, time.perf_counter() - t0)
        return Ratings(probs, mass, seconds)

    def _batch(self, seqs: list[list[int]]):
        """Left-padded ids and mask (B, L) and positions counted from each row's first real token."""
        import torch

        pad = self.writer._tokenizer.pad_token_id or 0
        L = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), L), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), L), dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, L - len(s) :] = torch.tensor(s, dtype=torch.long)
            mask[r, L - len(s) :] = 1
        return ids, mask

    def _probs(self, logits):
        """(B, 2, V) logits of the last two positions -> label probabilities and mass."""
        if self._lt.shared is None:
            return label_probs(logits[:, -1], None, self._lt)
        return label_probs(logits[:, -2], logits[:, -1], self._lt)

    def _forward(self, seqs: list[list[int]]):
        import torch

        ids, mask = self._batch(seqs)  # (B, L)
        pos = (mask.cumsum(-1) - 1).clamp_min(0)
        dev = self.writer.device
        with torch.inference_mode():
            out = self.writer._model(
                input_ids=ids.to(dev),
                attention_mask=mask.to(dev),
                position_ids=pos.to(dev),
                logits_to_keep=2,
                use_cache=False,
            )
        return self._probs(out.logits[:, -2:, :].float())

    def _forward_shared(self, encs: list[tuple[list[int], list[list[int]]]]):
        """One prefill of the ads' prefixes, then each aspect's rest on a copy of the cache."""
        import copy

        import torch

        model, dev = self.writer._model, self.writer.device
        if any(not h for h, _ in encs):  # nothing shared (a single aspect): whole prompts
            k_max = max(len(r) for _, r in encs)
            return [self._forward([h + r[k] for h, r in encs if k < len(r)]) for k in range(k_max)]
        pids, pmask = self._batch([h for h, _ in encs])  # (B, P)
        ppos = (pmask.cumsum(-1) - 1).clamp_min(0)
        # transformers >= 5.2x names the KV cache `cache` (argument and output); older ones `past_key_values`
        import inspect

        cache_arg = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        with torch.inference_mode():
            out = model(
                input_ids=pids.to(dev),
                attention_mask=pmask.to(dev),
                position_ids=ppos.to(dev),
                logits_to_keep=1,
                use_cache=True,
            )
        cache = getattr(out, "cache", None) if cache_arg == "cache" else out.past_key_values
        outs = []
        k_max = max(len(r) for _, r in encs)
        for k in range(k_max):
            if any(k >= len(r) for _, r in encs):  # ads with fewer prompts than others: run whole prompts
                outs.append(self._forward([h + r[k] for h, r in encs if k < len(r)]))
                continue
            sids, smask = self._batch([r[k] for _, r in encs])  # (B, S), left-padded between prefix and rest
            mask = torch.cat([pmask, smask], dim=1)  # (B, P + S)
            pos = (mask.cumsum(-1) - 1).clamp_min(0)[:, pids.shape[1] :]
            with torch.inference_mode():
                out = model(
                    input_ids=sids.to(dev),
                    attention_mask=mask.to(dev),
                    position_ids=pos.to(dev),
                    logits_to_keep=2,
                    use_cache=True,
                    **{cache_arg: copy.deepcopy(cache)},
                )
            outs.append(self._probs(out.logits[:, -2:, :].float()))
        return outs


def split_common(texts: list[str]) -> tuple[str, list[str]]:
    """The texts' common start, cut after its last line break, and what follows it in each text."""
    if len(texts) < 2:
        return "", list(texts)
    n = 0
    for chars in zip(*texts):
        if len(set(chars)) > 1:
            break
        n += 1
    cut = texts[0].rfind("\n", 0, n) + 1
    while (
        cut > 0
        and all(len(t) > cut for t in texts)
        and len({t[cut] for t in texts}) == 1
        and texts[0][cut] == "\n"
    ):
        cut += 1  # keep a run of line breaks whole (it is one token)
    return texts[0][:cut], [t[cut:] for t in texts]


def rating_messages(template, aspect, row, cfg) -> list[dict]:
    """The chat messages of one (ad, aspect) rating prompt: the ad's fields windowed per [rationale]."""
    from memo.rationales.prompts import ad_fields

    return template.messages(aspect, ad_fields(row, cfg.transcript_chars))


def rate_table(
    rater: Rater,
    table: pd.DataFrame,
    aspects: list,
    cfg=None,
    template: str = "rating",
    batch_size: int = 8,
    mode: str = "shared",
    progress: bool = False,
) -> pd.DataFrame:
    """Ratings of every row (ad) of a split table for each aspect: columns `<aspect>`, `<aspect>_std`,
    `<aspect>_mass`."""
    import pandas as pd

    from memo.config import RationaleConfig
    from memo.rationales.prompts import load_template

    cfg = cfg or RationaleConfig()
    tpl = load_template(template)
    groups = [[rating_messages(tpl, a, table.loc[v], cfg) for a in aspects] for v in table.index]
    r = rater.rate(groups, batch_size=batch_size, mode=mode, progress=progress)
    df = pd.DataFrame(index=pd.Index([str(v) for v in table.index], name="id"))
    A = len(aspects)
    for k, a in enumerate(aspects):  # row g * A + k is ad g, aspect k
        df[a.name] = r.expected[k::A]
        df[f"{a.name}_std"] = r.std[k::A]
        df[f"{a.name}_mass"] = r.mass[k::A]
    return df


def rate_videos(
    project: Project,
    aspects: list[str] | None = None,
    model: str | None = None,
    splits: list[str] | None = None,
    limit: int | None = None,
    batch_size: int | None = None,
    style: str = "auto",
    template: str = "rating",
    mode: str = "shared",
    device: str = "auto",
    progress: bool = True,
    writer: Writer | None = None,
) -> pd.DataFrame:
    """Ratings from the next-token distribution for every video of the project's splits (no text generated).

    Model: `model`, else [rationale] model, else [models] llm (as `memo rationale`). Returns a table
    indexed by video id with, per aspect, the expected rating (1-10), its std and the label mass,
    and a `split` column. `put_named_stream(project, "ratings", ...)` stores the expected ratings.
    """
    import pandas as pd

    from memo.rationales.aspects import resolve_aspects
    from memo.rationales.runner import writer_for

    cfg = project.config.rationale
    chosen = resolve_aspects(aspects or cfg.aspects, project.config)
    ds = project.dataset
    names = splits or list(ds.splits)
    if writer is None:
        writer = writer_for(project, device, model=model)
    rater = Rater(writer, style=style)
    parts = []
    for s in names:
        table = ds.splits[s].table
        table = table.iloc[:limit] if limit else table
        df = rate_table(
            rater,
            table,
            chosen,
            cfg,
            template=template,
            batch_size=batch_size or cfg.batch_size,
            mode=mode,
            progress=progress,
        )
        df.insert(0, "split", s)
        parts.append(df)
    return pd.concat(parts)


def log_ratings(
    project: Project,
    writer: Writer,
    log,
    items: list[tuple[str, str, Any]],
    identity: dict[str, str],
    progress: bool = True,
) -> tuple[dict[tuple[str, str, str], float], int]:
    """Distribution ratings of (split, video, Aspect) items, cached in the generation log's `ratings` table.

    Each item's key hashes the video, aspect, writer identity (model, revision, adapter), the rating
    template and the prompt, so only what the log lacks is rated (in batches of [rationale]
    batch_size ads, each batch logged at once: a killed run resumes). Returns
    ({(split, video, aspect name): expected rating}, how many were rated now).
    """
    from memo.rationales.log import RatingRecord, cache_key, sha
    from memo.rationales.prompts import load_template

    cfg = project.config.rationale
    tpl = load_template("rating")
    jobs = []  # (split, video, aspect name, key, messages)
    for s, v, a in items:
        msgs = rating_messages(tpl, a, project.dataset.splits[s].table.loc[v], cfg)
        key = cache_key(
            video=v,
            aspect=a.name,
            stage="rating",
            **identity,
            template_hash=tpl.hash,
            prompt_hash=sha(msgs),
            slot=RATING_SLOT,
        )
        jobs.append((s, v, a.name, key, msgs))
    have = log.get_ratings(j[3] for j in jobs)
    todo = list({j[3]: j for j in jobs if j[3] not in have}.values())
    if todo:
        by_ad: dict[tuple[str, str], list] = {}
        for j in todo:
            by_ad.setdefault((j[0], j[1]), []).append(j)
        flat = [j for g in by_ad.values() for j in g]  # the order of Rater.rate's rows: ad-major
        rater = Rater(writer).load()
        style = "chat" if rater.chat else "plain"

        def on_batch(idx: list[int], r: Ratings) -> None:
            exp, std = r.expected, r.std
            log.add_ratings(
                [
                    RatingRecord(
                        key=flat[i][3],
                        video=flat[i][1],
                        split=flat[i][0],
                        aspect=flat[i][2],
                        expected=float(exp[n]),
                        std=float(std[n]),
                        mass=float(r.mass[n]),
                        probs=r.probs[n].tolist(),
                        model=identity["model"],
                        revision=identity["revision"],
                        adapter=identity["adapter"] or None,
                        template=tpl.name,
                        template_hash=tpl.hash,
                        prompt_hash=sha(flat[i][4]),
                        style=style,
                        seconds=round(r.seconds / max(len(idx), 1), 4),
                    )
                    for n, i in enumerate(idx)
                ]
            )

        rater.rate(
            [[j[4] for j in g] for g in by_ad.values()],
            batch_size=cfg.batch_size,
            on_batch=on_batch,
            progress=progress,
        )
        have = log.get_ratings(j[3] for j in jobs)
    return {(s, v, a): float(have[k]["expected"]) for s, v, a, k, _ in jobs if k in have}, len(todo)


def describe(rater: Rater) -> dict[str, Any]:
    """What a benchmark or manifest records about how ratings were read."""
    lt = rater.load()._lt
    tok = rater.writer._tokenizer
    return {
        "style": "chat" if rater.chat else "plain",
        "slot": rater.slot,
        "lead": tok.convert_ids_to_tokens(lt.lead),
        "first": tok.convert_ids_to_tokens(lt.first),
        "shared": tok.convert_ids_to_tokens([lt.shared])[0] if lt.shared is not None else None,
    }
