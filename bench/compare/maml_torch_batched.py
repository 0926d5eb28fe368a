#!/usr/bin/python3
"""MAML in PyTorch, batched over tasks: the strongest eager PyTorch version.

All B tasks go through the network at once. Each task's fast weights are one slice of a leading
batch dimension: the hidden W x W layer is one torch.baddbmm, and the 1-wide input and output
layers are the broadcasts they are (an outer product and a dot product) rather than bmm calls,
which PyTorch 1.13 runs as one BLAS call per task. The meta-parameters are kept in the layout
forward() wants, so no transposes are taken in the loop; the inner loop starts from
theta.expand(B, ...) -- a view, nothing is copied -- and torch.autograd.grad of the summed support
losses with respect to these per-task views gives each task its own gradient, because task b's
loss depends only on slice b. The inner step is one fused torch.add per tensor, each loss is one
mse_loss call, and the meta-gradient reaches theta through ExpandBackward (a sum over tasks).

--workload omniglot (784-256-128-64-64-N, softmax cross-entropy): every layer is a real matrix
product, so each is one torch.baddbmm over the B tasks' fast weights, theta kept as (in, out)
weights and [1, out] bias rows; each loss is one F.cross_entropy over all B*N*K examples.

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


def to_dense_layout(params):
    """[w1, b1, ...] in torch's (out, in) layout -> (in, out) weights and [1, out] bias rows, for
    baddbmm in every layer (omniglot). Returns new leaf tensors that require grad."""
    batched = [p.t() if i % 2 == 0 else p.unsqueeze(0) for i, p in enumerate(p.detach() for p in params)]
    return [p.contiguous().requires_grad_() for p in batched]


def grads_from_dense_layout(grads):
    return [g.t() if i % 2 == 0 else g.squeeze(0) for i, g in enumerate(grads)]


def forward_dense(params, x):
    """An MLP on all tasks at once, one baddbmm per layer; x: [B, n, in], returns [B, n, out].

    params: per-task weights [B, in, out] and biases [B, 1, out], ReLU on all but the last layer.
    """
    last = len(params) - 2
    h = x
    for i in range(0, last, 2):
        h = torch.relu(torch.baddbmm(params[i + 1], h, params[i]))
    return torch.baddbmm(params[last + 1], h, params[last])


class SineLayout:
    """The sine workload in batched form: the 1-wide layers as broadcasts, MSE losses."""

    to_layout = staticmethod(to_batched_layout)
    from_layout = staticmethod(grads_to_torch_layout)
    forward = staticmethod(forward)

    @staticmethod
    def summed_task_loss(outputs, targets):
        """Sum over tasks of each task's mean loss (every task has outputs.shape[1] examples)."""
        return F.mse_loss(outputs, targets, reduction="sum") / outputs.shape[1]

    @staticmethod
    def mean_task_loss(outputs, targets):
        """Mean over tasks of each task's mean loss: the mean over all B*K examples."""
        return F.mse_loss(outputs, targets)


class OmniglotLayout:
    """The omniglot workload in batched form: baddbmm in every layer, cross-entropy losses."""

    to_layout = staticmethod(to_dense_layout)
    from_layout = staticmethod(grads_from_dense_layout)
    forward = staticmethod(forward_dense)

    @staticmethod
    def summed_task_loss(logits, labels):
        classes = logits.shape[-1]
        return F.cross_entropy(logits.reshape(-1, classes), labels.reshape(-1), reduction="sum") / logits.shape[1]

    @staticmethod
    def mean_task_loss(logits, labels):
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))


def layout(workload):
    return OmniglotLayout if workload.name == "omniglot" else SineLayout


def meta_loss(theta, tasks, order, inner_steps, workload):
    """Mean over the B tasks of the query loss at each task's adapted weights."""
    xs, ys, xq, yq = tasks
    shape = layout(workload)
    meta_batch = xs.shape[0]
    fast = [p.expand(meta_batch, *p.shape) for p in theta]
    for _ in range(inner_steps):
        # Sum over tasks of each task's mean support loss: its gradient with respect to task b's
        # fast weights is exactly task b's own inner gradient.
        support_loss = shape.summed_task_loss(shape.forward(fast, xs), ys)
        grads = torch.autograd.grad(support_loss, fast, create_graph=(order == 2))
        fast = [torch.add(w, g, alpha=-workload.inner_lr) for w, g in zip(fast, grads)]
    # Every task has the same number of query examples, so the mean over all of them is the mean
    # of the task means.
    return shape.mean_task_loss(shape.forward(fast, xq), yq)


def main():
    args = common.parse_args(__doc__.splitlines()[0])
    workload = common.make_workload(args)
    blas, blas_config = common.setup_torch(args.threads, args.seed)
    theta = layout(workload).to_layout(workload.init_params())
    optimizer = torch.optim.Adam(theta, lr=common.META_LR)

    def meta_iteration():
        tasks = workload.sample(args.meta_batch)
        optimizer.zero_grad(set_to_none=True)
        meta_loss(theta, tasks, args.order, args.inner_steps, workload).backward()
        optimizer.step()

    common.run_benchmark(IMPL, args, workload, meta_iteration, blas, blas_config)


if __name__ == "__main__":
    main()
