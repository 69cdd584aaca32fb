"""The writer: batched chat generation with any causal LM (a base model without a chat template gets a plain
completion text).

    writer = Writer("google/gemma-3-4b-it", adapter=None, device="auto", backend="transformers")
    outs = writer.generate([[{"role": "user", "content": "Hi"}], ...], max_new_tokens=96)
    outs[0].text, outs[0].tokens, outs[0].seconds

Used by `memo rationale` (one prompt per ad and aspect) and by MindMem-ReAd (candidate ad scripts).
It knows nothing of ads: prompts in, texts out. Caching and logging are the caller's (see log.py).

Batching: prompts are sorted by length (so a batch pads little), cut into batches of `batch_size`,
left-padded (a decoder-only model continues from the last position, so real tokens must end at
the right edge; the attention mask hides the pads and positions are counted from the first real
token), generated together, and returned in the input order. Greedy by default (temperature 0),
so a prompt gives the same text alone or in a batch; temperature > 0 samples (seeded per batch).

Backends: `transformers` always works (CPU, CUDA, MPS; bfloat16 on GPU and on CPUs with native bf16,
as `[models] precision` says). `vllm` (if installed)
serves the same model with paged attention and continuous batching for throughput on GPUs, split
across `tensor_parallel` GPUs; LoRA adapters are applied per request.

Stop strings: a chat model ends its turn with a token; a base model (no chat template) has no
such token and would run on to max_new_tokens, writing the next "Answer:" or a new ad. Its plain
prompt separates every part by a blank line, so by default its generation stops at the first
blank line (PLAIN_STOPS; `stop=` overrides, [] for none) and the text is cut there.

Multimodal Gemma-3 (a folder with a vision tower, e.g. google/gemma-3-4b-it): a user turn may hold
`{"type": "image", "image": PIL.Image}` parts; the model's processor turns them into image tokens.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from memo.config import RationaleBackend
from memo.errors import ConfigError, ModelNotFound

BACKENDS = get_args(RationaleBackend)  # [rationale] backend, from memo.config's Literal
# where a base model's answer ends: prompts.plain_prompt separates its parts by a blank line, so a
# blank line after the answer starts the next part ("Answer:", another ad) that nobody asked for
PLAIN_STOPS = ("\n\n",)


@dataclass
class Generation:
    text: str  # the generated text, special tokens removed, stripped
    tokens: int  # generated tokens, the stop token included, padding excluded
    seconds: float  # wall time of its batch divided by the batch's size
    prompt_tokens: int = 0


def adapter_revision(adapter: str | None) -> str:
    """A hash of an adapter folder's bytes (adapters are small; retraining changes the hash)."""
    if not adapter:
        return ""
    p = Path(adapter).expanduser()
    if not p.is_dir():
        raise ModelNotFound(
            f"adapter folder {adapter} does not exist; train one with `memo rationale finetune` or fix "
            "--adapter."
        )
    h = hashlib.sha256()
    for f in sorted(p.rglob("*")):
        if f.is_file() and not f.name.startswith("."):
            h.update(f.relative_to(p).as_posix().encode())
            h.update(f.read_bytes())
    return "adapter-" + h.hexdigest()[:12]


def _has_images(messages: list[dict]) -> int:
    return sum(
        1
        for m in messages
        if isinstance(m.get("content"), list)
        for part in m["content"]
        if part.get("type") == "image"
    )


class Writer:
    """A causal LM with a chat template, loaded once, generating for batches of chat prompts."""

    def __init__(
        self,
        model: str,
        adapter: str | None = None,
        device: str = "auto",
        backend: str = "transformers",
        tensor_parallel: int = 1,
        precision: str = "auto",
    ):
        if backend not in BACKENDS:
            raise ConfigError(f"[rationale] backend = {backend!r} is not one of {', '.join(BACKENDS)}.")
        self.model_name = model
        self.adapter = str(adapter) if adapter else None
        self.device_pref = device
        self.backend = backend
        self.tensor_parallel = tensor_parallel
        self.precision = precision  # [models] precision: auto | fp32 | bf16 (memo.models.use_bf16)
        self._model = None
        self._tokenizer = None
        self._processor = None  # multimodal models only
        self._llm = None  # vllm engine
        self.device = None

    # -- identity (cheap)
    def identity(self) -> dict[str, str]:
        """What the cache key records about the weights: model name and revision, adapter hash."""
        from memo.models import model_revision

        return {
            "model": self.model_name,
            "revision": model_revision(self.model_name),
            "adapter": adapter_revision(self.adapter),
        }

    # -- loading
    def load(self) -> Writer:
        if self._model is not None or self._llm is not None:
            return self
        from memo.models import load_error, pick_device, resolve_model, use_bf16

        path = resolve_model(self.model_name)
        if self.adapter:
            adapter_revision(self.adapter)  # a clear error for a missing folder, before loading anything
        if self.backend == "vllm":
            return self._load_vllm(path)
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        self.device = pick_device(self.device_pref)
        try:
            config = AutoConfig.from_pretrained(path)
            multimodal = getattr(config, "vision_config", None) is not None
            dtype = torch.bfloat16 if use_bf16(self.precision, self.device) else torch.float32
            if multimodal:
                from transformers import AutoModelForImageTextToText, AutoProcessor

                self._processor = AutoProcessor.from_pretrained(path)
                self._tokenizer = self._processor.tokenizer
                model = AutoModelForImageTextToText.from_pretrained(path, dtype=dtype)
            else:
                self._tokenizer = AutoTokenizer.from_pretrained(path)
                model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        except (OSError, ValueError) as e:
            raise load_error(self.model_name, e) from e
        # a base model (no chat template, e.g. gemma3-270m) gets each prompt as one plain completion text
        self.chat = not (
            self._tokenizer.chat_template is None
            and (self._processor is None or getattr(self._processor, "chat_template", None) is None)
        )
        self._tokenizer.padding_side = "left"
        if self._tokenizer.pad_token is None:  # some causal LMs ship none; eos is the usual stand-in
            self._tokenizer.pad_token = self._tokenizer.eos_token
        if self.adapter:
            from peft import PeftModel

            # merged into the weights: generation then runs at the base model's speed
            model = PeftModel.from_pretrained(model, self.adapter).merge_and_unload()
        self._model = model.to(self.device).eval()
        return self

    def _load_vllm(self, path: str) -> Writer:
        try:
            from vllm import LLM
        except ImportError:
            raise ConfigError(
                "[rationale] backend = 'vllm' needs vllm; `pip install 'memo[vllm]'` on a GPU machine, "
                "or use backend = 'transformers'."
            ) from None
        self._llm = LLM(
            model=path,
            tensor_parallel_size=self.tensor_parallel,
            enable_lora=bool(self.adapter),
            dtype="float32" if self.precision == "fp32" else "bfloat16",
        )
        self._tokenizer = self._llm.get_tokenizer()
        self.device = "cuda"
        return self

    @property
    def tokenizer(self):
        self.load()
        return self._tokenizer

    # -- prompt length (tokenizer and config only: cheap even when every text is in the log)
    IMAGE_TOKENS = 260  # what one image costs a Gemma-3 prompt (256 soft tokens and its markers)

    def max_positions(self) -> int | None:
        """The longest sequence (prompt + answer) the model takes, from its config; None when it does not
        say."""
        if getattr(self, "_max_positions", 0) == 0:
            from memo.models import resolve_model

            try:
                from transformers import AutoConfig

                cfg = AutoConfig.from_pretrained(resolve_model(self.model_name))
                cfg = getattr(cfg, "text_config", None) or cfg
                n = getattr(cfg, "max_position_embeddings", None)
                self._max_positions = int(n) if n and int(n) < 10**7 else None
            except (OSError, ValueError):
                self._max_positions = None  # loading the model will say what is wrong
        return self._max_positions

    def _counting_tokenizer(self):
        """The model's tokenizer alone (no weights): for counting prompt tokens and telling chat from base."""
        if getattr(self, "_count_tokenizer", None) is None:
            from transformers import AutoTokenizer

            from memo.models import load_error, resolve_model

            try:
                self._count_tokenizer = AutoTokenizer.from_pretrained(resolve_model(self.model_name))
            except (OSError, ValueError) as e:
                raise load_error(self.model_name, e) from e
            # counting a long prompt is the point, not a warning
            self._count_tokenizer.model_max_length = 10**9
        return self._count_tokenizer

    def stops(self) -> list[str]:
        """The stop strings `generate` uses by default: none for a chat model, PLAIN_STOPS for a base
        model."""
        if self._tokenizer is not None:
            chat = (
                getattr(self, "chat", True)
                if self._llm is None
                else self._tokenizer.chat_template is not None
            )
        else:
            chat = self._counting_tokenizer().chat_template is not None
        return [] if chat else list(PLAIN_STOPS)

    def prompt_tokens(self, messages: list[dict]) -> int:
        """Tokens of one chat prompt as `generate` encodes it (an image counts IMAGE_TOKENS)."""
        tok = self._counting_tokenizer()
        images = sum(
            1
            for m in messages
            if isinstance(m.get("content"), list)
            for part in m["content"]
            if part.get("type") == "image"
        )
        text = [
            {
                "role": m["role"],
                "content": m["content"]
                if isinstance(m["content"], str)
                else " ".join(part.get("text", "") for part in m["content"] if part.get("type") == "text"),
            }
            for m in messages
        ]
        if tok.chat_template is None:
            from memo.rationales.prompts import plain_prompt

            n = len(tok(plain_prompt(text))["input_ids"])
        else:
            ids = tok.apply_chat_template(text, add_generation_prompt=True, tokenize=True)
            n = len(ids["input_ids"] if hasattr(ids, "keys") else ids)
        return n + images * self.IMAGE_TOKENS

    # -- generation
    def generate(
        self,
        prompts: list[list[dict]],
        max_new_tokens: int = 96,
        temperature: float = 0.0,
        top_p: float = 1.0,
        batch_size: int = 8,
        min_new_tokens: int | None = None,
        seed: int = 0,
        on_batch: Callable[[list[int], list[Generation]], None] | None = None,
        progress: bool = False,
        stop: list[str] | None = None,
    ) -> list[Generation]:
        """Generate one answer per chat prompt; `on_batch(indices, generations)` after each batch (to log it
        at once).

        `stop`: strings that end an answer (cut from the text); None = `stops()` (a blank line for base
        models).
        """
        self.load()
        stop = self.stops() if stop is None else [s for s in stop if s]
        if self._llm is not None:
            outs = self._generate_vllm(
                prompts, max_new_tokens, temperature, top_p, min_new_tokens, seed, stop
            )
            if on_batch:
                on_batch(list(range(len(prompts))), outs)
            return outs
        order = sorted(range(len(prompts)), key=lambda i: (_has_images(prompts[i]), self._length(prompts[i])))
        results: list[Generation | None] = [None] * len(prompts)
        from tqdm.auto import tqdm

        with tqdm(
            total=len(prompts), desc="generate", unit="prompt", disable=not progress, dynamic_ncols=True
        ) as bar:
            a = 0
            while a < len(order):
                # a batch never mixes prompts with and without images (the processor needs one kind)
                kind = _has_images(prompts[order[a]]) > 0
                b = a + 1
                while b < len(order) and b - a < batch_size and (_has_images(prompts[order[b]]) > 0) == kind:
                    b += 1
                idx = order[a:b]
                gens = self._generate_batch(
                    [prompts[i] for i in idx], max_new_tokens, temperature, top_p, min_new_tokens, seed, stop
                )
                for i, g in zip(idx, gens):
                    results[i] = g
                if on_batch:
                    on_batch(idx, gens)
                bar.update(len(idx))
                a = b
        return results  # type: ignore[return-value]

    def _length(self, messages: list[dict]) -> int:
        """Sort key: characters of text in the prompt (cheap; close enough to tokens for bucketing)."""
        n = 0
        for m in messages:
            c = m.get("content")
            n += len(c) if isinstance(c, str) else sum(len(p.get("text", "")) for p in c)
        return n

    def _encode(self, prompts: list[list[dict]]):
        """Left-padded input ids and attention mask (B, L) for a batch of chat prompts."""
        if self._processor is not None:
            texts = [
                self._processor.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
                for p in prompts
            ]
            images = [
                [
                    part["image"]
                    for m in p
                    if isinstance(m["content"], list)
                    for part in m["content"]
                    if part.get("type") == "image"
                ]
                for p in prompts
            ]
            kw = {"images": images} if any(images) else {}
            # the template already wrote <bos>; the processor must not add a second one
            return self._processor(
                text=texts, padding=True, return_tensors="pt", add_special_tokens=False, **kw
            )
        if not getattr(self, "chat", True):
            from memo.rationales.prompts import plain_prompt

            return self._tokenizer([plain_prompt(p) for p in prompts], padding=True, return_tensors="pt")
        return self._tokenizer.apply_chat_template(
            prompts,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            padding=True,
            return_tensors="pt",
        )

    def _generate_batch(
        self, prompts, max_new_tokens, temperature, top_p, min_new_tokens, seed, stop=()
    ) -> list[Generation]:
        import torch

        enc = self._encode(prompts).to(self.device)
        L = enc["input_ids"].shape[1]
        kw: dict[str, Any] = dict(max_new_tokens=max_new_tokens, pad_token_id=self._tokenizer.pad_token_id)
        if stop:  # each row stops on its own; rows that stopped are padded until the batch ends
            kw.update(stop_strings=list(stop), tokenizer=self._tokenizer)
        if temperature > 0:
            kw.update(do_sample=True, temperature=temperature, top_p=top_p)
            torch.manual_seed(seed)
        else:
            kw.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        if min_new_tokens:
            kw["min_new_tokens"] = min_new_tokens
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = self._model.generate(**enc, **kw)  # (B, L + new)
        dt = time.perf_counter() - t0
        gen = out[:, L:].cpu()  # (B, new)
        eos = self._stop_ids()
        pad = self._tokenizer.pad_token_id
        prompt_tokens = enc["attention_mask"].sum(dim=1).tolist()
        res = []
        for row, pt in zip(gen.tolist(), prompt_tokens):
            n = len(row)
            for j, t in enumerate(row):
                if t in eos or (stop and t == pad):
                    # the stop token counts as generated; the padding after it does not
                    n = j + 1 if t in eos else j
                    break
            text = cut_at_stop(self._tokenizer.decode(row[:n], skip_special_tokens=True), stop)
            res.append(Generation(text, n, dt / len(prompts), int(pt)))
        return res

    def _stop_ids(self) -> set[int]:
        eos = self._model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self._tokenizer.eos_token_id is not None:
            ids.add(self._tokenizer.eos_token_id)
        return ids

    def _generate_vllm(
        self, prompts, max_new_tokens, temperature, top_p, min_new_tokens, seed, stop=()
    ) -> list[Generation]:
        from vllm import SamplingParams

        params = SamplingParams(
            temperature=temperature,
            top_p=top_p if temperature > 0 else 1.0,
            max_tokens=max_new_tokens,
            min_tokens=min_new_tokens or 0,
            seed=seed,
            stop=list(stop) or None,
        )
        lora = None
        if self.adapter:
            from vllm.lora.request import LoRARequest

            lora = LoRARequest("writer", 1, self.adapter)
        t0 = time.perf_counter()
        outs = self._llm.chat([_vllm_messages(p) for p in prompts], params, lora_request=lora, use_tqdm=False)
        dt = time.perf_counter() - t0
        return [
            Generation(
                o.outputs[0].text.strip(),
                len(o.outputs[0].token_ids),
                dt / len(prompts),
                len(o.prompt_token_ids),
            )
            for o in outs
        ]


def cut_at_stop(text: str, stop) -> str:
    """The text before the first stop string (transformers stops after the token that completes it),
    stripped."""
    ends = [text.find(s) for s in stop or () if s and s in text]
    return (text[: min(ends)] if ends else text).strip()


def _vllm_messages(messages: list[dict]) -> list[dict]:
    """PIL image parts -> data-URL image parts, the form vllm's chat API takes."""
    import base64
    import io

    out = []
    for m in messages:
        if not isinstance(m.get("content"), list):
            out.append(m)
            continue
        parts = []
        for p in m["content"]:
            if p.get("type") == "image":
                buf = io.BytesIO()
                p["image"].save(buf, format="PNG")
                parts.append(
                    {
                        "type": "image_url",
                        "image_url": {
                            "url": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
                        },
                    }
                )
            else:
                parts.append(p)
        out.append({"role": m["role"], "content": parts})
    return out
