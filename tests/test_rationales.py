"""memo rationale: aspects, prompts, rating parser, the writer's batching, the log as cache, resume, few-shot
folds, store, fine-tuning.

The writer is the test kit's tiny random Gemma-3: it writes gibberish, so ratings are mostly
missing; the tests check the machinery (what is generated, logged, cached, stored), not the prose.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

from memo.errors import MemoError  # noqa: E402
from memo.rationales import (  # noqa: E402
    ASPECTS,
    GenerationLog,
    Writer,
    log_path,
    parse_rating,
    resolve_aspects,
)
from memo.rationales.fewshot import choose_exemplars, labelled_folds  # noqa: E402
from memo.splits import grouped_kfold  # noqa: E402

FOLDS = 3


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """A small synthetic VIDEM dataset: 5 dev brands x 3 videos, 2 test brands x 2 videos."""
    from memo.samplekit.videm import write_sample_dataset

    return write_sample_dataset(
        tmp_path_factory.mktemp("videm"),
        n_brands_dev=5,
        videos_per_brand=3,
        n_brands_test=2,
        seed=0,
        seconds=1.0,
        size=32,
        fps=4,
    )


def make_project(folder: Path, sample: Path, gemma: Path, e5: Path, extra: str = ""):
    """memo.toml for the sample data with the tiny writer and encoder, short generations."""
    from memo.project import Project, init_project

    path = init_project(folder, sample)
    text = path.read_text()
    text = text.replace('llm = "google/gemma-3-4b-it"', f'llm = "{gemma}"').replace(
        'e5 = "intfloat/e5-large-v2"', f'e5 = "{e5}"'
    )
    text = text.replace("folds = 5", f"folds = {FOLDS}").replace(
        'workdir = ".memo"', f'workdir = "{folder / ".memo"}"'
    )
    text = text.replace("max_new_tokens = 96", "max_new_tokens = 10").replace("few_shot = 2", "few_shot = 1")
    text = text.replace(
        'aspects = ["humor", "emotion", "brand", "narrative", "message"]', 'aspects = ["humor", "emotion"]'
    )
    path.write_text(text + extra)
    return Project.open(path)


@pytest.fixture()
def project(tmp_path, sample, tiny_gemma_path, tiny_e5_path):
    return make_project(tmp_path, sample, tiny_gemma_path, tiny_e5_path)


# ----------------------------------------------------------------------------- pure parts


@pytest.mark.parametrize(
    "text, want",
    [
        ("Funny talking dog, clear punchline.\nRating: 7/10", 7.0),
        ("**Rating:** 8", 8.0),
        ("I would give it 6 out of 10.", 6.0),
        ("rated 3/10 at first, but on reflection\nRating: 9/10", 9.0),
        ("Rating: 7.5/10", 7.5),
        ("Rating: 10/10", 10.0),
        ("No humour at all.", None),  # missing
        ("Rating: N/10", None),  # placeholder left in
        ("Rating: 0/10", None),  # out of range
        ("Rating: 42", None),  # out of range
        ("", None),
        (None, None),
        ("cocc ign ign \x00 ���", None),  # gibberish from a random model
    ],
)
def test_parse_rating(text, want):
    assert parse_rating(text) == want


def test_builtin_aspects_and_unknown_aspect_lists_known():
    for name in (
        "humor",
        "emotion",
        "brand",
        "narrative",
        "novelty",
        "people",
        "message",
        "music",
        "repetition",
        "visual",
    ):
        a = ASPECTS.get(name)
        assert a.definition and a.look_for
    with pytest.raises(MemoError) as e:
        resolve_aspects(["humor", "humour"])
    assert "humour" in str(e.value) and "emotion" in str(e.value) and "visual" in str(e.value)


def test_custom_aspect_from_config(tmp_path, sample):
    from memo.config import load_config

    p = tmp_path / "memo.toml"
    p.write_text(
        f'[project]\ndata = "{sample}"\n\n[aspects.jingle]\ndefinition = "a short sung tune with the '
        'brand name"\n'
        'look_for = "sung lines, rhymes"\n\n[aspects.humor]\ndefinition = "how funny, our wording"\n'
    )
    cfg = load_config(p)
    got = resolve_aspects("jingle,humor", cfg)
    assert [a.name for a in got] == ["jingle", "humor"]
    assert got[0].definition.startswith("a short sung tune") and got[1].definition == "how funny, our wording"
    names = [a.name for a in resolve_aspects(["all"], cfg)]
    assert "jingle" in names and "visual" in names and len(names) == len(ASPECTS.names()) + 1
    with pytest.raises(MemoError, match="jingle"):  # the unknown-aspect message lists configured ones too
        resolve_aspects(["nope"], cfg)


def test_template_messages_and_hash():
    from memo.rationales.prompts import Exemplar, load_template, window_text

    tpl = load_template("default")
    a = ASPECTS.get("humor")
    ad = {"title": "A bank ad", "description": "A dog explains savings.", "tags": "", "transcript": "Woof."}
    msgs = tpl.messages(a, ad, [Exemplar("x", ad, "Funny.\nRating: 7/10", "high")])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert (
        "Measured memorability of this ad: high" in msgs[1]["content"]
        and "Measured memorability" not in msgs[3]["content"]
    )
    assert (
        "humor" in msgs[3]["content"]
        and "A dog explains savings." in msgs[3]["content"]
        and "Rating: N/10" in msgs[3]["content"]
    )
    assert len(tpl.hash) == 16
    long = " ".join(f"w{i}" for i in range(2000))
    w = window_text(long, 300)
    assert len(w) <= 300 and w.startswith("w0 w1") and w.endswith("w1999") and "[...]" in w


def test_fewshot_never_from_heldout_fold_brand_or_self():
    """Adversarial similarities: the nearest pool ads are the video itself, its brand and its fold."""
    rng = np.random.default_rng(0)
    groups = [f"b{i // 3}" for i in range(30)]  # 10 brands x 3 videos
    ids = [f"v{i}" for i in range(30)]
    fold_of = labelled_folds(ids, groups, 5, seed=0)
    vecs = rng.normal(size=(30, 8)).astype(np.float32)
    vecs[:] = vecs[0]  # everything is equally similar ...
    vecs += rng.normal(scale=1e-3, size=vecs.shape)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    picks = choose_exemplars(
        ids, groups, [fold_of[i] for i in ids], vecs, ids, groups, [fold_of[i] for i in ids], vecs, k=3
    )
    for q, ex in picks.items():
        assert len(ex) == 3
        for e in ex:
            assert e != q and groups[ids.index(e)] != groups[ids.index(q)] and fold_of[e] != fold_of[q]
    # a test-split video (no fold) may draw from every fold, still never its own brand
    picks = choose_exemplars(
        ["t0"], ["b0"], [None], vecs[:1], ids, groups, [fold_of[i] for i in ids], vecs, k=29
    )
    assert len(picks["t0"]) == 27 and not any(groups[ids.index(e)] == "b0" for e in picks["t0"])


# ----------------------------------------------------------------------------- the writer


def test_left_padding_batch_equals_one_at_a_time(tiny_gemma_path):
    w = Writer(str(tiny_gemma_path), device="cpu")
    prompts = [
        [{"role": "user", "content": "Rate the humor of this ad."}],
        [
            {"role": "system", "content": "You are an expert."},
            {
                "role": "user",
                "content": "A long prompt about a bank ad with a "
                "talking dog, a jingle and a family at dinner.",
            },
        ],
        [{"role": "user", "content": "Hi"}],
    ]
    batched = w.generate(prompts, max_new_tokens=12, batch_size=3)
    single = w.generate(prompts, max_new_tokens=12, batch_size=1)
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.tokens for g in batched] == [g.tokens for g in single]
    assert all(0 < g.tokens <= 12 and g.seconds > 0 for g in batched)
    assert batched[1].prompt_tokens > batched[2].prompt_tokens  # order restored after sorting by length


# ----------------------------------------------------------------------------- the stage, end to end


def _final_rows(project):
    with GenerationLog(log_path(project)) as log:
        return log.rows()


def test_two_aspects_rerun_store_and_show(project):
    from typer.testing import CliRunner

    from memo.cli import app
    from memo.features import load_features
    from memo.rationales import run_rationales

    ds = project.dataset
    s = run_rationales(project, aspects=["humor", "emotion"], device="cpu", progress=False)
    n_dev, n_test = len(ds.splits["dev"].ids), len(ds.splits["test"].ids)
    # few-shot 1: zero-shot for the dev pool, then a few-shot rationale for every video, 2 aspects each
    assert s["stages"] == {"zero-shot": 2 * n_dev, "few-shot": 2 * (n_dev + n_test)}
    rows = _final_rows(project)
    final = {(r.video, r.aspect) for r in rows if r.stage == "few-shot"}
    assert final == {
        (v, a) for sp in ("dev", "test") for v in ds.splits[sp].ids for a in ("humor", "emotion")
    }
    assert all(r.response is not None and r.tokens > 0 and r.prompt_hash and r.template_hash for r in rows)

    # the few-shot exemplars, checked against folds recomputed here: never the held-out fold, the brand or the
    # video
    lab = ds.splits["dev"].table
    folds = grouped_kfold(lab["group"].astype(str).tolist(), FOLDS, seed=project.seed)
    fold_of = {lab.index[i]: k for k, (_, te) in enumerate(folds) for i in te}
    group = {**lab["group"].astype(str).to_dict(), **ds.splits["test"].table["group"].astype(str).to_dict()}
    for r in rows:
        if r.stage == "few-shot":
            assert len(r.exemplars) == 1
            for e in r.exemplars:
                assert e != r.video and group[e] != group[r.video] and e in fold_of
                if r.split == "dev":
                    assert r.fold == fold_of[r.video] and fold_of[e] != fold_of[r.video]

    # a second run, from the command line, with nothing changed: up to date, nothing read or written
    store = project.workdir / "features"
    before = {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()}
    cli = ["rationale", "--aspects", "humor,emotion", "--device", "cpu", "--config", str(project.config.path)]
    out = CliRunner().invoke(app, cli)
    assert out.exit_code == 0, out.output
    assert "rationales are up to date" in out.output and len(_final_rows(project)) == len(rows)
    assert {p: p.stat().st_mtime_ns for p in store.rglob("*") if p.is_file()} == before
    # without the saved state it looks every job up: nothing generated, nothing rated again
    (log_path(project).parent / "state.json").unlink()
    out = CliRunner().invoke(app, cli)
    assert out.exit_code == 0, out.output
    assert f"0 generated, {s['generated']} from the log" in out.output and len(_final_rows(project)) == len(
        rows
    )

    # the feature store: rationale.<aspect> (1, D) and ratings (1, 2) named by aspect; by default the
    # ratings are the expected values of the next-token distribution, one per video and aspect, in the log
    X = load_features(project, "dev", ["rationale", "ratings"])
    assert X.streams["rationale.humor"].present.all() and X.streams["rationale.emotion"].present.all()
    r = X.streams["ratings"]
    assert r.values.shape == (n_dev, 1, 2) and r.names == ["humor", "emotion"]
    assert s["ratings"] == "distribution" and s["rated"] == 2 * (n_dev + n_test)
    with GenerationLog(log_path(project)) as log:
        logged = {(x.video, x.aspect): x.expected for v in X.ids for x in log.rating_rows(v)}
    assert len(logged) == 2 * n_dev
    for i, vid in enumerate(X.ids):
        for j, a in enumerate(["humor", "emotion"]):
            assert 1.0 <= r.values[i, 0, j] <= 10.0 and r.values[i, 0, j] == pytest.approx(logged[(vid, a)])

    # memo rationale show ID (CLI), and an unknown id is a one-line error
    vid = ds.splits["test"].ids[0]
    out = CliRunner().invoke(app, ["rationale", "show", vid, "--config", str(project.config.path)])
    assert out.exit_code == 0, out.output
    assert "[humor]" in out.output and "[emotion]" in out.output and "few-shot" in out.output
    assert out.output.count("from the next-token distribution") == 2
    out = CliRunner().invoke(app, ["rationale", "show", "no-such-id", "--config", str(project.config.path)])
    assert out.exit_code != 0 and isinstance(out.exception, MemoError)


def test_ratings_mode_keys_the_store_and_a_rerun_computes_nothing(project):
    """[rationale] ratings through the CLI: distribution ratings are finite and within 1-10; each mode has its
    own store table (switching never serves the other's values); switching back reads the log, computes
    nothing."""
    from typer.testing import CliRunner

    from memo.cli import app
    from memo.features import load_features
    from memo.features.text import ratings_table

    cli = [
        "rationale",
        "--aspects",
        "humor",
        "--few-shot",
        "0",
        "--split",
        "dev",
        "--limit",
        "4",
        "--device",
        "cpu",
        "--config",
        str(project.config.path),
    ]
    # what the CLI runs, for reading back
    project.config.rationale.aspects, project.config.rationale.few_shot = ["humor"], 0
    keys, values = {}, {}
    for mode in ("distribution", "parsed"):
        out = CliRunner().invoke(app, cli + ["--set", f"rationale.ratings={mode}"])
        assert out.exit_code == 0, out.output
        assert (
            "4 generated" in out.output
            if mode == "distribution"
            else "0 generated, 4 from the log" in out.output
        )
        project.config.rationale.ratings = mode
        keys[mode] = ratings_table(project).key
        st = load_features(project, "dev", ["ratings"]).streams["ratings"]
        values[mode] = st.values[st.present][:, 0, 0]
        assert st.present.sum() == 4
    assert keys["distribution"] != keys["parsed"]
    assert np.all(np.isfinite(values["distribution"])) and np.all(
        (values["distribution"] >= 1) & (values["distribution"] <= 10)
    )
    with GenerationLog(log_path(project)) as log:
        texts = {r.video: r.rating for r in log.rows(aspect="humor")}
    want = np.array(
        [np.nan if texts[v] is None else texts[v] for v in project.dataset.splits["dev"].ids[:4]], np.float32
    )
    # the tiny writer's noise: mostly NaN, never a distribution value
    np.testing.assert_array_equal(values["parsed"], want)
    # back to distribution: a new fingerprint, so every job is looked up, and all of it is in the log
    out = CliRunner().invoke(app, cli + ["--set", "rationale.ratings=distribution"])
    assert (
        out.exit_code == 0
        and "0 generated, 4 from the log; ratings from the next-token distribution (0 read now)" in out.output
    )
    out = CliRunner().invoke(app, cli + ["--set", "rationale.ratings=distribution"])
    assert out.exit_code == 0 and "rationales are up to date" in out.output
    out = CliRunner().invoke(app, cli + ["--set", "rationale.ratings=guessed"])
    assert out.exit_code != 0 and "is not one of distribution, parsed" in str(out.exception)


def test_distribution_ratings_with_vllm_is_one_sentence_before_any_work(project):
    from memo.errors import ConfigError
    from memo.rationales import run_rationales

    project.config.rationale.backend = "vllm"
    with pytest.raises(ConfigError, match="set backend = 'transformers' or ratings = 'parsed'"):
        run_rationales(project, aspects=["humor"], device="cpu", progress=False)
    assert not log_path(project).exists()


def test_resume_after_crash_generates_nothing_twice(project, monkeypatch):
    from memo.rationales import run_rationales

    calls = {"n": 0}
    real = Writer._generate_batch

    def crash_after_two(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("killed")
        return real(self, *a, **kw)

    project.config.rationale.batch_size = 4
    monkeypatch.setattr(Writer, "_generate_batch", crash_after_two)
    with pytest.raises(RuntimeError, match="killed"):
        run_rationales(project, aspects=["humor"], few_shot=0, device="cpu", progress=False)
    assert len(_final_rows(project)) == 8  # two batches of 4 were logged before the crash
    monkeypatch.setattr(Writer, "_generate_batch", real)
    s = run_rationales(project, aspects=["humor"], few_shot=0, device="cpu", progress=False)
    total = sum(len(sp.ids) for sp in project.dataset.splits.values())
    assert s["generated"] == total - 8 and s["cached"] == 8
    rows = _final_rows(project)
    assert len(rows) == total and len({r.video for r in rows}) == total


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_sigkill_mid_run_then_resume(project):
    """A real kill: a forked run (torch already imported, so it starts at once) SIGKILLed once batches are
    logged."""
    from memo.rationales import run_rationales

    project.config.rationale.batch_size = 1
    project.config.rationale.max_new_tokens = 32
    kw = dict(aspects=["humor", "emotion"], few_shot=0, splits=["dev"], limit=6, device="cpu", progress=False)
    db = log_path(project)
    pid = os.fork()
    if pid == 0:  # the child: run until killed
        try:
            run_rationales(project, **kw)
        finally:
            os._exit(0)
    n, deadline = 0, time.time() + 60
    try:
        while time.time() < deadline and n < 2:
            if db.is_file():
                with GenerationLog(db) as log:
                    n = log.count()
            time.sleep(0.02)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    with GenerationLog(db) as log:
        before = log.count()
    total = 2 * 6
    assert 2 <= before < total  # killed mid-run, after some batches were logged
    s = run_rationales(project, **kw)
    assert s["generated"] == total - before and s["cached"] == before
    with GenerationLog(db) as log:
        assert log.count() == total and len({(r.video, r.aspect) for r in log.rows()}) == total


def test_changed_template_regenerates(project, tmp_path):
    from memo.rationales import run_rationales

    run_rationales(
        project, aspects=["humor"], few_shot=0, limit=2, splits=["dev"], device="cpu", progress=False
    )
    tpl = tmp_path / "mine.txt"
    tpl.write_text((Path(__file__).parents[1] / "rationales" / "prompts" / "default.txt").read_text() + "\n")
    project.config.rationale.prompt = str(tpl)
    s = run_rationales(
        project, aspects=["humor"], few_shot=0, limit=2, splits=["dev"], device="cpu", progress=False
    )
    assert s["generated"] == 2 and s["cached"] == 0


def test_command_line_choices_are_used_and_leave_the_projects_config_as_it_was(project, monkeypatch):
    """aspects and few_shot passed to run_rationales (`memo rationale --aspects --few-shot`) decide what is
    generated and which store tables are written; project.config stays what memo.toml says."""
    import dataclasses

    from memo.features.text import ratings_table
    from memo.rationales import run_rationales
    from memo.rationales.settings import resolve_settings, store_view

    before = dataclasses.asdict(project.config.rationale)
    whole = project.config.to_dict()
    assert before["aspects"] == ["humor", "emotion"] and before["few_shot"] == 1
    prompts = []
    real = Writer.generate

    def spy(self, batch, **kw):
        prompts.extend(batch)
        return real(self, batch, **kw)

    monkeypatch.setattr(Writer, "generate", spy)
    kw = dict(aspects=["humor"], few_shot=0, splits=["dev"], limit=2, device="cpu", progress=False)
    s = run_rationales(project, **kw)
    assert dataclasses.asdict(project.config.rationale) == before and project.config.to_dict() == whole
    # the choices were used: one zero-shot prompt per video for humor alone (the config's few-shot 1
    # and two aspects would have written zero-shot and few-shot rationales for both)
    assert len(prompts) == 2 and s["stages"] == {"zero-shot": 2} and s["aspects"] == ["humor"]
    assert {(r.aspect, r.stage) for r in _final_rows(project)} == {("humor", "zero-shot")}
    # the store keys the run's tables by its choices, not by the untouched config
    keyed = store_view(project, resolve_settings(project.config, ["humor"], few_shot=0))
    assert ratings_table(keyed).read_manifest() and not ratings_table(project).read_manifest()
    # and the saved state knows them: the same choices again are up to date, nothing generated
    assert run_rationales(project, **kw)["up_to_date"] and len(prompts) == 2
    assert dataclasses.asdict(project.config.rationale) == before


# ----------------------------------------------------------------------------- fine-tuning


def test_select_from_log_keeps_rationales_that_rank_like_the_target():
    from memo.rationales.finetune import select_from_log
    from memo.rationales.log import Row

    targets = {f"v{i}": i / 10 for i in range(10)}
    # agrees with the target
    rows = [Row(video=f"v{i}", aspect="humor", rating=float(i + 1)) for i in range(8)]
    # disagrees / missing
    rows += [Row(video="v8", aspect="humor", rating=1.0), Row(video="v9", aspect="humor", rating=None)]
    got = {r.video for r in select_from_log(rows, targets, keep=0.25)}
    assert "v8" not in got and "v9" not in got and {"v3", "v4"} <= got


def test_finetune_writes_adapter_that_loads_back(project, tmp_path):
    from memo.rationales.finetune import finetune_writer

    ds = project.dataset
    data = tmp_path / "curated.jsonl"
    data.write_text(
        "\n".join(
            json.dumps({"video": v, "aspect": "humor", "text": "A talking dog makes it funny.\nRating: 8/10"})
            for v in ds.splits["dev"].ids[:4]
        )
        + "\n"
    )
    out = finetune_writer(
        project, data_file=data, out=tmp_path / "adapter", device="cpu", max_steps=3, batch_size=2
    )
    assert (out / "adapter_config.json").is_file() and json.loads((out / "memo_writer.json").read_text())[
        "examples"
    ] == 4
    w = Writer(str(project.config.models.llm), adapter=str(out), device="cpu")
    base = Writer(str(project.config.models.llm), device="cpu")
    # a new cache key
    assert w.identity()["adapter"].startswith("adapter-") and w.identity() != base.identity()
    g = w.generate([[{"role": "user", "content": "Rate the humor."}]], max_new_tokens=5)
    assert g[0].tokens > 0
    with pytest.raises(MemoError, match="adapter folder"):
        Writer(str(project.config.models.llm), adapter=str(tmp_path / "missing")).load()


def test_prompt_frames_decode_only_the_kept_frames(tmp_path):
    """Rationale prompts with images take n evenly spaced frames through the feature stage's reader."""
    import numpy as np

    from memo.rationales.runner import _decode_frames
    from memo.samplekit.media import write_mp4

    # (T, H, W, 3): brightness marks the frame's index
    frames = np.stack([np.full((32, 32, 3), 8 * i, np.uint8) for i in range(24)])
    path = tmp_path / "v.mp4"
    write_mp4(path, frames, np.zeros(16000, np.float32), fps=8.0)
    images = _decode_frames(str(path), 3)
    assert len(images) == 3 and all(im.size == (32, 32) and im.mode == "RGB" for im in images)
    levels = [float(np.asarray(im).mean()) for im in images]
    assert levels == sorted(levels) and levels[-1] - levels[0] > 60  # spread over the video, in order
