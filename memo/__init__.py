"""memo: predict how memorable a video ad is.

    import memo
    project = memo.open(data="path/to/videm", offline=True)   # the Python API (memo.api, docs/python.md)

The package root holds what every stage shares (config, dataset readers, feature store, splits,
metrics, cross-validation, the predictor registry, errors, model resolution). The stages live in
folders of their own, installed into this namespace: memo.features, memo.rationales,
memo.baselines, memo.llm_fusion, then memo.submission, memo.evaluation, memo.samplekit, the Python
API in memo.api and the command line in memo.cli. docs/architecture.md draws how they fit together.
"""

__version__ = "0.1.0"

# the Python API, imported on first use (PEP 562): `import memo` and `memo --help` load nothing heavy
_API = ("open", "Project", "FittedRun")

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from memo import api

        value = getattr(api, name)
        globals()[name] = value  # found directly from now on
        return value
    raise AttributeError(f"module 'memo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
