#!/usr/bin/python3
"""PyTorch side of the supervised-training comparison (bench/compare/README.md), the way a
PyTorch user writes it: torch.nn.Sequential, CrossEntropyLoss, torch.optim.Adam, one thread.

  train_torch.py step --batch N [--steps S --warmup W --seed K]
      times one training step (zero_grad, forward, loss, backward, Adam) of the
      784-256-128-10 ReLU MLP on random images; prints one JSON line (median ms per step).
  train_torch.py seed-program [--seed K --data DIR]
      the seed document's program on Fashion-MNIST: 784 -> 10 softmax regression with W = 0 and
      b = 0, plain SGD at 0.5, 1000 steps of 100 shuffled training images; prints the test
      accuracy (the anchor of examples/fashion_mnist's "seed" run).
  train_torch.py mlp [--epochs E --seed K --data DIR]
      the same MLP trained with Adam 1e-3, batches of 128, E epochs; prints the test accuracy.
"""
import argparse
import gzip
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from maml_common import blas_info  # noqa: E402  (the BLAS torch calls; its threads set to 1)

torch.set_num_threads(1)
torch.set_num_interop_threads(1)
BLAS, BLAS_CONFIG = blas_info(1)


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(directory, split):
    def find(name):
        for candidate in (os.path.join(directory, name + ".gz"), os.path.join(directory, name)):
            if os.path.exists(candidate):
                return candidate
        sys.exit(f"train_torch.py: no {name}[.gz] in {directory} (apt-get install dataset-fashion-mnist)")
    images = read_idx(find(f"{split}-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255.0
    labels = read_idx(find(f"{split}-labels-idx1-ubyte")).astype(np.int64)
    return torch.from_numpy(images), torch.from_numpy(labels)


def mlp():
    return torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128), torch.nn.ReLU(),
                               torch.nn.Linear(128, 10))


def accuracy(model, x, y):
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def step(args):
    torch.manual_seed(args.seed)
    model, loss_fn = mlp(), torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.rand(args.batch, 784)
    y = torch.randint(0, 10, (args.batch,))
    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    print(json.dumps({"impl": "pytorch", "batch": args.batch, "ms_median": 1e3 * statistics.median(times),
                      "steps": args.steps, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "blas": BLAS, "blas_config": BLAS_CONFIG}))


def batches(n, batch, generator):
    while True:
        order = torch.randperm(n, generator=generator)
        for first in range(0, n, batch):
            yield order[first:first + batch]


def seed_program(args):
    x, y = load(args.data, "train")
    tx, ty = load(args.data, "t10k")
    g = torch.Generator().manual_seed(args.seed)
    model = torch.nn.Linear(784, 10)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    opt, loss_fn = torch.optim.SGD(model.parameters(), lr=0.5), torch.nn.CrossEntropyLoss()
    it = batches(len(y), 100, g)
    for _ in range(1000):
        idx = next(it)
        opt.zero_grad()
        loss_fn(model(x[idx]), y[idx]).backward()
        opt.step()
    print(json.dumps({"impl": "pytorch", "run": "seed", "seed": args.seed, "accuracy": accuracy(model, tx, ty)}))


def mlp_training(args):
    x, y = load(args.data, "train")
    tx, ty = load(args.data, "t10k")
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    model, loss_fn = mlp(), torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    per_epoch = (len(y) + 127) // 128
    it = batches(len(y), 128, g)
    t0 = time.perf_counter()
    for _ in range(args.epochs * per_epoch):
        idx = next(it)
        opt.zero_grad()
        loss_fn(model(x[idx]), y[idx]).backward()
        opt.step()
    seconds = time.perf_counter() - t0
    print(json.dumps({"impl": "pytorch", "run": "mlp", "seed": args.seed, "epochs": args.epochs,
                      "accuracy": accuracy(model, tx, ty), "train_seconds": seconds}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["step", "seed-program", "mlp"])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()
    {"step": step, "seed-program": seed_program, "mlp": mlp_training}[args.mode](args)


if __name__ == "__main__":
    main()
