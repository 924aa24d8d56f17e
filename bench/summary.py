"""Collect bench/results/*.json into one table: bench/README.md's "Latest results" section."""
from __future__ import annotations

import json

from bench import record, stats

ORDER = ["webhook_load", "webhook_e2e", "elector_footprint", "elector_timings", "elector_apiload", "elector_scale",
         "elector_ownership", "leader_service", "rollouts", "designs", "injector_compare"]
MARK = "<!-- results: written by `make bench` (bench/summary.py) -->"
# The README's "Performance" table: these rows of bench/results/, copied as measured (a row whose bench has
# no result is left out, never carried over from an older run).
README_BEGIN = "<!-- performance: written by `make bench` (bench/summary.py) from bench/results/ -->"
README_END = "<!-- /performance -->"
#: A row's label in the README, before its own (the figure's name unless one is given): which comparison it is.
LABEL_PREFIX = {"injector_compare": "webhook beside the Vault injector: "}
HEADLINES = [
    ("webhook_e2e", "added by the webhook at the median", "pod CREATE time added by the webhook (median, real API server)"),
    ("injector_compare", "CPU per admission at saturation, small pod", None),
    ("injector_compare", "CPU per admission at saturation, large pod", None),
    ("injector_compare", "throughput at saturation, small pod", None),
    ("injector_compare", "throughput at saturation, large pod", None),
    ("injector_compare", "p99 at 200 req/s, small pod", None),
    ("injector_compare", "p99 at 200 req/s, large pod", None),
    ("injector_compare", "peak memory during saturation (PSS, all processes), small pod", "memory under load (PSS), small pod"),
    ("webhook_load", "p99 at 200 req/s, small pod", "webhook p99 at 200 req/s, small pod, vs a bare uvicorn+TLS server"),
    ("elector_footprint", "webhook image size, uncompressed", None),
    ("elector_footprint", "elector image size, uncompressed", None),
    ("elector_footprint", "container RSS after 1 min, leading", "elector container RSS after 1 min, leading"),
    ("elector_footprint", "container RSS after 1 min, floor: a TLS watch + a GET every 6 s, no elector "
                          "(bench/floor_client.py)", "the floor of any Python elector in that image (a TLS watch + a GET "
                          "every 6 s, bench/floor_client.py), beside the elector"),
    ("elector_footprint", "exec to first /readyz OK", "elector exec → ready"),
    ("elector_apiload", "one election (leader + 2 followers) per minute", "API requests per 3-candidate election"),
    ("elector_scale", "Lease requests/s, 100 elections", "100 elections × 3 candidates: Lease requests/s"),
    ("elector_timings", "failover after SIGKILL of the leader", None),
    ("elector_timings", "handover after SIGTERM of the leader", None),
    ("elector_timings", "Lease change → SSE event at a follower's client", None),
    ("rollouts", "leader changes per rollout whose leader started on an old pod", None),
    ("leader_service", "handover -> first answer from the new leader, direct path", "leader Service: handover → first answer from the new leader"),
]


def main() -> None:
    documents = [json.loads((record.RESULTS / f"{name}.json").read_text()) for name in ORDER
                 if (record.RESULTS / f"{name}.json").exists()]
    if not documents:
        return
    parts = []
    for doc in documents:
        rows = [stats.Row(**{k: v for k, v in r.items() if k != "ratio"}) for r in doc["rows"]]
        columns = doc.get("columns") or stats.COLUMNS
        parts.append(f"### {doc['name']} ({doc['machine']['date']}, {doc.get('commit', '?')})\n\n"
                     f"{stats.table(rows, columns)}\n")
    m = documents[0]["machine"]
    header = (f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}, "
              f"Python {m['python']}. Median of the runs [min–max]; settings and raw numbers in bench/results/.\n")
    section = header + "\n" + "\n".join(parts)
    readme = record.ROOT / "bench" / "README.md"
    if record.RESULTS == record.ROOT / "bench" / "results":
        text = readme.read_text() if readme.exists() else MARK
        readme.write_text(text.split(MARK)[0] + MARK + "\n\n" + section)
        print(f"wrote {readme.relative_to(record.ROOT)}")
    else:
        print(section)
    if record.RESULTS == record.ROOT / "bench" / "results":
        write_readme_table(documents)
    missed = [(d["name"], r["figure"]) for d in documents for r in d["rows"] if r["met"] is False]
    print(f"targets missed: {len(missed)}")
    for name, figure in missed:
        print(f"  {name}: {figure}")


def one(spread: dict) -> str:
    """A median, with its range when there was more than one run."""
    return stats.fmt_spread(spread) if spread["min"] != spread["max"] else stats.fmt_spread(spread).split(" [")[0]


def readme_table(documents: list[dict]) -> str:
    """HEADLINES as a Markdown table, each row with its bench's date: one run's figures, nothing older."""
    by_name = {doc["name"]: doc for doc in documents}
    lines = ["| figure | kube-elector | baseline (same run) | target | met | bench, date |", "|---|---|---|---|---|---|"]
    for name, figure, label in HEADLINES:
        doc = by_name.get(name)
        found = next((r for r in doc["rows"] if r["figure"].strip() == figure), None) if doc else None
        if found is None or found["value"].get("median") is None:
            continue
        r = stats.Row(**{k: v for k, v in found.items() if k != "ratio"})
        base = f"{one(r.baseline)} ({r.baseline_name})" if r.baseline else "-"
        met = {True: "yes", False: "**no**", None: "-"}[r.met]
        lines.append(f"| {LABEL_PREFIX.get(name, '')}{label or figure} | {one(r.value)} {r.unit} | {base} | {r.target or '-'} | {met} "
                     f"| {name}, {doc['machine']['date'][:10]} |")
    return "\n".join(lines)


def write_readme_table(documents: list[dict]) -> None:
    readme = record.ROOT / "README.md"
    text = readme.read_text()
    if README_BEGIN not in text or README_END not in text:
        print(f"README.md has no {README_BEGIN!r} ... {README_END!r} section: its table left alone")
        return
    head, rest = text.split(README_BEGIN, 1)
    readme.write_text(head + README_BEGIN + "\n" + readme_table(documents) + "\n" + README_END + rest.split(README_END, 1)[1])
    print("wrote README.md's performance table")


if __name__ == "__main__":
    main()
