"""Built-in 'shapes' model: the procedural world, the networks, training and export."""
