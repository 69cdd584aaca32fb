"""`python -m memo.cli ...`, the same as `memo ...`."""

from memo.cli.commands import main

main()
