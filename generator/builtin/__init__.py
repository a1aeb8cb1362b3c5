"""Built-in models: the project's own shapes and digits models (data, networks, training, weights I/O)."""
