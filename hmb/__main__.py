"""`python -m hmb` runs the operator CLI."""

from hmb.ops.cli import main

main()
