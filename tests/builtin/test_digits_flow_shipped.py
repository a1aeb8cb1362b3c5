"""The shipped flow-matching class model (generator/weights/digits/flow-class): the judge reads its samples as
asked, through our own Euler sampler and through the registry's embedded:digits-flow (the shared loop)."""

from __future__ import annotations

import torch

from generator.builtin.digits.flow import FlowEuler
from generator.builtin.digits.weights import load_digits_unet, shipped_weights_dir
from generator.evaluate.digits_judge import shipped_classifier
from generator.evaluate.digits_report import sample_class_model, score_class_samples

STEPS = 10  # few Euler steps: 20 samples x 10 steps x 2 guidance branches (~3 s on one idle CPU thread)


def test_the_shipped_flow_class_model_draws_the_asked_digits() -> None:
    torch.set_num_threads(1)
    model, config = load_digits_unet(shipped_weights_dir() / "flow-class")
    assert config["objective"] == "flow" and config["stage"] == "class" and config["hidden"] == 32
    labels = torch.arange(20) % 10
    samples = sample_class_model(model, labels, FlowEuler(STEPS), gamma=5.0, seed=0)
    scored = score_class_samples(shipped_classifier(), samples, labels)
    assert scored.numbers["label_accuracy"] >= 0.95, scored.numbers


def test_embedded_digits_flow_samples_through_the_shared_loop() -> None:
    from generator.models.registry import load_model

    adapter = load_model("embedded:digits-flow", device="cpu")
    assert adapter.prediction_type == "flow" and adapter.default_scheduler == "flow-euler"
    prompts = [str(d) for d in range(10)]
    images = adapter.generate(prompts, seed=0, steps=STEPS)
    batch = torch.stack([torch.tensor(list(image.convert("L").getdata()), dtype=torch.float32).view(1, 28, 28) / 255
                         for image in images])
    scored = score_class_samples(shipped_classifier(), batch, torch.arange(10))
    assert scored.numbers["label_accuracy"] >= 0.9, scored.numbers  # 10 samples: at most one miss
