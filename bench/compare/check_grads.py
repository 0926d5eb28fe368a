#!/usr/bin/python3
"""Checks that the compared implementations compute the same meta-gradient for the same theta and tasks.

For each case (order 1 and 2, several inner-step counts, the paper initialisation and a larger
"trained-like" theta whose second-order terms are not negligible) it computes the meta-gradient with
  - maml_torch.py's loop in float64: the reference,
  - maml_torch.py's loop in float32,
  - maml_torch_batched.py in float32 (and in float64, which must match the reference to roundoff),
  - maml_libtorch in float32 (sine only), given the same theta and tasks through a problem file,
  - compare_metalearn (metalearn's Maml) in float32, the same way,
and reports the largest absolute difference to the reference, relative to the reference's largest
absolute entry. float32 results must agree to 1e-5 of that scale (omniglot: 1e-4, see
OMNIGLOT_FLOAT32_TOLERANCE), float64 ones to 1e-10. It also
checks that the order-2 and order-1 meta-gradients differ, so that the second-order path is exercised.

--workload sine (default): the 1-W-W-1 sine network, S = 1 and 3.
--workload omniglot: the 784-256-128-64-64-N classifier, S = 1, 5-way 1-shot, 5-way 5-shot and
20-way 1-shot episodes, 4 tasks (the order-1 / order-2 difference is required at the trained-like
theta only: at the paper initialisation, sigma = 0.01 over five layers, the second-order terms
are below float32 resolution).

usage: /usr/bin/python3 check_grads.py [--workload sine|omniglot|all] [--libtorch PATH] [--metalearn PATH]
(exit status 1 if any check fails; a binary that is not built is skipped with a message)
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
# Omniglot at the paper initialisation: the meta-gradient is small and comes from cancellations
# (the output bias's gradient sums to zero over the balanced classes), so float32 rounding of the
# 784-long sums shows at about 1e-5 of its largest entry in every float32 implementation, torch's
# own loop included.
OMNIGLOT_FLOAT32_TOLERANCE = 1e-4


def loop_meta_gradient(workload, theta, tasks, order, inner_steps):
    params = [p.detach().clone().requires_grad_() for p in theta]
    maml_torch.accumulate_meta_gradient(params, tasks, order, inner_steps, workload)
    return [p.grad for p in params]


def batched_meta_gradient(workload, theta, tasks, order, inner_steps):
    layout = maml_torch_batched.layout(workload)
    params = layout.to_layout(theta)
    maml_torch_batched.meta_loss(params, tasks, order, inner_steps, workload).backward()
    return layout.from_layout([p.grad for p in params])


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


def _values(tensor):
    if tensor.dtype.is_floating_point:
        return " ".join(f"{v:.9g}" for v in tensor.detach().flatten().tolist())
    return " ".join(str(v) for v in tensor.flatten().tolist())


def metalearn_meta_gradient(binary, workload, theta, tasks, order, inner_steps):
    """compare_metalearn --check-problem: metalearn's Maml on the same theta and tasks (float32)."""
    xs, ys, xq, yq = tasks
    loss = "softmax_cross_entropy" if workload.name == "omniglot" else "mse"
    widths = [workload.shapes[0][1]] + [out for out, _ in workload.shapes]
    header = ["metalearn-problem", loss, order, inner_steps, repr(workload.inner_lr), xs.shape[0], xs.shape[1],
              xq.shape[1], len(workload.shapes)] + widths
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as problem:
        problem.write(" ".join(str(v) for v in header) + "\n")
        for t in theta:
            problem.write(_values(t) + "\n")
        for b in range(xs.shape[0]):
            for t in (xs[b], ys[b], xq[b], yq[b]):
                problem.write(_values(t) + "\n")
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


def make_theta(kind, workload):
    if kind == "paper-init":
        return [p.detach() for p in workload.init_params()]
    # Trained-like: weights of order 1/sqrt(fan_in), non-zero biases, so ReLUs switch and the
    # Hessian terms of the second-order meta-gradient are far from negligible.
    theta = []
    for out_in in workload.shapes:
        theta.append(torch.randn(out_in) / out_in[1] ** 0.5)
        theta.append(0.1 * torch.randn(out_in[0]))
    return theta


COLUMNS = ("loop f32", "batched f32", "batched f64", "libtorch f32", "metalearn f32")


def check_cases(workload, label, meta_batch, inner_step_counts, libtorch, metalearn, gap_kinds,
                float32_tolerance=FLOAT32_TOLERANCE):
    """Prints one row per case; returns the number of failed checks."""
    failures = 0
    for kind in ("paper-init", "trained-like"):
        theta = make_theta(kind, workload)
        tasks = workload.sample(meta_batch)
        theta64 = [t.double() for t in theta]
        tasks64 = [t.double() if t.dtype.is_floating_point else t for t in tasks]
        by_order = {}
        for order in (1, 2):
            for inner_steps in inner_step_counts:
                reference = loop_meta_gradient(workload, theta64, tasks64, order, inner_steps)
                by_order[(order, inner_steps)] = reference
                results = {
                    "loop f32": (loop_meta_gradient(workload, theta, tasks, order, inner_steps), float32_tolerance),
                    "batched f32": (batched_meta_gradient(workload, theta, tasks, order, inner_steps),
                                    float32_tolerance),
                    "batched f64": (batched_meta_gradient(workload, theta64, tasks64, order, inner_steps),
                                    FLOAT64_TOLERANCE),
                }
                if libtorch:
                    results["libtorch f32"] = (
                        libtorch_meta_gradient(libtorch, theta, tasks, order, inner_steps), float32_tolerance)
                if metalearn:
                    results["metalearn f32"] = (
                        metalearn_meta_gradient(metalearn, workload, theta, tasks, order, inner_steps),
                        float32_tolerance)
                cells = []
                for name in COLUMNS:
                    if name not in results:
                        cells.append("skipped")
                        continue
                    grads, tolerance = results[name]
                    rel = relative_difference(grads, reference)
                    ok = rel <= tolerance
                    failures += not ok
                    cells.append(f"{rel:.1e}{'' if ok else ' FAIL'}")
                case = f"{label}{kind} order {order} S={inner_steps}"
                print(f"{case:44s} " + " ".join(f"{c:>{len(n)}s}" for c, n in zip(cells, COLUMNS)))
        for inner_steps in inner_step_counts:
            gap = relative_difference(by_order[(1, inner_steps)], by_order[(2, inner_steps)])
            print(f"{label}{kind} S={inner_steps}: order 1 vs order 2 differ by {gap:.1e} (relative)")
            if gap < 1e-6 and kind in gap_kinds:
                print("  FAIL: the second-order terms vanish, the check does not exercise them")
                failures += 1
    return failures


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_libtorch = os.path.join(here, "..", "..", "build", "compare-libtorch", "maml_libtorch")
    default_metalearn = os.path.join(here, "..", "..", "build", "bench", "bench", "compare_metalearn")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--workload", choices=("sine", "omniglot", "all"), default="sine")
    parser.add_argument("--libtorch", default=os.path.normpath(default_libtorch),
                        help="maml_libtorch binary (sine only; skipped with a message if missing)")
    parser.add_argument("--metalearn", default=os.path.normpath(default_metalearn),
                        help="compare_metalearn binary (skipped with a message if missing)")
    parser.add_argument("--width", type=int, default=40, help="sine: hidden width")
    parser.add_argument("--meta-batch", type=int, default=25, help="sine: tasks")
    parser.add_argument("--omniglot-meta-batch", type=int, default=4, help="omniglot: tasks")
    args = parser.parse_args()

    common.setup_torch(threads=1, seed=1234)
    binaries = {}
    wanted = [("metalearn", args.metalearn)]
    if args.workload in ("sine", "all"):
        wanted.insert(0, ("libtorch", args.libtorch))  # there is no libtorch omniglot program
    for name, path in wanted:
        if os.access(path, os.X_OK):
            binaries[name] = path
        else:
            print(f"check_grads: {path} not built: {name} not checked", file=sys.stderr)

    failures = 0
    print(f"{'case':44s} " + " ".join(COLUMNS))
    if args.workload in ("sine", "all"):
        failures += check_cases(common.Sine(args.width), "", args.meta_batch, (1, 3), binaries.get("libtorch"),
                                binaries.get("metalearn"), gap_kinds=("paper-init", "trained-like"))
    if args.workload in ("omniglot", "all"):
        for ways, shots in ((5, 1), (5, 5), (20, 1)):
            failures += check_cases(common.Omniglot(ways, shots), f"{ways}w{shots}s ", args.omniglot_meta_batch,
                                    (1,), None, binaries.get("metalearn"), gap_kinds=("trained-like",),
                                    float32_tolerance=OMNIGLOT_FLOAT32_TOLERANCE)
    print("all meta-gradients agree" if failures == 0 else f"{failures} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
