"""`organiser`: the organisers' per-video feature files imported into the store as they are.

<split>/features/<Name>/<id>.npy -> stream `organiser.<Name>`: (3, 768) for ViT, (3, 2048) for
ResNet50, a (512,) R3D vector becomes (1, 512). Rows are kept as shipped (some videos have 2 rows
of LBP where others have 3; the mask says so). A file that will not load, or whose width differs
from the most common width of its kind (as `memo data check` judges it), is a per-video failure,
not a stop: one odd file never sets the width the good ones are held to.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from memo.features.base import EXTRACTORS, Extractor, Outcome, bar, short, versions

if TYPE_CHECKING:
    from memo.data import Dataset, Split
    from memo.store import StoreTable


@EXTRACTORS.register("organiser")
class OrganiserExtractor(Extractor):
    name = "organiser"

    def table(self, name: str) -> StoreTable:
        # Keyed by the feature's name and how it is imported; the arrays are the shipped ones.
        return self.store.table("organiser", {"name": name, "import": "npy as shipped, 1-d -> (1, D)"})

    def names(self, dataset: Dataset) -> list[str]:
        return sorted({n for s in dataset.splits.values() for n in s.feature_files})

    def streams(self, dataset: Dataset) -> dict[str, tuple[StoreTable, str]]:
        return {f"organiser.{n}": (self.table(n), "features") for n in self.names(dataset)}

    def run(self, split: Split, outcome: Outcome, progress: bool = True) -> None:
        jobs = []
        for name, files in sorted(split.feature_files.items()):
            table = self.table(name)
            ids = [i for i in split.ids if i in files]
            todo = table.missing(ids)
            outcome.cached += len(ids) - len(todo)
            jobs.append((name, table, files, todo))
        with bar(sum(len(j[3]) for j in jobs), f"organiser {split.name}", progress) as pb:
            for name, table, files, todo in jobs:
                dim = (table.read_manifest().get("dims") or {}).get("features") or modal_width(files.values())
                failed = {}
                for i in todo:
                    try:
                        a = np.load(files[i], allow_pickle=False).astype(np.float32)
                        a = a[None, :] if a.ndim == 1 else a.reshape(-1, a.shape[-1])
                        if dim is not None and a.shape[-1] != dim:
                            raise ValueError(f"width {a.shape[-1]}, the other {name} files have {dim}")
                        if not np.isfinite(a).all():
                            raise ValueError("holds NaN or inf")
                        table.put(i, {"features": a})
                        outcome.computed += 1
                    except Exception as e:  # a corrupt or odd file: this video lacks the stream
                        failed[i] = f"{files[i]}: {short(e)}"
                    pb.update(1)
                table.record_failures(failed)
                outcome.failed.update({f"{split.name}/{i}/{name}": r for i, r in failed.items()})
                if todo or not table.read_manifest():
                    table.write_manifest(
                        model=f"organiser {name}",
                        revision="as shipped",
                        parameters={"name": name},
                        dims={"features": dim} if dim else {},
                        versions=versions(),
                    )


def modal_width(paths) -> int | None:
    """The most common last-axis width among feature files (headers only, via a memory map); None if none
    loads."""
    widths = Counter()
    for p in paths:
        try:
            a = np.load(Path(p), mmap_mode="r", allow_pickle=False)
        except Exception:  # unreadable files are reported one by one when they are imported
            continue
        if a.ndim:
            widths[int(a.shape[-1])] += 1
    return widths.most_common(1)[0][0] if widths else None
