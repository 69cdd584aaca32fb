"""`memo demo` as a newcomer meets it: what it runs is what its memo.toml says, and its rationale
step keeps prompts within the tiny writer's positions."""

from __future__ import annotations

import re

import pytest

from memo.config import Config


def _get(cfg: Config, dotted: str):
    obj = cfg
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


@pytest.fixture(scope="module")
def demo(tmp_path_factory, _offline_single_thread):
    from memo.samplekit.demo import demo_project

    return demo_project(tmp_path_factory.mktemp("demo") / "memo-demo")


def test_demo_settings_are_in_its_memo_toml(demo):
    from memo.project import Project
    from memo.samplekit.demo import DEMO_SETTINGS, demo_project

    on_disk = Project.open(demo.config.root / "memo.toml").config
    for key, value in DEMO_SETTINGS.items():
        assert _get(on_disk, key) == value, key
        assert _get(demo.config, key) == value, key  # the project the demo runs is the file's
    # a second demo run reads the file as it stands: an edit there is what runs
    text = (demo.config.root / "memo.toml").read_text().replace("max_new_tokens = 24", "max_new_tokens = 20")
    (demo.config.root / "memo.toml").write_text(text)
    assert demo_project(demo.config.root).config.rationale.max_new_tokens == 20
    (demo.config.root / "memo.toml").write_text(text.replace("max_new_tokens = 20", "max_new_tokens = 24"))


def test_memo_rationale_in_the_demo_folder_reuses_the_demos_rationales(demo, monkeypatch):
    """The demo's rationale stage (settings from memo.toml only), then the README's command typed in its
    folder."""
    from typer.testing import CliRunner

    from memo.cli import app
    from memo.rationales import run_rationales

    assert demo.config.models.llm == "tiny:gemma3"  # pinned by the demo: init --offline writes gemma3-270m
    first = run_rationales(demo, splits=["dev"], limit=2, device="cpu", progress=False)
    assert first["generated"] > 0
    monkeypatch.chdir(demo.config.root)
    res = CliRunner().invoke(
        app, ["rationale", "--aspects", "humor,emotion", "--split", "dev", "--limit", "2", "--device", "cpu"]
    )
    assert res.exit_code == 0, res.output
    assert "rationales are up to date" in res.output
    # one more video: its rationales are generated, the first two videos' zero-shot ones come from the log
    res = CliRunner().invoke(
        app, ["rationale", "--aspects", "humor,emotion", "--split", "dev", "--limit", "3", "--device", "cpu"]
    )
    assert res.exit_code == 0, res.output
    made, cached = map(
        int, re.search(r"rationales: (\d+) generated, (\d+) from the log", res.output).groups()
    )
    assert made > 0 and cached >= 4
    assert "tiny randomly initialised model: it writes noise by design" in res.output


def test_long_ad_texts_are_shortened_to_fit_the_writers_positions(demo):
    from memo.rationales.aspects import resolve_aspects
    from memo.rationales.jobs import Context, zero_shot_job
    from memo.rationales.prompts import load_template
    from memo.rationales.runner import writer_for

    cfg = demo.config.rationale
    # a long transcript shown whole would pass the tiny Gemma-3's 1024 positions
    cfg.transcript_chars = 60_000
    split = demo.dataset.splits["dev"]
    vid = split.ids[0]
    split.table.loc[vid, "transcript"] = " ".join(f"word{k}" for k in range(6000))
    writer = writer_for(demo, "cpu")
    aspect = resolve_aspects(["humor"], demo.config)[0]
    limit = writer.max_positions()
    assert limit == 1024

    loose = Context(demo, cfg, load_template(cfg.prompt), writer.identity(), {}, 0)
    assert (
        writer.prompt_tokens(zero_shot_job(loose, "dev", vid, aspect).messages) > limit - cfg.max_new_tokens
    )

    ctx = Context(
        demo,
        cfg,
        load_template(cfg.prompt),
        writer.identity(),
        {},
        0,
        budget=limit - cfg.max_new_tokens,
        count=writer.prompt_tokens,
    )
    job = zero_shot_job(ctx, "dev", vid, aspect)
    n = writer.prompt_tokens(job.messages)
    assert n <= limit - cfg.max_new_tokens
    assert n > (limit - cfg.max_new_tokens) // 4  # cut to fit, not to nothing
    assert ctx.shortened == 1
    text = " ".join(m["content"] for m in job.messages if isinstance(m["content"], str))
    # head and tail kept, the middle marked
    assert "word0 " in text and "[...]" in text and "word5999" in text


def test_demo_stage_clock_says_where_the_minutes_went(said):
    import time

    from memo.samplekit.demo import StageClock

    clock = StageClock()
    with clock("features", "features: ..."):
        time.sleep(0.05)
    with clock("report", "report"):
        pass
    assert (
        list(clock.seconds) == ["features", "report"]
        and clock.seconds["features"] >= 0.05 > clock.seconds["report"]
    )
    table = clock.table().splitlines()
    assert (
        table[0] == "Time per stage:"
        and table[1].split()[0] == "features"
        and table[-1].split()[0] == "total"
    )
    assert float(table[-1].split()[1].rstrip("s")) == pytest.approx(sum(clock.seconds.values()), abs=0.05)
    assert "\n== features: ..." in said()


def test_report_is_reused_when_nothing_it_reads_changed(demo, said):
    """A second report with nothing changed returns the page as it is; a changed input draws it again."""
    import json

    from memo.evaluation.report import build_report

    path = build_report(demo)
    first = path.stat().st_mtime_ns
    assert json.loads((path.parent / "report.json").read_text())["fingerprint"]
    assert build_report(demo) == path and path.stat().st_mtime_ns == first
    assert any("report is up to date" in line for line in said())
    # the data's hash cache, rewritten as the page is checked: not an input
    (demo.workdir / "data_hashes.json").unlink()
    assert (
        build_report(demo) == path
        and path.stat().st_mtime_ns == first
        and (demo.workdir / "data_hashes.json").is_file()
    )
    (demo.workdir / "eval").mkdir(parents=True, exist_ok=True)
    (demo.workdir / "eval" / "note.txt").write_text("a new file the page might read")
    build_report(demo)
    assert path.stat().st_mtime_ns != first
    again = path.stat().st_mtime_ns
    team, demo.config.project.team = demo.config.project.team, "another"  # a setting the page shows
    try:
        build_report(demo)
    finally:
        demo.config.project.team = team
    assert path.stat().st_mtime_ns != again
