"""Madry-style adversarial training of LeNet-5 on MNIST, and PGD evaluation of saved models.

Train (PGD-k adversarial training, stops at --epochs or when the next epoch would exceed --budget-minutes):

    python benchmarks/madry_mnist.py train --eps 0.3 --num-steps 7 --step-size 0.1 --epochs 100 \\
        --budget-minutes 20 --save /tmp/C-lenet-madry --json /tmp/madry.json

Evaluate any model saved by ``jaxmath train`` or by this script (clean and PGD-40 accuracy, the 10,000 test
images):

    python benchmarks/madry_mnist.py evaluate --model /tmp/C-lenet --eps 0.3 --num-steps 40 --step-size 0.01

The Madry et al. (2018) recipe on a GPU/TPU is ``train --eps 0.3 --num-steps 40 --step-size 0.01
--batch-size 50 --lr 1e-4 --epochs 84`` (100k steps of 50 images) with a wider network (see
docs/adversarial.md).
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxmath import adversarial, models, optim, training
from jaxmath.datasets import load_mnist
from jaxmath.models import lenet5


def _pixels(x):
    return jnp.asarray(x, jnp.float32) / jnp.asarray(255, jnp.float32)


def evaluate(model, params, *, split, eps, num_steps, step_size, seed, batch_size=500, restarts=1):
    """Clean and PGD accuracy of ``params`` on ``split`` (``robust_accuracy``: one compile for all eps)."""
    x, labels = load_mnist(split)
    start = time.perf_counter()
    result = adversarial.robust_accuracy(
        model.apply, params, _pixels(x), jnp.asarray(labels, jnp.int32), jax.random.key(seed), eps=eps,
        attack="pgd", step_size=step_size, num_steps=num_steps, num_restarts=restarts, batch_size=batch_size)
    seconds = time.perf_counter() - start
    return {"split": split, "eps": [float(e) for e in result.eps], "accuracy": [float(a) for a in result.accuracy],
            "clean_accuracy": float(result.clean_accuracy), "num_steps": num_steps, "step_size": step_size,
            "num_restarts": restarts, "seconds": seconds}


def train(args):
    model = lenet5.make()
    clean = training.make_classifier_loss(model, num_classes=10)
    optimizer = optim.adam(learning_rate=args.lr)
    x, labels = load_mnist(args.train)
    x, labels = jax.device_put(x), jax.device_put(labels)
    # --init continues from saved params (a run cut by its budget); the optimizer state starts afresh.
    params = models.load(args.init)[1] if args.init else model.init(jax.random.key(args.seed))
    steps = {}

    def step_for(eps):
        # One step per radius (the ramp uses a few): they share the optimizer, so the state carries over.
        if eps not in steps:
            alpha = args.step_size * eps / args.eps
            attack = adversarial.make_attack(model.apply, method="pgd", eps=eps, step_size=alpha,
                                             num_steps=args.num_steps)
            steps[eps] = training.make_train_step(adversarial.adversarial_loss(clean, attack), optimizer)
        return steps[eps]

    state = step_for(args.eps).init(params, key=jax.random.key(args.seed + 1))
    records, started, last = [], time.perf_counter(), 0.0
    for epoch in range(1, args.epochs + 1):
        elapsed = time.perf_counter() - started
        if epoch > 1 and args.budget_minutes is not None and elapsed + last > args.budget_minutes * 60:
            break
        # Linear ramp of ε over the first --ramp-epochs epochs (0: none); α scales with ε.
        eps = args.eps if args.ramp_epochs == 0 else round(args.eps * min(1.0, epoch / args.ramp_epochs), 4)
        step = step_for(eps)
        t0 = time.perf_counter()
        state, metrics = training.run_epoch(state, x, labels, train_step=step, batch_size=args.batch_size)
        metrics = jax.device_get(metrics)
        last = time.perf_counter() - t0
        record = {"epoch": epoch, "eps": eps, "seconds": last, "adv_train_loss": float(np.mean(metrics["loss"])),
                  "adv_train_accuracy": float(np.mean(metrics["accuracy"]))}
        records.append(record)
        print(json.dumps(record), flush=True)
    total = time.perf_counter() - started
    metadata = {"recipe": vars(args), "epochs_run": len(records), "train_seconds": total}
    if args.save:
        models.save(args.save, model, state.params, metadata=metadata)
        print(f"wrote {args.save}", flush=True)
    result = evaluate(model, state.params, split=args.eval, eps=[args.eps], num_steps=args.eval_steps,
                      step_size=args.eval_step_size, seed=args.seed + 2)
    out = {"train": metadata, "epochs": records, "evaluation": result}
    print(json.dumps(result), flush=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="PGD adversarial training of LeNet-5, then a PGD evaluation")
    t.add_argument("--train", default="train")
    t.add_argument("--eval", default="test")
    t.add_argument("--eps", type=float, default=0.3)
    t.add_argument("--num-steps", type=int, default=7)
    t.add_argument("--step-size", type=float, default=0.1)
    t.add_argument("--ramp-epochs", type=int, default=0, help="ramp eps linearly over this many epochs")
    t.add_argument("--epochs", type=int, default=100)
    t.add_argument("--budget-minutes", type=float, default=None, help="wall-clock budget of the training")
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--eval-steps", type=int, default=40)
    t.add_argument("--eval-step-size", type=float, default=0.01)
    t.add_argument("--init", help="start from the params saved in this directory (optimizer state restarts)")
    t.add_argument("--save")
    t.add_argument("--json")
    e = sub.add_parser("evaluate", help="clean and PGD accuracy of a saved model")
    e.add_argument("--model", required=True)
    e.add_argument("--eval", default="test")
    e.add_argument("--eps", default="0.3", help="comma-separated radii")
    e.add_argument("--num-steps", type=int, default=40)
    e.add_argument("--step-size", type=float, default=0.01)
    e.add_argument("--restarts", type=int, default=1)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json")
    args = parser.parse_args()
    print(f"jax {jax.__version__}, devices {jax.devices()}", flush=True)
    if args.command == "train":
        out = train(args)
    else:
        model, params, _ = models.load(args.model)
        out = evaluate(model, params, split=args.eval, eps=[float(v) for v in args.eps.split(",")],
                       num_steps=args.num_steps, step_size=args.step_size, seed=args.seed, restarts=args.restarts)
        print(json.dumps(out), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
