"""`kube-elector` / `python -m elector`: parse settings, set up logging, run; exit 1 on bad config.

`kube-elector status ...` is the operator's status view (package `kubectl_elector`, installed with the
project but not in the sidecar image): imported only for that word, never on the sidecar's path.
"""
from __future__ import annotations

import asyncio
import importlib
import os
import sys
from typing import Optional, Sequence

from elector import app
from elector.kube import kubeconfig
from elector.ops import logs
from elector import settings

__all__ = ["main"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["status"]:
        try:
            status_view = importlib.import_module("kubectl_elector")
        except ImportError:
            print("kube-elector: the status view is not installed here (pip install kube-elector; "
                  "the sidecar image holds the elector only)", file=sys.stderr)
            return 1
        return int(status_view.main(argv))
    try:
        cfg = settings.parse(argv, os.environ)
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
