#!/usr/bin/python3
"""MAML on sinusoid regression in PyTorch, batched over tasks: the strongest eager PyTorch version.

All B tasks go through the network at once. Each task's fast weights are one slice of a leading
batch dimension: the hidden W x W layer is one torch.baddbmm, and the 1-wide input and output
layers are the broadcasts they are (an outer product and a dot product) rather than bmm calls,
which PyTorch 1.13 runs as one BLAS call per task. The meta-parameters are kept in the layout
forward() wants, so no transposes are taken in the loop; the inner loop starts from
theta.expand(B, ...) -- a view, nothing is copied -- and torch.autograd.grad of the summed support
losses with respect to these per-task views gives each task its own gradient, because task b's
loss depends only on slice b. The inner step is one fused torch.add per tensor, each loss is one
mse_loss call, and the meta-gradient reaches theta through ExpandBackward (a sum over tasks).

Prints one JSON line (see README.md). Run with Debian's /usr/bin/python3, which sees python3-torch.
"""

import torch
import torch.nn.functional as F

import maml_common as common

IMPL = "pytorch_batched"


def to_batched_layout(params):
    """[w1, b1, w2, b2, w3, b3] in torch's (out, in) layout -> the layout forward() wants.

    w1 and w3 become rows [1, W] (the input layer is an outer product, the output layer a dot
    product), w2 becomes (in, out) for baddbmm, biases become [1, out]. Returns new leaf tensors
    that require grad; grads_to_torch_layout maps gradients back.
    """
    w1, b1, w2, b2, w3, b3 = (p.detach() for p in params)
    batched = [w1.t(), b1.unsqueeze(0), w2.t(), b2.unsqueeze(0), w3, b3.unsqueeze(0)]
    return [p.contiguous().requires_grad_() for p in batched]


def grads_to_torch_layout(grads):
    g1, c1, g2, c2, g3, c3 = grads
    return [g1.t(), c1.squeeze(0), g2.t(), c2.squeeze(0), g3, c3.squeeze(0)]


def forward(params, x):
    """The 1-W-W-1 MLP on all tasks at once; x: [B, K, 1], returns [B, K, 1].

    params: per-task w1 [B, 1, W], b1 [B, 1, W], w2 [B, W, W] (in, out), b2 [B, 1, W],
    w3 [B, 1, W], b3 [B, 1, 1].
    """
    w1, b1, w2, b2, w3, b3 = params
    h = torch.relu(torch.addcmul(b1, x, w1))  # input layer: an outer product, no BLAS needed
    h = torch.relu(torch.baddbmm(b2, h, w2))  # hidden W x W layer: one batched matrix product
    return (h * w3).sum(-1, keepdim=True) + b3  # output layer: a dot product per point


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
