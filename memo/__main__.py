"""`python -m memo` and `accelerate launch -m memo ...` run the CLI."""

from memo.cli import main

main()
