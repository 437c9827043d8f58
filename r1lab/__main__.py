"""`python -m r1lab ...` is the `r1lab` command."""

from r1lab.cli import main

main()
