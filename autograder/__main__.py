"""`python -m autograder ...` runs the command line (see `autograder.cli`)."""
import sys

from .cli import main

sys.exit(main())
