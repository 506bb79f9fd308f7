"""``python -m regbench``."""

from regbench.cli import main

main()
