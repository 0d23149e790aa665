import sys

from thinet.cli import main

sys.exit(main())
