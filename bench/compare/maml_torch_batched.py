#!/usr/bin/python3
"""MAML on sinusoid regression in PyTorch, batched over tasks: the strongest eager PyTorch version.

All B tasks go through the network at once. Each task's fast weights are one slice of a leading
batch dimension, and every layer is a single torch.baddbmm. The meta-parameters are kept in the
(in, out) layout that bmm wants, so no transposes are taken in the loop; the inner loop starts from
theta.expand(B, ...) -- a view, nothing is copied -- and torch.autograd.grad of the summed support
losses with respect to these per-task views gives each task its own gradient, because task b's
loss depends only on slice b. The inner step is one fused torch.add per tensor, the losses are one
mse_loss call each, and the meta-gradient reaches theta through ExpandBackward (a sum over tasks).

Prints one JSON line (see README.md). Run with Debian's /usr/bin/python3, which sees python3-torch.
"""

import torch
import torch.nn.functional as F

import maml_common as common

IMPL = "pytorch_batched"


def to_batched_layout(params):
    """[w1, b1, w2, b2, w3, b3] in torch's (out, in) layout -> weights (in, out), biases (1, out).

    Returns new leaf tensors that require grad; meta_gradient_to_torch_layout undoes the mapping.
    """
    out = []
    for i, p in enumerate(params):
        p = p.detach()
        p = p.t() if i % 2 == 0 else p.unsqueeze(0)
        out.append(p.contiguous().requires_grad_())
    return out


def grads_to_torch_layout(grads):
    return [g.t() if i % 2 == 0 else g.squeeze(0) for i, g in enumerate(grads)]


def forward(params, x):
    """The 1-W-W-1 MLP on all tasks at once.

    params: per-task weights [B, in, out] and biases [B, 1, out]; x: [B, K, 1]. Returns [B, K, 1].
    """
    w1, b1, w2, b2, w3, b3 = params
    h = torch.relu(torch.baddbmm(b1, x, w1))
    h = torch.relu(torch.baddbmm(b2, h, w2))
    return torch.baddbmm(b3, h, w3)


def meta_loss(theta, tasks, order, inner_steps):
    """Mean over the B tasks of the query MSE at each task's adapted weights."""
    xs, ys, xq, yq = tasks
    meta_batch, k_shot = xs.shape[0], xs.shape[1]
    fast = [p.expand(meta_batch, *p.shape) for p in theta]
    for _ in range(inner_steps):
        # Sum over tasks of each task's mean support loss: its gradient with respect to task b's
        # fast weights is exactly task b's own inner gradient.
        support_loss = F.mse_loss(forward(fast, xs), ys, reduction="sum") / k_shot
        grads = torch.autograd.grad(support_loss, fast, create_graph=(order == 2))
        fast = [torch.add(w, g, alpha=-common.INNER_LR) for w, g in zip(fast, grads)]
    # Every task has K query points, so the mean over all B*K points is the mean of the task means.
    return F.mse_loss(forward(fast, xq), yq)


def main():
    args = common.parse_args(__doc__.splitlines()[0])
    blas, blas_config = common.setup_torch(args.threads, args.seed)
    theta = to_batched_layout(common.init_params(args.width))
    optimizer = torch.optim.Adam(theta, lr=common.META_LR)

    def meta_iteration():
        tasks = common.sample_tasks(args.meta_batch)
        optimizer.zero_grad(set_to_none=True)
        meta_loss(theta, tasks, args.order, args.inner_steps).backward()
        optimizer.step()

    common.run_benchmark(IMPL, args, meta_iteration, blas, blas_config)


if __name__ == "__main__":
    main()
