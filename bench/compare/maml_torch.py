#!/usr/bin/python3
"""MAML in PyTorch, written the straightforward way: a Python loop over tasks.

The network is functional (explicit weight tensors, F.linear), the inner loop takes gradients with
torch.autograd.grad -- create_graph=True for the exact second-order meta-gradient (--order 2), a
constant inner gradient for first-order MAML (--order 1) -- and each task's query loss is
back-propagated as soon as it is computed, which accumulates the meta-gradient in the parameters'
.grad and frees that task's graph. Adam takes the meta-step. --workload sine (default): sinusoid
regression, 1-W-W-1 network; --workload omniglot: N-way K-shot classification, 784-256-128-64-64-N.

Prints one JSON line (see README.md). Run with Debian's /usr/bin/python3, which sees python3-torch.
"""

import torch
import torch.nn.functional as F

import maml_common as common

IMPL = "pytorch_loop"


def forward(params, x):
    """MLP, ReLU hidden layers, linear output. params = [w1, b1, w2, b2, ...] in (out, in) layout."""
    last = len(params) - 2
    h = x
    for i in range(0, last, 2):
        h = F.relu(F.linear(h, params[i], params[i + 1]))
    return F.linear(h, params[last], params[last + 1])


def adapt(params, x, y, order, inner_steps, workload):
    """Inner loop: S steps of gradient descent on one task's support loss, starting from params."""
    fast = params
    for _ in range(inner_steps):
        loss = workload.loss(forward(fast, x), y)
        grads = torch.autograd.grad(loss, fast, create_graph=(order == 2))
        fast = [w - workload.inner_lr * g for w, g in zip(fast, grads)]
    return fast


def accumulate_meta_gradient(params, tasks, order, inner_steps, workload):
    """Adds the meta-gradient of the mean query loss over the B tasks to each parameter's .grad."""
    xs, ys, xq, yq = tasks
    meta_batch = xs.shape[0]
    for i in range(meta_batch):
        fast = adapt(params, xs[i], ys[i], order, inner_steps, workload)
        query_loss = workload.loss(forward(fast, xq[i]), yq[i])
        (query_loss / meta_batch).backward()


def main():
    args = common.parse_args(__doc__.splitlines()[0])
    workload = common.make_workload(args)
    blas, blas_config = common.setup_torch(args.threads, args.seed)
    params = workload.init_params()
    optimizer = torch.optim.Adam(params, lr=common.META_LR)

    def meta_iteration():
        tasks = workload.sample(args.meta_batch)
        optimizer.zero_grad(set_to_none=True)
        accumulate_meta_gradient(params, tasks, args.order, args.inner_steps, workload)
        optimizer.step()

    common.run_benchmark(IMPL, args, workload, meta_iteration, blas, blas_config)


if __name__ == "__main__":
    main()
