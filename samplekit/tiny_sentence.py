"""The tiny E5 sentence encoder: BERT + mean pooling + L2 normalise, as intfloat/e5-* checkpoints, with a
lower-cased WordPiece vocabulary trained on the built-in corpus."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from memo.samplekit.tiny_build import build_once, seeded
from memo.samplekit.tiny_corpus import corpus_lines

__all__ = ["tiny_e5"]


def _train_wordpiece_vocab(vocab_size: int) -> dict[str, int]:
    """A lower-cased BERT WordPiece vocabulary trained on CORPUS; BERT's special tokens first."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
    tok.train_from_iterator(corpus_lines(), trainer)
    vocab = tok.get_vocab()
    # Re-number by id: the special tokens get ids 0..4 ([PAD]=0, as in BERT), then the learned pieces.
    return {t: i for i, t in enumerate(sorted(vocab, key=vocab.__getitem__))}


def tiny_e5(
    path: str | Path, *, seed: int = 0, vocab_size: int = 1500, max_seq_length: int = 128, **overrides: Any
) -> Path:
    """A sentence-transformers folder: Transformer(BertModel) -> Pooling(mean) -> Normalize.

    `SentenceTransformer(str(path), device="cpu").encode(texts)` gives unit-norm vectors of
    dimension hidden_size (32 by default). As with E5, callers prefix "query: " / "passage: ";
    the saved prompts `query` and `passage` do that for `encode(..., prompt_name=...)`.
    """
    params = dict(seed=seed, vocab_size=vocab_size, max_seq_length=max_seq_length, **overrides)

    def build(out: Path) -> None:
        from sentence_transformers import SentenceTransformer, models
        from transformers import BertConfig, BertModel, BertTokenizerFast

        vocab = _train_wordpiece_vocab(vocab_size)
        # BertTokenizerFast rebuilds BERT's own pipeline (normaliser, pre-tokeniser, [CLS] $A [SEP])
        # around the vocabulary, so it behaves like bert-base-uncased's tokenizer.
        tokenizer = BertTokenizerFast(vocab=vocab, do_lower_case=True, model_max_length=512)
        cfg = dict(
            vocab_size=len(vocab),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=512,
            type_vocab_size=2,
            pad_token_id=vocab["[PAD]"],
        )
        cfg.update(overrides)
        config = BertConfig(**cfg)
        if config.max_position_embeddings < max_seq_length:
            raise ValueError("max_seq_length exceeds max_position_embeddings")
        with seeded(seed):
            bert = BertModel(config, add_pooling_layer=False).eval()
        # sentence-transformers loads its Transformer module from a folder, so stage the HF model.
        with tempfile.TemporaryDirectory() as stage:
            bert.save_pretrained(stage)
            tokenizer.save_pretrained(stage)
            word = models.Transformer(stage, max_seq_length=max_seq_length)
            pool = models.Pooling(word.get_embedding_dimension(), pooling_mode="mean")
            st = SentenceTransformer(
                modules=[word, pool, models.Normalize()],
                device="cpu",
                prompts={"query": "query: ", "passage": "passage: "},
            )
            st.save(str(out))

    return build_once(path, "e5", params, build)
