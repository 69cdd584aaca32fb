"""memo.samplekit.tiny_models: every tiny model loads back through the public APIs a real checkpoint uses."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from memo.samplekit import tiny_models as testkit  # noqa: E402


def _image(h: int, w: int, seed: int = 0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))


def _one_second(seed: int = 0) -> np.ndarray:
    """1 s of 16 kHz audio: a 440 Hz tone plus a little noise, float32 in [-1, 1]."""
    t = np.arange(16000, dtype=np.float32) / 16000
    noise = np.random.default_rng(seed).normal(0, 0.01, 16000).astype(np.float32)
    return (0.5 * np.sin(2 * np.pi * 440 * t) + noise).astype(np.float32)


def test_import_is_instant():
    code = (
        "import sys, memo.samplekit.tiny_models; bad = {'torch', 'transformers', 'sentence_transformers', "
        "'tokenizers'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tiny_models_layout(tiny_models):
    assert set(tiny_models) == {"vit", "e5", "gemma3", "audio"}
    for kind, path in tiny_models.items():
        assert path.is_dir() and testkit.is_built(path, kind)
        assert (path / "model.safetensors").stat().st_size < 2_000_000  # tiny, really


# ---------------------------------------------------------------------------------------- ViT
def test_vit_loads_and_encodes_images(tiny_vit_path):
    from transformers import AutoConfig, AutoImageProcessor, AutoModel

    model = AutoModel.from_pretrained(tiny_vit_path).eval()
    processor = AutoImageProcessor.from_pretrained(tiny_vit_path)
    assert type(model).__name__ == "ViTModel"
    cfg = AutoConfig.from_pretrained(tiny_vit_path)
    assert cfg.model_type == "vit"

    # Two differently sized images: the processor resizes both to the config's image_size.
    inputs = processor(images=[_image(100, 80), _image(48, 64, seed=1)], return_tensors="pt")
    assert tuple(inputs["pixel_values"].shape) == (2, 3, cfg.image_size, cfg.image_size)
    with torch.no_grad():
        out = model(**inputs)
    patches = (cfg.image_size // cfg.patch_size) ** 2
    assert tuple(out.last_hidden_state.shape) == (2, 1 + patches, cfg.hidden_size)
    assert tuple(out.pooler_output.shape) == (2, cfg.hidden_size)
    assert torch.isfinite(out.last_hidden_state).all()
    assert not torch.allclose(out.last_hidden_state[0], out.last_hidden_state[1])


# ----------------------------------------------------------------------------------------- E5
def test_e5_sentence_transformer(tiny_e5_path):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(tiny_e5_path), device="cpu")
    dim = st.get_sentence_embedding_dimension()
    assert dim == 32 and st.max_seq_length == 128
    assert 0 < st.tokenizer.model_max_length <= 512

    texts = [
        "passage: a funny bank ad with a talking dog",
        "passage: a sad insurance story",
        "passage: a funny bank ad with a talking dog",
    ]
    emb = st.encode(texts, convert_to_numpy=True)
    assert emb.shape == (3, dim) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(emb[0], emb[1], atol=1e-4)  # different texts, different vectors
    np.testing.assert_allclose(emb[0], emb[2], atol=1e-6)  # same text, same vector

    # The E5 prefix is saved as a prompt, as in the real checkpoints' usage.
    q = st.encode(["a funny bank ad"], prompt_name="query")
    np.testing.assert_allclose(q, st.encode(["query: a funny bank ad"]), atol=1e-6)

    # The trained WordPiece vocabulary knows the domain words; longer inputs are truncated.
    tok = st.tokenizer
    assert type(tok).__name__ == "BertTokenizer"
    assert tok.tokenize("Funny bank advertisement") == ["funny", "bank", "advertisement"]
    assert len(st.tokenize(["word " * 1000])["input_ids"][0]) == st.max_seq_length


def test_e5_tokenizer_loads_with_autotokenizer(tiny_e5_path):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_e5_path)
    model = AutoModel.from_pretrained(tiny_e5_path)
    assert type(model).__name__ == "BertModel"
    ids = tok("memorable brand", return_tensors="pt")
    assert (
        ids["input_ids"][0, 0].item() == tok.cls_token_id
        and ids["input_ids"][0, -1].item() == tok.sep_token_id
    )
    assert tok.unk_token_id not in ids["input_ids"][0].tolist()
    assert model(**ids).last_hidden_state.shape == (1, ids["input_ids"].shape[1], 32)


# -------------------------------------------------------------------------------------- Gemma 3
MESSAGES = [
    {"role": "system", "content": "You are an expert in advertising."},
    {"role": "user", "content": "How memorable is this bank ad? Answer with a rating."},
]


def test_gemma_config_and_tokenizer(tiny_gemma_path):
    from transformers import AutoConfig, AutoTokenizer

    cfg = AutoConfig.from_pretrained(tiny_gemma_path)
    assert cfg.model_type == "gemma3_text"
    assert cfg.tie_word_embeddings and cfg.layer_types == ["sliding_attention", "full_attention"]

    tok = AutoTokenizer.from_pretrained(tiny_gemma_path)
    assert type(tok).__name__ == "GemmaTokenizer"
    # Embedding rows padded past the tokenizer, as in real Gemma 3 checkpoints.
    assert cfg.vocab_size % 64 == 0 and len(tok) <= cfg.vocab_size < len(tok) + 64
    # Gemma's ids
    assert (tok.pad_token_id, tok.eos_token_id, tok.bos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert tok.padding_side == "left" and tok.model_max_length == 1024
    for special in ("<start_of_turn>", "<end_of_turn>", "<start_of_image>"):
        assert tok.convert_tokens_to_ids(special) != tok.unk_token_id

    # <bos> is prepended; digits are single tokens, so ratings can be produced token by token.
    ids = tok("Rating: 7/10")["input_ids"]
    assert ids[0] == tok.bos_token_id
    assert tok.convert_ids_to_tokens(ids)[-4:] == ["7", "/", "1", "0"]
    # Byte fallback: any text round-trips without <unk>.
    text = "Café ad 🎬 scored 8/10\nnext line"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids and tok.decode(ids) == text


def test_gemma_chat_template(tiny_gemma_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_gemma_path)
    text = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=False)
    # Gemma 3 folds the system message into the first user turn.
    assert text == (
        "<bos><start_of_turn>user\nYou are an expert in advertising.\n\n"
        "How memorable is this bank ad? Answer with a rating.<end_of_turn>\n<start_of_turn>model\n"
    )
    assert "<start_of_turn>model" in text
    ids = tok.apply_chat_template(MESSAGES, add_generation_prompt=True, tokenize=True, return_dict=True)[
        "input_ids"
    ]
    assert ids.count(tok.bos_token_id) == 1  # the template's <bos>, not a second one
    # Multi-turn, with "assistant" mapped to "model", and list-of-parts content.
    convo = [
        {"role": "user", "content": [{"type": "text", "text": "Rate it."}]},
        {"role": "assistant", "content": "Rating: 6/10"},
        {"role": "user", "content": "Why?"},
    ]
    text = tok.apply_chat_template(convo, add_generation_prompt=False, tokenize=False)
    assert text == (
        "<bos><start_of_turn>user\nRate it.<end_of_turn>\n<start_of_turn>model\nRating: 6/10<end_of_turn>\n"
        "<start_of_turn>user\nWhy?<end_of_turn>\n"
    )


def test_gemma_generates_left_padded_batch(tiny_gemma_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_gemma_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_gemma_path).eval()
    assert type(model).__name__ == "Gemma3ForCausalLM"
    # Tied embeddings survive the save/load round trip (only one matrix is stored).
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    eot = tok.convert_tokens_to_ids("<end_of_turn>")
    assert set(model.generation_config.eos_token_id) == {tok.eos_token_id, eot}
    assert model.generation_config.pad_token_id == tok.pad_token_id

    short = [{"role": "user", "content": "Rate this ad."}]
    prompts = [
        tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in (MESSAGES, short)
    ]
    batch = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    assert batch["attention_mask"][1, 0] == 0 and batch["attention_mask"][1, -1] == 1  # left padded
    n_new = 6
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=n_new, min_new_tokens=n_new, do_sample=False)
        alone = tok(prompts[1:], return_tensors="pt", add_special_tokens=False)
        out_alone = model.generate(**alone, max_new_tokens=n_new, min_new_tokens=n_new, do_sample=False)
    width = batch["input_ids"].shape[1]
    assert tuple(out.shape) == (2, width + n_new)
    # Padding must not change what the short prompt produces (attention mask + positions work).
    assert out[1, width:].tolist() == out_alone[0, alone["input_ids"].shape[1] :].tolist()
    assert isinstance(tok.decode(out[0, width:], skip_special_tokens=True), str)


def test_gemma_logits_survive_reload(tiny_gemma_path, tmp_path):
    """The saved checkpoint is the built model: rebuilding with the same seed gives the same logits."""
    from transformers import AutoModelForCausalLM

    again = testkit.tiny_gemma3(tmp_path / "g")
    a = AutoModelForCausalLM.from_pretrained(tiny_gemma_path).eval()
    b = AutoModelForCausalLM.from_pretrained(again).eval()
    ids = torch.tensor([[2, 5, 40, 41, 42, 6]])
    with torch.no_grad():
        torch.testing.assert_close(a(ids).logits, b(ids).logits)
    assert (tiny_gemma_path / "tokenizer.json").read_bytes() == (again / "tokenizer.json").read_bytes()


def test_gemma_multimodal(tmp_path):
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    path = testkit.tiny_gemma3(tmp_path / "mm", multimodal=True)
    assert AutoConfig.from_pretrained(path).model_type == "gemma3"
    processor = AutoProcessor.from_pretrained(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    assert type(model).__name__ == "Gemma3ForConditionalGeneration"
    messages = [
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "text", "text": "How memorable is this frame?"}],
        }
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert "<start_of_image>" in text and text.endswith("<start_of_turn>model\n")
    inputs = processor(text=[text], images=[[_image(40, 50)]], return_tensors="pt", add_special_tokens=False)
    image_token = processor.tokenizer.convert_tokens_to_ids("<image_soft_token>")
    assert (inputs["input_ids"] == image_token).sum().item() == 4  # mm_tokens_per_image
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 3


# ---------------------------------------------------------------------------------------- Audio
def test_audio_encoder_ast(tiny_audio_path):
    from transformers import AutoConfig, AutoFeatureExtractor, AutoModel

    assert AutoConfig.from_pretrained(tiny_audio_path).model_type == "audio-spectrogram-transformer"
    extractor = AutoFeatureExtractor.from_pretrained(tiny_audio_path)
    model = AutoModel.from_pretrained(tiny_audio_path).eval()
    assert extractor.sampling_rate == 16000
    inputs = extractor([_one_second(0), _one_second(1)[:8000]], sampling_rate=16000, return_tensors="pt")
    cfg = model.config
    assert tuple(inputs["input_values"].shape) == (2, cfg.max_length, cfg.num_mel_bins)
    with torch.no_grad():
        hidden = model(**inputs).last_hidden_state
    f = (cfg.num_mel_bins - cfg.patch_size) // cfg.frequency_stride + 1
    t = (cfg.max_length - cfg.patch_size) // cfg.time_stride + 1
    assert tuple(hidden.shape) == (2, 2 + f * t, cfg.hidden_size)  # (B, T, D): CLS + distillation + patches
    assert torch.isfinite(hidden).all()


def test_audio_encoder_wav2vec2(tmp_path):
    from transformers import AutoFeatureExtractor, AutoModel

    path = testkit.tiny_audio_encoder(tmp_path / "w2v", arch="wav2vec2")
    extractor = AutoFeatureExtractor.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    assert type(model).__name__ == "Wav2Vec2Model"
    inputs = extractor(
        [_one_second(), _one_second()[:8000]], sampling_rate=16000, return_tensors="pt", padding=True
    )
    with torch.no_grad():
        hidden = model(**inputs).last_hidden_state
    assert tuple(hidden.shape) == (2, 49, 32)  # 20 ms frames over 1 s (the shorter clip is padded)


def test_audio_alias():
    assert testkit.tiny_audio is testkit.tiny_audio_encoder
    with pytest.raises(ValueError):
        testkit.tiny_audio_encoder("/nonexistent", arch="whisper")


# ------------------------------------------------------------------------------- build-once cache
def test_reuse_and_rebuild(tmp_path):
    first = testkit.tiny_vit(tmp_path / "v")
    marker = first / testkit.MARKER
    stamp = marker.stat().st_mtime_ns
    assert testkit.tiny_vit(tmp_path / "v") == first and marker.stat().st_mtime_ns == stamp  # reused
    assert json.loads(marker.read_text())["kind"] == "vit"

    bigger = testkit.tiny_vit(tmp_path / "v", hidden_size=48)  # other arguments: rebuilt in place
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(bigger).hidden_size == 48
    assert not list(tmp_path.glob(".v.building-*"))  # no temp folders left behind


def test_deterministic(tmp_path):
    a = testkit.tiny_vit(tmp_path / "a")
    b = testkit.tiny_vit(tmp_path / "b")
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    c = testkit.tiny_vit(tmp_path / "c", seed=1)
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()


def test_caller_rng_untouched(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    testkit.tiny_vit(tmp_path / "v")
    assert torch.equal(torch.rand(3), expected)


def test_refuses_foreign_folder(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("do not delete")
    with pytest.raises(FileExistsError):
        testkit.tiny_vit(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "do not delete"


def test_tiny_models_reuses_root(tiny_models):
    root = tiny_models["vit"].parent
    stamps = {k: (p / testkit.MARKER).stat().st_mtime_ns for k, p in tiny_models.items()}
    again = testkit.tiny_models(root)
    assert again == tiny_models
    assert {k: (p / testkit.MARKER).stat().st_mtime_ns for k, p in again.items()} == stamps
