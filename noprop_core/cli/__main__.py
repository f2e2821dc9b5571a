import sys

from noprop_core.cli.main import main

sys.exit(main())
