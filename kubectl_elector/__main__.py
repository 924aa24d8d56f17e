"""`python -m kubectl_elector status ...`"""
import sys

from kubectl_elector.cli import main

if __name__ == "__main__":
    sys.exit(main())
