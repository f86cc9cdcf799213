"""`python -m visionbench` runs the CLI."""

from visionbench.cli import main

main()
