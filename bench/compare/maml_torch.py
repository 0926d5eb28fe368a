#!/usr/bin/python3
"""MAML on sinusoid regression in PyTorch, written the straightforward way: a Python loop over tasks.

The network is functional (explicit weight tensors, F.linear), the inner loop takes gradients with
torch.autograd.grad -- create_graph=True for the exact second-order meta-gradient (--order 2), a
constant inner gradient for first-order MAML (--order 1) -- and each task's query loss is
back-propagated as soon as it is computed, which accumulates the meta-gradient in the parameters'
.grad and frees that task's graph. Adam takes the meta-step.

Prints one JSON line (see README.md). Run with Debian's /usr/bin/python3, which sees python3-torch.
"""

import torch
import torch.nn.functional as F

import maml_common as common

IMPL = "pytorch_loop"


def forward(params, x):
    """1-W-W-1 MLP, ReLU hidden layers, linear output. params = [w1, b1, w2, b2, w3, b3], x: [K, 1]."""
    w1, b1, w2, b2, w3, b3 = params
    h = F.relu(F.linear(x, w1, b1))
    h = F.relu(F.linear(h, w2, b2))
    return F.linear(h, w3, b3)


def adapt(params, x, y, order, inner_steps):
    """Inner loop: S steps of gradient descent on one task's support loss, starting from params."""
    fast = params
    for _ in range(inner_steps):
        loss = F.mse_loss(forward(fast, x), y)
        grads = torch.autograd.grad(loss, fast, create_graph=(order == 2))
        fast = [w - common.INNER_LR * g for w, g in zip(fast, grads)]
    return fast


def accumulate_meta_gradient(params, tasks, order, inner_steps):
    """Adds the meta-gradient of the mean query loss over the B tasks to each parameter's .grad."""
    xs, ys, xq, yq = tasks
    meta_batch = xs.shape[0]
    for i in range(meta_batch):
        fast = adapt(params, xs[i], ys[i], order, inner_steps)
        query_loss = F.mse_loss(forward(fast, xq[i]), yq[i])
        (query_loss / meta_batch).backward()


def main():
    args = common.parse_args(__doc__.splitlines()[0])
    blas, blas_config = common.setup_torch(args.threads, args.seed)
    params = common.init_params(args.width)
    optimizer = torch.optim.Adam(params, lr=common.META_LR)

    def meta_iteration():
        tasks = common.sample_tasks(args.meta_batch)
        optimizer.zero_grad(set_to_none=True)
        accumulate_meta_gradient(params, tasks, args.order, args.inner_steps)
        optimizer.step()

    common.run_benchmark(IMPL, args, meta_iteration, blas, blas_config)


if __name__ == "__main__":
    main()
