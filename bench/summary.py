"""Collect bench/results/*.json into one table: bench/README.md's "Latest results" section."""
from __future__ import annotations

import json

from bench import record, stats

ORDER = ["webhook_load", "webhook_e2e", "elector_footprint", "elector_timings", "elector_apiload", "elector_scale",
         "elector_ownership", "leader_service", "rollouts", "designs"]
MARK = "<!-- results: written by `make bench` (bench/summary.py) -->"


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
    missed = [(d["name"], r["figure"]) for d in documents for r in d["rows"] if r["met"] is False]
    print(f"targets missed: {len(missed)}")
    for name, figure in missed:
        print(f"  {name}: {figure}")


if __name__ == "__main__":
    main()
