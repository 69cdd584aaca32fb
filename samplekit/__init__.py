"""memo without a dataset or a model hub: a synthetic dataset in the organisers' layout, tiny random
models of the real architectures, and the demo that runs every stage on them.

    from memo.samplekit.videm import write_sample_dataset     # `memo data sample FOLDER`
    from memo.samplekit.tiny_models import tiny_gemma3          # what `tiny:gemma3` resolves to
    from memo.samplekit.demo import run_demo                    # `memo demo`

Tests build on this kit; nothing in it downloads anything.
"""
