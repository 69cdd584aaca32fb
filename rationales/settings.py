"""One `memo rationale` run's settings: [rationale] of memo.toml with the command's choices applied, as a
copy, so the project's config stays what memo.toml and --set say.

    settings = resolve_settings(project.config, aspects=["humor"], model="tiny:gemma3", few_shot=0)
    settings.section.few_shot, [a.name for a in settings.aspects]      # 0, ["humor"]
    keyed = store_view(project, settings)   # what the store keys and the rating cache read

The feature store keys the tables of `rationale.<aspect>` and `ratings` by the rationale section
(memo.features.text.rationale_source, ratings_table), which those functions read from a project's
config. `store_view` gives them the run's section without touching the project's own config:
`Project.with_settings`, a view sharing the dataset and store, with a config of its own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, get_args

from memo.config import RatingSource
from memo.errors import ConfigError
from memo.rationales.aspects import Aspect, resolve_aspects

if TYPE_CHECKING:
    from memo.config import Config, RationaleConfig
    from memo.project import Project

RATINGS = get_args(RatingSource)  # [rationale] ratings, from memo.config's Literal


@dataclass(frozen=True)
class RationaleSettings:
    """What one run generates with: the [rationale] section with the command's choices (a copy) and its
    aspects, resolved and in order (section.aspects holds their names)."""

    section: RationaleConfig
    aspects: list[Aspect]


def resolve_settings(
    config: Config,
    aspects: list[str] | str | None = None,
    model: str | None = None,
    adapter: str | None = None,
    few_shot: int | None = None,
) -> RationaleSettings:
    """[rationale] of `config`, checked, with the command line's choices applied; `config` is left as it is.

    aspects: names or 'all' (else [rationale] aspects); model, adapter: the writer (else [rationale]
    model, else [models] llm); few_shot: exemplars per prompt (0 = zero-shot).
    """
    cfg = config.rationale
    if cfg.ratings not in RATINGS:
        raise ConfigError(
            f"[rationale] ratings = {cfg.ratings!r} is not one of {', '.join(RATINGS)}; "
            "'distribution' reads each rating from the model's next-token distribution."
        )
    if cfg.ratings == "distribution" and cfg.backend != "transformers":
        raise ConfigError(
            f"[rationale] ratings = 'distribution' reads the model's logits, which backend = {cfg.backend!r} "
            "does not give; set backend = 'transformers' or ratings = 'parsed'."
        )
    chosen = resolve_aspects(aspects or cfg.aspects, config)
    changes: dict = {"aspects": [a.name for a in chosen]}
    if model:
        changes["model"] = model
    if adapter:
        changes["adapter"] = str(adapter)
    if few_shot is not None:
        if few_shot < 0:
            raise ConfigError(f"--few-shot {few_shot} must be 0 (zero-shot) or more.")
        changes["few_shot"] = int(few_shot)
    return RationaleSettings(dataclasses.replace(cfg, **changes), chosen)


def store_view(project: Project, settings: RationaleSettings) -> Project:
    """The project as the store keys of this run's tables must see it: the same dataset, store and other
    sections, [rationale] the run's section (Project.with_settings). Read-only: nothing is written to
    the view's config."""
    _ = project.dataset  # read once here, so the view shares it instead of reading the files again
    section = settings.section
    return project.with_settings(
        rationale={f.name: getattr(section, f.name) for f in dataclasses.fields(section) if f.init}
    )
