"""Where this process stands in a multi-process launch (`accelerate launch`, torchrun), from the environment.

Every process of a launch runs the whole command; they share the feature store (each computes its
own share of ids) and train one model together under DDP. Files that exist once (run files, a
trained model's folder) are written by the main process alone.
"""

from __future__ import annotations

import os


def process_slot() -> tuple[int, int]:
    """(rank, world size): (0, 1) outside a launch."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
