"""``python -m consortium.audit.figures verify <bundle> --vkey <key>``."""

import sys

from consortium.audit.figures import main

sys.exit(main())
