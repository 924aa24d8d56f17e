"""`kube-elector` / `python -m elector`: parse settings, set up logging, run; exit 1 on bad config."""
from __future__ import annotations

import asyncio
import os
import sys
from typing import Optional, Sequence

from elector import app
from elector import kubeconfig
from elector import logs
from elector import settings

__all__ = ["main"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        cfg = settings.parse(sys.argv[1:] if argv is None else argv, os.environ)
    except settings.SettingsError as exc:
        print(f"kube-elector: {exc}", file=sys.stderr)
        return 1
    logs.setup(fmt=cfg.log_format, level=cfg.log_level, pod=cfg.pod_name, election=cfg.election.describe())
    try:
        return asyncio.run(app.run(cfg))
    except (kubeconfig.ConfigError, settings.SettingsError) as exc:
        print(f"kube-elector: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
