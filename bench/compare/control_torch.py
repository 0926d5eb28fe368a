#!/usr/bin/python3
"""One control step of GrBAL in PyTorch, as bench_control's control/step times it in metalearn.

The step (examples/adaptive_control.hpp, bench/control.bench.cpp): reset to theta*, one SGD step
(alpha = 0.01) of the mean squared error on the last M = 16 transitions (torch.autograd.grad,
no graph kept), then random shooting: N action sequences of H steps drawn uniformly in the
bounds, all rolled through the adapted network at once (features, standardisation, forward,
de-standardisation, state update, stage cost), and the first action of the cheapest returned.
The network is (features, action)-W-W-(state change), ReLU, float32, one thread; the system is
the cart-pole (features x, x', cos t, sin t, t'; cost 2(1 - cos t) + 0.01 x^2 + 0.01 t'^2 +
1e-4 u^2) or the pendulum (features cos t, sin t, w; cost 2(1 - cos t) + 0.01 w^2 + 0.001 u^2).
The simulation step and the window update are not timed here (microseconds in C++, not what a
comparison of the learning code is about); bench_control's control/step includes them, so the
ratio favours PyTorch slightly.

Prints one JSON line: median and 99th percentile of the step in microseconds, and of the
adaptation alone. Only Debian's python3-torch is needed.
"""

import argparse
import json
import math
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one thread for Debian's BLAS too
import torch  # noqa: E402

SYSTEMS = {
    # state size, feature size, max |u|
    "cartpole": (4, 5, 10.0),
    "pendulum": (2, 3, 20.0),
}


def features(system, s):
    if system == "cartpole":
        return torch.stack((s[0], s[1], torch.cos(s[2]), torch.sin(s[2]), s[3]))
    return torch.stack((torch.cos(s[0]), torch.sin(s[0]), s[1]))


def stage_cost(system, s, u):
    if system == "cartpole":
        return 2 * (1 - torch.cos(s[2])) + 0.01 * s[0] ** 2 + 0.01 * s[3] ** 2 + 1e-4 * u ** 2
    return 2 * (1 - torch.cos(s[0])) + 0.01 * s[1] ** 2 + 0.001 * u ** 2


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--system", choices=tuple(SYSTEMS), default="cartpole")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--candidates", type=int, default=500)
    ap.add_argument("--horizon", type=int, default=10)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2000, help="timed control steps")
    ap.add_argument("--warmup", type=int, default=50)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(3)
    d, f, umax = SYSTEMS[args.system]
    widths = [f + 1, args.width, args.width, d]
    params = []
    for i in range(3):  # He-uniform weights, zero biases
        bound = math.sqrt(6.0 / widths[i])
        params.append((torch.rand(widths[i + 1], widths[i]) * 2 - 1) * bound)
        params.append(torch.zeros(widths[i + 1]))
    theta = [p.requires_grad_() for p in params]
    in_mean, in_scale = torch.zeros(f + 1, 1), torch.ones(f + 1, 1)
    out_mean, out_scale = torch.zeros(d, 1), torch.full((d, 1), 10.0)
    wx = torch.randn(f + 1, args.window)  # a window of standardised transitions
    wy = torch.randn(d, args.window) * 0.1
    state = torch.zeros(d)

    def forward(ps, x):  # x: inputs x n (column per example, as metalearn)
        h = torch.relu(ps[0] @ x + ps[1][:, None])
        h = torch.relu(ps[2] @ h + ps[3][:, None])
        return ps[4] @ h + ps[5][:, None]

    def adapt():
        loss = ((forward(theta, wx) - wy) ** 2).mean()
        grads = torch.autograd.grad(loss, theta)
        return [p.detach() - 0.01 * g for p, g in zip(theta, grads)]

    def plan(fast):
        with torch.no_grad():
            actions = (torch.rand(args.horizon, args.candidates) * 2 - 1) * umax
            s = state[:, None].expand(d, args.candidates).clone()
            cost = torch.zeros(args.candidates)
            for h in range(args.horizon):
                x = torch.cat((features(args.system, s), actions[h:h + 1]), 0)
                x = (x - in_mean) * in_scale
                delta = forward(fast, x).clamp(-10, 10) / out_scale + out_mean
                s = s + delta
                cost += stage_cost(args.system, s, actions[h])
            return float(actions[0, int(torch.argmin(cost))])

    step_us, adapt_us = [], []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        fast = adapt()
        t1 = time.perf_counter()
        plan(fast)
        t2 = time.perf_counter()
        if i >= args.warmup:
            adapt_us.append((t1 - t0) * 1e6)
            step_us.append((t2 - t0) * 1e6)

    def pct(v, q):
        v = sorted(v)
        return v[min(len(v) - 1, int(q * len(v)))]

    print(json.dumps({"impl": "pytorch", "torch": torch.__version__, "system": args.system, "width": args.width,
                      "candidates": args.candidates, "horizon": args.horizon, "window": args.window,
                      "steps": args.steps, "step_us_median": pct(step_us, 0.5), "step_us_p99": pct(step_us, 0.99),
                      "adapt_us_median": pct(adapt_us, 0.5), "adapt_us_p99": pct(adapt_us, 0.99)}))


if __name__ == "__main__":
    main()
