"""Per-video feature arrays in the resumable feature store.

    from memo.features import run_features, load_features, EXTRACTORS
    run_features(project, extractors=["e5", "organiser"])          # `memo features`
    X = load_features(project, "dev", ["e5", "metadata"])           # memo.store.Features

Extractors (registered by name in EXTRACTORS, chosen in [features] extractors of memo.toml):
`vit` (frames through a vision transformer), `e5` (E5 of each text field), `audio` (sound track
through an audio transformer), `stats` (cheap interpretable video statistics), `organiser` (the
organisers' own feature files). Other stages write their text streams with `put_text_stream`
(e.g. `rationale.humor`) and `ratings` with `put_named_stream`; see docs/features.md.
"""

from memo.features.base import EXTRACTORS, Extractor, Outcome
from memo.features.load import load_available, load_features, metadata_frame
from memo.features.run import run_features
from memo.features.text import TextEncoder, embed_texts, put_named_stream, put_text_stream, rationale_source

__all__ = [
    "EXTRACTORS",
    "Extractor",
    "Outcome",
    "TextEncoder",
    "embed_texts",
    "load_available",
    "load_features",
    "metadata_frame",
    "put_named_stream",
    "put_text_stream",
    "rationale_source",
    "run_features",
]
