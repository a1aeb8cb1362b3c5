"""CLI stage: the typer application and its command groups (commands live in sibling modules)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="diffatlas",
    help="Bake diffusion-model experiments into an explorable, embeddable static site.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
train_app = typer.Typer(help="Train the built-in models from scratch.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure the built-in models.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
