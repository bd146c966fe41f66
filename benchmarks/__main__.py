"""`python -m benchmarks [incremental]`: see benchmarks/run.py and benchmarks/incremental.py."""

import sys

if sys.argv[1:2] == ["incremental"]:
    from .incremental import main

    sys.exit(main(sys.argv[2:]))

from .run import main

sys.exit(main())
