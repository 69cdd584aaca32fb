"""[submission] and [runs.N] sections of memo.toml.

    [submission]
    filename = "me25mem-{team}-subtask2-run{run}.csv"   # {team} and {run} are filled in
    separator = ","
    precision = 6

    [runs.1]
    predictor = "gbt"
    streams = ["metadata", "cues", "e5", "stats"]

    [runs.3]
    predictor = "blend"
    blend = ["1", "2"]          # weights = [] -> rank average; weights = [0.7, 0.3] -> weighted mean
"""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class SubmissionConfig:
    out: str = "run_files"
    filename: str = "me25mem-{team}-subtask2-run{run}.csv"
    zip_name: str = "me25mem-{team}-subtask2.zip"  # `memo submit --zip`; {team} is filled in
    id_column: str = ""  # empty = the dataset's own id column
    columns: list[str] = field(default_factory=list)  # names of the score columns, one per target in order; empty = the target names
    separator: str = ","
    precision: int = 6
    header: bool = True
    skip_bad_files: bool = False  # submit although `memo data check` finds bad feature or video files (those videos lack them)


@dataclass
class RunConfig:
    predictor: str = "gbt"  # gbt | mindmem | llm | blend
    streams: list[str] = field(default_factory=list)  # stream selectors (memo.streams) the predictor reads; empty = its own defaults
    aspects: list[str] = field(default_factory=list)  # rationale aspects the run reads
    blend: list[str] = field(default_factory=list)  # runs to blend when predictor = "blend"
    weights: list[float] = field(default_factory=list)  # blend weights; empty = rank averaging
    params: dict[str, Any] = field(default_factory=dict)  # overrides of the predictor's section
    targets: list[str] = field(default_factory=list)  # empty = [project] targets
    description: str = ""
