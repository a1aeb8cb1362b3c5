"""bake stage."""
