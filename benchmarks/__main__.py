"""`python -m benchmarks [incremental | scale]`: see benchmarks/run.py, incremental.py, scale.py."""

import sys

if sys.argv[1:2] == ["incremental"]:
    from .incremental import main

    sys.exit(main(sys.argv[2:]))
if sys.argv[1:2] == ["scale"]:
    from .scale import main

    sys.exit(main(sys.argv[2:]))

from .run import main

sys.exit(main())
