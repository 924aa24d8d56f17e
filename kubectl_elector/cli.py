"""The command line: `kube-elector status`, `kube-elector-status`, `kubectl elector status`.

    kubectl elector status [ELECTION] [-n NAMESPACE | -A] [-o wide|json|yaml] [-w] [--interval 2s]
                           [--kubeconfig FILE] [--context NAME]

The kubeconfig is the user's, found as kubectl finds it: --kubeconfig, else $KUBECONFIG (a list,
merged), else ~/.kube/config; the namespace: -n, else the context's, else "default". --watch
refreshes every --interval (two or three LISTs) and prints each election again when it changed,
as `kubectl get -w` does. Exit codes: 0, 1 on a read or config error, 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Optional, Sequence

from elector.kube import httpclient
from elector.kube import kubeconfig
from elector.election import timings
from kubectl_elector import output
from kubectl_elector import reads
from kubectl_elector import summary

__all__ = ["main"]

PROG = "kubectl elector status"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Every kube-elector election at a glance "
                                     "(leader, term, transitions, candidates, warnings). Read-only.")
    parser.add_argument("election", nargs="?", help="only this election (the Lease name)")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", help="namespace (default: the context's, else default)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    parser.add_argument("-o", "--output", choices=["table", "wide", "json", "yaml"], default="table")
    parser.add_argument("-w", "--watch", action="store_true", help="keep printing changes")
    parser.add_argument("--interval", default="2s", help="refresh period of --watch (Go duration)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("--request-timeout", default="10s", help="per request (Go duration)")
    return parser


def _kubeconfig_files(flag: Optional[str]) -> list[str]:
    if flag:
        return [flag]
    if os.environ.get("KUBECONFIG"):
        return kubeconfig.paths(os.environ["KUBECONFIG"])
    return [os.path.join(os.path.expanduser("~"), ".kube", "config")]


def _print(rows: list[summary.Election], args: argparse.Namespace, *, first: bool) -> None:
    if args.output in ("json", "yaml"):
        docs = [output.document(row) for row in rows]
        if args.watch and not first:
            for doc in docs:  # one document per change, as kubectl get -w -o json
                sys.stdout.write(output.dumps(doc, args.output) if args.output == "json" else "---\n" + output.dumps(doc, "yaml"))
        else:
            sys.stdout.write(output.dumps({"items": docs}, args.output))
    else:
        sys.stdout.write(output.table(rows, all_namespaces=args.all_namespaces, wide=args.output == "wide",
                                      header=first))
        if first and not rows:
            where = "any namespace" if args.all_namespaces else f"namespace {args.namespace}"
            sys.stdout.write(f"No elections found in {where}.\n")
    sys.stdout.flush()


async def _run(args: argparse.Namespace, creds: kubeconfig.Credentials, *, interval: float, timeout: float) -> int:
    client = httpclient.Client(creds.server, ssl_context=creds.ssl_context, token=creds.token, timeout=timeout)
    namespace = None if args.all_namespaces else args.namespace
    shown: dict[tuple[str, str], tuple[object, ...]] = {}
    first = True
    try:
        while True:
            started = time.monotonic()
            rows = summary.summarize(await reads.snapshot(client, namespace=namespace, election=args.election))
            changed = [row for row in rows if shown.get((row.namespace, row.name)) != row.key()]
            if first or changed:
                _print(rows if first else changed, args, first=first)
            shown = {(row.namespace, row.name): row.key() for row in rows}
            first = False
            if not args.watch:
                return 0
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        await client.close()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of every spelling; a leading `status` word (the kubectl plugin's) is optional."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["status"]:
        argv = argv[1:]
    args = _parser().parse_args(argv)
    try:
        interval = timings.parse(args.interval)
        timeout = timings.parse(args.request_timeout)
        creds = kubeconfig.from_kubeconfig(_kubeconfig_files(args.kubeconfig), now=time.monotonic,
                                           context=args.context)
    except (ValueError, kubeconfig.ConfigError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    if not args.all_namespaces and not args.namespace:
        args.namespace = creds.namespace or "default"
    try:
        return asyncio.run(_run(args, creds, interval=max(interval, 0.2), timeout=max(timeout, 1.0)))
    except reads.ReadError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
