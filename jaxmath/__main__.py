import sys

from jaxmath.cli import main

sys.exit(main())
