"""Evaluate stage: measuring models and figures (checkers, judges, eval reports, verdicts)."""
