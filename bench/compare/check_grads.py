#!/usr/bin/python3
"""Checks that the compared implementations compute the same meta-gradient for the same theta and tasks.

For each case (order 1 and 2, several inner-step counts, the paper initialisation and a larger
"trained-like" theta whose second-order terms are not negligible) it computes the meta-gradient with
  - maml_torch.py's loop in float64: the reference,
  - maml_torch.py's loop in float32,
  - maml_torch_batched.py in float32 (and in float64, which must match the reference to roundoff),
  - maml_libtorch in float32, given the same theta and tasks through a problem file,
and reports the largest absolute difference to the reference, relative to the reference's largest
absolute entry. float32 results must agree to 1e-5 of that scale, float64 ones to 1e-10. It also
checks that the order-2 and order-1 meta-gradients differ, so that the second-order path is exercised.

usage: /usr/bin/python3 check_grads.py [--libtorch PATH]   (exit status 1 if any check fails)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch

import maml_common as common
import maml_torch
import maml_torch_batched

FLOAT32_TOLERANCE = 1e-5
FLOAT64_TOLERANCE = 1e-10


def loop_meta_gradient(theta, tasks, order, inner_steps):
    params = [p.detach().clone().requires_grad_() for p in theta]
    maml_torch.accumulate_meta_gradient(params, tasks, order, inner_steps)
    return [p.grad for p in params]


def batched_meta_gradient(theta, tasks, order, inner_steps):
    params = maml_torch_batched.to_batched_layout(theta)
    maml_torch_batched.meta_loss(params, tasks, order, inner_steps).backward()
    return maml_torch_batched.grads_to_torch_layout([p.grad for p in params])


def libtorch_meta_gradient(binary, theta, tasks, order, inner_steps):
    meta_batch, k = tasks[0].shape[0], tasks[0].shape[1]
    width = theta[0].shape[0]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as problem:
        problem.write(f"maml-problem {order} {inner_steps} {width} {meta_batch} {k}\n")
        for t in list(theta) + list(tasks):
            problem.write(" ".join(f"{v:.9g}" for v in t.detach().flatten().tolist()) + "\n")
    try:
        out = subprocess.run([binary, "--check-problem", problem.name], check=True,
                             capture_output=True, text=True).stdout
    finally:
        os.unlink(problem.name)
    grads = json.loads(out)["grads"]
    return [torch.tensor(g, dtype=torch.float32).reshape(p.shape) for g, p in zip(grads, theta)]


def relative_difference(grads, reference):
    scale = max(r.abs().max().item() for r in reference)
    diff = max((g.double() - r.double()).abs().max().item() for g, r in zip(grads, reference))
    return diff / scale


def make_theta(kind, width):
    if kind == "paper-init":
        return [p.detach() for p in common.init_params(width)]
    # Trained-like: weights of order 1/sqrt(fan_in), non-zero biases, so ReLUs switch and the
    # Hessian terms of the second-order meta-gradient are far from negligible.
    theta = []
    for out_in in [(width, 1), (width, width), (1, width)]:
        theta.append(torch.randn(out_in) / out_in[1] ** 0.5)
        theta.append(0.1 * torch.randn(out_in[0]))
    return theta


def main():
    default_binary = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "build",
                                  "compare-libtorch", "maml_libtorch")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--libtorch", default=os.path.normpath(default_binary),
                        help="maml_libtorch binary (skipped with a message if missing)")
    parser.add_argument("--width", type=int, default=40)
    parser.add_argument("--meta-batch", type=int, default=25)
    args = parser.parse_args()

    common.setup_torch(threads=1, seed=1234)
    have_libtorch = os.access(args.libtorch, os.X_OK)
    if not have_libtorch:
        print(f"check_grads: {args.libtorch} not built: libtorch not checked", file=sys.stderr)

    failures = 0
    print(f"{'case':34s} {'loop f32':>10s} {'batched f32':>12s} {'batched f64':>12s} {'libtorch f32':>13s}")
    for kind in ("paper-init", "trained-like"):
        theta = make_theta(kind, args.width)
        tasks = common.sample_tasks(args.meta_batch)
        theta64 = [t.double() for t in theta]
        tasks64 = [t.double() for t in tasks]
        by_order = {}
        for order in (1, 2):
            for inner_steps in (1, 3):
                reference = loop_meta_gradient(theta64, tasks64, order, inner_steps)
                by_order[(order, inner_steps)] = reference
                results = {
                    "loop f32": (loop_meta_gradient(theta, tasks, order, inner_steps), FLOAT32_TOLERANCE),
                    "batched f32": (batched_meta_gradient(theta, tasks, order, inner_steps), FLOAT32_TOLERANCE),
                    "batched f64": (batched_meta_gradient(theta64, tasks64, order, inner_steps), FLOAT64_TOLERANCE),
                }
                if have_libtorch:
                    results["libtorch f32"] = (
                        libtorch_meta_gradient(args.libtorch, theta, tasks, order, inner_steps), FLOAT32_TOLERANCE)
                cells = []
                for name in ("loop f32", "batched f32", "batched f64", "libtorch f32"):
                    if name not in results:
                        cells.append("skipped")
                        continue
                    grads, tolerance = results[name]
                    rel = relative_difference(grads, reference)
                    ok = rel <= tolerance
                    failures += not ok
                    cells.append(f"{rel:.1e}{'' if ok else ' FAIL'}")
                case = f"{kind} order {order} S={inner_steps}"
                print(f"{case:34s} {cells[0]:>10s} {cells[1]:>12s} {cells[2]:>12s} {cells[3]:>13s}")
        for inner_steps in (1, 3):
            gap = relative_difference(by_order[(1, inner_steps)], by_order[(2, inner_steps)])
            print(f"{kind} S={inner_steps}: order 1 vs order 2 differ by {gap:.1e} (relative)")
            if gap < 1e-6:
                print("  FAIL: the second-order terms vanish, the check does not exercise them")
                failures += 1
    print("all meta-gradients agree" if failures == 0 else f"{failures} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
