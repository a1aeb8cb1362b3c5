"""Models stage: `testing:` models, random-weight pipelines of the real architectures built locally."""
