"""Experiments stage: the course chapters' experiments (editing, views, samples, MNIST training)."""
