"""The README's performance table is copied from one run's results: no row of a bench that did not run."""
from __future__ import annotations

from bench import summary


def _doc(name: str, date: str, rows: list[dict]) -> dict:
    return {"name": name, "machine": {"date": date}, "rows": rows}


def _row(figure: str, median: float, runs: int = 1, **extra: object) -> dict:
    spread = {"median": median, "min": median, "max": median + (runs > 1), "runs": runs}
    return {"figure": figure, "unit": "ms", "value": spread, "baseline": None, "baseline_name": "", "target": "",
            "met": None, "note": "", **extra}


def test_rows_come_from_the_results_given_and_nothing_else() -> None:
    documents = [_doc("webhook_e2e", "2026-12-05T10:00:00+0000",
                      [_row("added by the webhook at the median", 1.5, runs=5, target="≤ 2 ms", met=True)])]
    table = summary.readme_table(documents).splitlines()
    assert len(table) == 3  # header, rule, the one row whose bench ran
    assert "| 1.50 [1.50–2.50] ms |" in table[2] and "| ≤ 2 ms | yes | webhook_e2e, 2026-12-05 |" in table[2]


def test_a_missed_target_is_shown_and_a_single_run_without_a_range() -> None:
    documents = [_doc("elector_footprint", "2026-12-05T10:00:00+0000",
                      [_row("container RSS after 1 min, leading", 23.5, target="≤ 18 MiB", met=False)])]
    line = summary.readme_table(documents).splitlines()[2]
    assert "| 23.50 ms |" in line and "**no**" in line
