"""The progress counter the bakes share: 0 of total first, then one more part per tick."""

from __future__ import annotations

from generator.progress import progress_counter


def test_counter_reports_zero_then_each_tick():
    reports = []
    tick = progress_counter(lambda *report: reports.append(report), 3, "chapter")
    assert reports == [(0, 3, "chapter")]
    tick("inputs")
    tick()
    assert reports == [(0, 3, "chapter"), (1, 3, "inputs"), (2, 3, "chapter")]
