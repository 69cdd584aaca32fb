"""memo from Python: open a project, evaluate a run, fit it, score new ads, write its run file.

    import memo
    project = memo.open("memo.toml")              # or memo.open(data="path/to/videm", offline=True)
    table = project.evaluate(run="1")             # the table `memo evaluate --run 1` prints
    model = project.fit(run="1")                  # run 1's full fit, as `memo submit --run 1` makes it
    scores = model.score(ads)                     # new ads: a DataFrame of texts (+ optional video_path)
    path = project.submit(run="1")                # the validated run file

Each method calls the library function its `memo` command calls, so Python and the command line share
one memo.toml, one feature store and one cache: a run evaluated here is submitted there without
computing anything again, and the other way round. Nothing prints: progress goes to the `memo` logger
and the tqdm bars (memo.progress; `memo.progress.show_progress()` shows the messages as the CLI does),
and a problem you can fix is a memo.errors.MemoError whose one sentence says what to do.

`memo` names these lazily (memo/__init__.py), so `import memo` stays instant. docs/python.md walks
through them on the sample dataset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memo.errors import ConfigError, MemoError

if TYPE_CHECKING:
    import pandas as pd

    from memo.config import Config
    from memo.data import Dataset
    from memo.project import Project as CoreProject
    from memo.submission.models import TrainedModel
    from memo.submission.plan import Plan

__all__ = ["FittedRun", "Project", "open"]


def open(
    config: str | Path | None = None,
    *,
    data: str | Path | None = None,
    offline: bool = False,
    folder: str | Path | None = None,
    layout: str | None = None,
    team: str = "myteam",
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
) -> Project:
    """Open a memo project, as a `memo` command run in its folder does.

    - `memo.open("memo.toml")` (or the folder holding it): that project; with `data=` as well, that
      dataset in its place for this session (`--config ... --data ...`).
    - `memo.open(data="path/to/videm", offline=True)`: the project of that dataset in `folder` (default:
      the working folder). With no memo.toml there, one is written as `memo init --data PATH [--offline]
      --team TEAM` writes it (`layout`, `team`, `offline` shape only a new file); an existing one is
      used as it stands, so opening again reuses every result. memo keeps its work beside it, in
      .memo/ ([project] workdir), and run files in run_files/.
    - `memo.open()`: memo.toml in `folder` (default: the working folder).

    `overrides` set keys for this session only, type-checked like memo.toml and never saved, as --set
    does: {"evaluate.repeats": 1} or ["evaluate.repeats=1"].
    """
    from memo.config import CONFIG_NAME
    from memo.project import Project as CoreProject
    from memo.project import init_or_reuse

    if config is not None and folder is not None:
        raise ConfigError("pass config= (a memo.toml) or folder= (the folder that holds it), not both.")
    if config is None:
        where = Path(folder if folder is not None else Path.cwd()).expanduser()
        if data is not None:
            config = init_or_reuse(where, data, layout=layout, team=team, offline=offline)
            data = layout = None  # memo.toml names them now
        elif not (where / CONFIG_NAME).is_file():
            raise ConfigError(
                f"no {CONFIG_NAME} in {where}; pass data='path/to/dataset' to write one (as `memo init` "
                "does), or the path of a memo.toml."
            )
        else:
            config = where / CONFIG_NAME
    config = Path(config).expanduser()
    if config.is_dir():
        config = config / CONFIG_NAME
    if not config.is_file():
        raise ConfigError(
            f"no memo.toml at {config}; pass the path of an existing one, or data='path/to/dataset' "
            "to write one."
        )
    return Project(CoreProject.open(config, data=data, layout=layout, overrides=overrides))


class Project:
    """A memo project for Python: memo.toml, the dataset it names and the work folder, with one method
    per job. A thin face over memo.project.Project (`.core`, what every library function takes)."""

    def __init__(self, core: CoreProject):
        self.core = core

    @property
    def config(self) -> Config:
        """memo.toml as read, with this session's overrides (memo.config.Config)."""
        return self.core.config

    @property
    def dataset(self) -> Dataset:
        """The dataset's split tables (memo.data.Dataset), read on first use."""
        return self.core.dataset

    @property
    def workdir(self) -> Path:
        """Where memo keeps features, runs and models ([project] workdir, .memo/ beside memo.toml)."""
        return self.core.workdir

    @property
    def targets(self) -> list[str]:
        return self.core.targets

    def __repr__(self) -> str:
        cfg = self.config
        runs = ", ".join(cfg.runs) or "none"
        return f"<memo project {cfg.path or '(defaults)'}: data {cfg.project.data}, runs {runs}>"

    def evaluate(
        self,
        run: str | int | None = None,
        model: str | list[str] | None = None,
        *,
        folds: int | None = None,
        repeats: int | None = None,
        split: str | None = None,
        device: str = "auto",
    ) -> pd.DataFrame:
        """Brand-grouped cross-validation beside the [evaluate] baselines on the same folds, as `memo
        evaluate` runs it; returns its table, indexed by (model, target), with Spearman's `expected`
        (the mean over the repeats: the score to expect on unseen brands), `min`, `max`, ...

        `run="1"`: run 1 exactly as `submit` trains it (memo.evaluation.evaluate_run; its cache is the
        one submit reuses); `table.attrs` holds what `memo evaluate --run` prints above the table (the
        predictor, its streams, `scheme`, `dropped`, `picks`, `notes`). `model="gbt,mindmem"` (or a list;
        the default without a run is gbt): those predictors (memo.evaluation.evaluate_models); `attrs`
        holds `setup`, `notes` and `folder`, where the tables and plots are. `folds` and `repeats` set
        [evaluate] folds and repeats for this call; `split` scores a second labelled split instead of CV.
        """
        if run is not None:
            from memo.evaluation import evaluate_run

            if model is not None or split is not None:
                raise MemoError(
                    "run= evaluates a configured run on grouped cross-validation; leave out model= and "
                    "split=, or evaluate predictors with model= alone."
                )
            table, info = evaluate_run(self.core, str(run), device=device, folds=folds, repeats=repeats)
            table = table.set_index(["model", "target"])
            table.attrs.update(info)
            return table
        from memo.evaluation import evaluate_models

        names = model.split(",") if isinstance(model, str) else list(model or ["gbt"])
        ev = evaluate_models(
            self.core,
            [n.strip() for n in names if n.strip()],
            folds=folds,
            split=split,
            device=device,
            repeats=repeats,
        )
        table = ev.summary.set_index(list(ev.summary.columns[:2]))
        table.attrs.update(setup=ev.setup, notes=ev.notes, folder=ev.folder, up_to_date=ev.up_to_date)
        return table

    def fit(self, run: str | int, device: str = "auto") -> FittedRun:
        """Run `run`'s full fit on every labelled video, exactly as `memo submit --run RUN` makes it
        (memo.submission.models.fit_run_model: the same run folder and fingerprint, so a fit that is
        there is loaded, not made again), and the fitted run."""
        from memo.submission.models import fit_run_model

        return FittedRun(self.core, fit_run_model(self.core, str(run), device), device)

    def submit(
        self, run: str | int, *, out: str | Path | None = None, force: bool = False, device: str = "auto"
    ) -> Path:
        """Whatever run `run` still needs, then its validated run file and manifest, as `memo submit --run
        RUN` (memo.submission.submit_runs; `out`: [submission] out, `force`: replace a changed file, the
        old one kept as a backup); returns the run file's path."""
        from memo.submission import submit_runs

        (path,) = submit_runs(self.core, [str(run)], out=out, force=force, device=device)
        return path

    def features(
        self, extractors: list[str] | None = None, splits: list[str] | None = None, device: str = "auto"
    ) -> dict[str, Any]:
        """`memo features`: what the feature store lacks (memo.features.run_features); per extractor, an
        Outcome (computed, cached, failed, seconds)."""
        from memo.features import run_features

        return run_features(self.core, extractors=extractors, splits=splits, device=device)

    def rationales(
        self, aspects: list[str] | None = None, splits: list[str] | None = None, device: str = "auto"
    ) -> dict[str, Any]:
        """`memo rationale`: a rationale and a 1-10 rating per video and aspect, cached in the generation
        log (memo.rationales.run_rationales); its summary."""
        from memo.rationales import run_rationales

        return run_rationales(self.core, aspects=aspects, splits=splits, device=device)


class FittedRun:
    """A run's fitted predictor, as `memo submit` trained it: `.predictor` (the memo.predictors
    contract), `.plan` (what the run reads, its fingerprint), `.folder` (the model's folder, with its
    meta.json), `.meta`; `.predict(split)` and `.score(ads)`."""

    def __init__(self, core: CoreProject, trained: TrainedModel, device: str = "auto"):
        self.core, self.trained, self.device = core, trained, device

    @property
    def run(self) -> str:
        return str(self.trained.run)

    @property
    def predictor(self) -> Any:
        return self.trained.predictor

    @property
    def plan(self) -> Plan:
        return self.trained.plan

    @property
    def folder(self) -> Path:
        """<workdir>/runs/<run>/<fingerprint>/model/"""
        return self.trained.folder

    @property
    def meta(self) -> dict[str, Any]:
        return self.trained.meta

    def __repr__(self) -> str:
        n = self.meta.get("n_videos", "?")
        return f"<memo run {self.run}: {self.plan.run.predictor} fitted on {n} videos in {self.folder}>"

    def predict(self, split: str | None = None) -> pd.DataFrame:
        """Predictions for a split of the dataset (default: the test split, what the run file holds): ids x
        targets in [0, 1] (memo.submission.models.predict_split, as `memo predict`)."""
        from memo.submission.models import predict_split

        return predict_split(self.core, self.trained, split)

    def score(self, ads: pd.DataFrame, explain: bool = False) -> pd.DataFrame:
        """Scores for new ads, as `memo score` gives them: `ads` is a DataFrame of their texts (title,
        description, ..., optional video_path), one row per ad; the result is indexed by ad id with each
        target and `<target>_percentile` (where it falls among the run's cross-validated predictions of the
        labelled videos, made first if the run has none yet, as `evaluate(run=...)` makes them), and with
        `explain`, what moved each score (memo.submission.scoring.score_ads)."""
        from memo.submission.plan import run_folder
        from memo.submission.runs import CV_INFO, CV_PREDICTIONS, compute_run
        from memo.submission.scoring import score_ads

        folder = run_folder(self.core, self.plan)
        if not ((folder / CV_PREDICTIONS).is_file() and (folder / CV_INFO).is_file()):
            compute_run(self.core, self.plan, self.device, test=False)
        return score_ads(self.core, self.run, ads, explain=explain, device=self.device)
