"""The training loss of models on one recipe's validation files: a criterion that compares runs
whose own validation files differ (arms with different data), as long as the targets are the same.

    python scripts/validation_loss.py recipes/pilot/dipole_charges.yaml \\
        --model v7=phi-painn-organic --model pilot=runs/pilot/fpscl_supplement_seed0/best_model.pt

Reads the recipe's ``data.val`` files and its ``loss`` section, and evaluates each model as the
trainer validates (:func:`phicalc.train.evaluation.evaluate` with the recipe's loss and
validation batch size, in the model's own dtype): the printed loss of a run's best model on its own recipe is
the validation loss its training log reports. Prints a markdown table of the loss and its terms.
"""

from __future__ import annotations

import argparse

import torch

from phicalc.serialization import load_model
from phicalc.train.config import TrainConfig
from phicalc.train.data import TrainingData
from phicalc.train.evaluation import evaluate
from phicalc.train.loss import WeightedLoss
from phicalc.train.preparation import build_graphs


def validation_metrics(config: TrainConfig, model_path: str) -> dict[str, float]:
    """Loss and metrics of one model on ``config``'s validation files."""
    model = load_model(model_path)
    records = TrainingData(config.data).split("val")
    graphs = build_graphs(records, model.cutoff, torch.device("cpu"), name="val", progress=False)
    batch_size = config.optim.val_batch_size or config.optim.batch_size
    return evaluate(model, graphs, batch_size=batch_size, loss=WeightedLoss(config.loss))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "recipe", help="training recipe (YAML) whose validation files and loss to use"
    )
    parser.add_argument("--model", action="append", required=True, metavar="NAME=MODEL")
    args = parser.parse_args()
    config = TrainConfig.from_yaml(args.recipe)
    results = {
        name: validation_metrics(config, path)
        for name, path in (item.split("=", 1) for item in args.model)
    }
    keys = ["loss"] + sorted(k for k in next(iter(results.values())) if k.startswith("loss_"))
    print("| model | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, metrics in results.items():
        print(
            f"| {name} | " + " | ".join(f"{metrics.get(k, float('nan')):.5f}" for k in keys) + " |"
        )


if __name__ == "__main__":
    main()
