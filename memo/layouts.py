"""Where reading a dataset starts: every folder layout, how one is recognised, and `read_dataset`.

    ds = read_dataset("../shared/data/videm")        # layout detected from the folder
    detect_layout(Path("../shared/data/memento10k"))  # "mediaeval2021"

Each layout is one module that registers a memo.data.Layout (its reader, how to recognise a folder
of it, and its rank in detection) in memo.data.LAYOUTS; importing them here fills the registry. A
new layout is a new module plus its import below.
"""

from __future__ import annotations

from pathlib import Path

from memo import layout_csv, layout_mediaeval2021, layout_videm  # noqa: F401  (they register the layouts)
from memo.data import LAYOUTS, Dataset, Layout, with_parent_groups
from memo.errors import DataError


def layouts() -> list[Layout]:
    """The registered layouts in the order detection asks them (by rank)."""
    return sorted((LAYOUTS.get(n) for n in LAYOUTS.names()), key=lambda layout: (layout.rank, layout.name))


def detect_layout(path: Path) -> str:
    """The name of the first layout (by rank) that recognises `path`."""
    found = next((layout.name for layout in layouts() if layout.detect(path)), None)
    if found is None:
        *first, last = [f"{layout.expects} ({layout.name})" for layout in layouts()]
        raise DataError(
            f"cannot tell the layout of {path}: expected {', '.join(first)} or {last}; "
            "pass --layout to choose."
        )
    return found


def read_dataset(
    path: str | Path,
    layout: str | None = None,
    targets: list[str] | None = None,
    groups: dict[str, str] | None = None,
) -> Dataset:
    """Read a dataset folder; `layout` is one of LAYOUTS (videm, mediaeval2021, csv) or detected; videos are
    grouped by parent brand, with `groups` ({channel: parent}, `[project] groups`) over the rule."""
    root = Path(path).expanduser()
    if not root.exists():
        raise DataError(
            f"dataset path {root} does not exist; pass the organisers' data folder (or run `memo "
            "demo-data PATH`)."
        )
    reader = LAYOUTS.get(layout or detect_layout(root)).read
    return with_parent_groups(reader(root, targets=targets), groups)
