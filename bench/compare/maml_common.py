"""Shared by the PyTorch MAML benchmarks (maml_torch.py, maml_torch_batched.py, check_grads.py).

Holds what must be identical across the implementations: the command-line flags, the two workloads
(--workload sine: the sinusoid task distribution and the 1-W-W-1 network; --workload omniglot: N-way
K-shot episodes of synthetic 28x28 images and the 784-256-128-64-64-N classifier), the MAML-paper
initialisation, and the timing / JSON report. Also finds out which BLAS library torch actually
resolved, and gives OpenBLAS the same thread count as torch.

Only the Python standard library and Debian's python3-torch are used. Run with /usr/bin/python3.
"""

import argparse
import ctypes
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

K_SHOT = 10  # support points and query points per task
INNER_LR = 0.01  # alpha, plain gradient descent in the inner loop
META_LR = 1e-3  # Adam on the meta-parameters
INIT_STD = 0.01  # weights: truncated normal, sigma 0.01, truncated at 2 sigma; biases zero
AMPLITUDE = (0.1, 5.0)
PHASE = (0.0, math.pi)
X_RANGE = (-5.0, 5.0)
SINE_META_BATCH = 25

# The few-shot Omniglot workload of the MAML paper's non-convolutional network (Finn et al. 2017,
# section 5.2): N-way K-shot episodes, K support and K query images per class, 1 inner SGD step at
# alpha = 0.4, meta-batch 32. The images are synthetic (uniform pixels in [0, 1]): the time of a
# meta-iteration does not depend on the pixel values.
IMAGE_PIXELS = 28 * 28
OMNIGLOT_HIDDEN = (256, 128, 64, 64)
OMNIGLOT_INNER_LR = 0.4
OMNIGLOT_META_BATCH = 32


def parse_args(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--workload", choices=("sine", "omniglot"), default="sine",
                        help="sine: the sinusoid regression of the MAML paper (default); omniglot: "
                             "N-way K-shot classification with the 784-256-128-64-64-N network")
    parser.add_argument("--ways", type=int, default=5, help="omniglot: classes per episode N")
    parser.add_argument("--shots", type=int, default=1,
                        help="omniglot: support (and query) images per class K")
    parser.add_argument("--order", type=int, choices=(1, 2), default=2,
                        help="2: exact meta-gradient through the inner steps; 1: first-order MAML")
    parser.add_argument("--inner-steps", type=int, default=1, help="inner gradient steps S")
    parser.add_argument("--width", type=int, default=40,
                        help="sine: hidden width W of the 1-W-W-1 network (omniglot: not used)")
    parser.add_argument("--meta-batch", type=int, default=None,
                        help=f"tasks per meta-iteration B (default {SINE_META_BATCH} for sine, "
                             f"{OMNIGLOT_META_BATCH} for omniglot)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (and OpenBLAS threads)")
    parser.add_argument("--iterations", type=int, default=100, help="timed meta-iterations N")
    parser.add_argument("--warmup", type=int, default=10, help="untimed meta-iterations M before timing")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.meta_batch is None:
        args.meta_batch = OMNIGLOT_META_BATCH if args.workload == "omniglot" else SINE_META_BATCH
    for name in ("inner_steps", "width", "meta_batch", "threads", "iterations", "shots"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be non-negative")
    if args.ways < 2:
        parser.error("--ways must be at least 2")
    return args


class Sine:
    """The sinusoid regression workload: 1-W-W-1 network, mean squared error, alpha = 0.01."""

    name = "sine"
    inner_lr = INNER_LR

    def __init__(self, width):
        self.width = width
        self.shapes = [(width, 1), (width, width), (1, width)]  # (out, in) of each layer

    @staticmethod
    def loss(outputs, targets):
        """Mean over the examples of one task (outputs, targets: [K, 1])."""
        return F.mse_loss(outputs, targets)

    def sample(self, meta_batch, dtype=None):
        return sample_tasks(meta_batch, dtype)

    def init_params(self, dtype=None):
        return init_params(self.width, dtype)

    def report_fields(self):
        return {"width": self.width}


class Omniglot:
    """N-way K-shot classification: 784-256-128-64-64-N network, softmax cross-entropy, alpha = 0.4."""

    name = "omniglot"
    inner_lr = OMNIGLOT_INNER_LR

    def __init__(self, ways, shots):
        self.ways, self.shots = ways, shots
        widths = (IMAGE_PIXELS,) + OMNIGLOT_HIDDEN + (ways,)
        self.shapes = [(widths[i + 1], widths[i]) for i in range(len(widths) - 1)]  # (out, in)
        self.network = "-".join(str(w) for w in widths)

    @staticmethod
    def loss(logits, labels):
        """Mean softmax cross-entropy over the examples of one task (logits [n, N], labels [n])."""
        return F.cross_entropy(logits, labels)

    def sample(self, meta_batch, dtype=None):
        """B episodes of N*K support and N*K query images, uniform pixels in [0, 1].

        Returns (xs, ys, xq, yq): images [B, N*K, 784], labels [B, N*K] (int64, class c for the
        examples c*K ... c*K + K - 1). Uses torch's global RNG.
        """
        examples = self.ways * self.shots
        x = torch.rand(meta_batch, 2 * examples, IMAGE_PIXELS, dtype=dtype)
        labels = torch.arange(self.ways).repeat_interleave(self.shots).expand(meta_batch, examples)
        labels = labels.contiguous()
        return x[:, :examples], labels, x[:, examples:], labels

    def init_params(self, dtype=None):
        return init_network(self.shapes, dtype)

    def report_fields(self):
        return {"workload": "omniglot", "network": self.network, "ways": self.ways, "shots": self.shots}


def make_workload(args):
    """The workload the flags ask for."""
    if args.workload == "omniglot":
        return Omniglot(args.ways, args.shots)
    return Sine(args.width)


class _DlInfo(ctypes.Structure):
    _fields_ = [("dli_fname", ctypes.c_char_p), ("dli_fbase", ctypes.c_void_p),
                ("dli_sname", ctypes.c_char_p), ("dli_saddr", ctypes.c_void_p)]


def _mapped_paths(substring):
    with open("/proc/self/maps") as maps:
        paths = [line.split()[-1] for line in maps if substring in line and "/" in line]
    return list(dict.fromkeys(paths))


def blas_info(threads=None):
    """Returns (path, config) of the BLAS that libtorch_cpu resolves sgemm_ to.

    Debian's torch is built with BLAS_INFO=generic and links libblas.so.3, which the alternatives
    system points at the reference BLAS or at OpenBLAS. The symbol is looked up from libtorch_cpu's
    own handle, so this is the library torch really calls, not just one that happens to be mapped.
    If it is OpenBLAS and `threads` is given, OpenBLAS's thread count is set to it: torch's
    set_num_threads only governs OpenMP, and OpenBLAS would otherwise use every core.
    """
    torch_cpu = _mapped_paths("libtorch_cpu")
    if not torch_cpu:
        return "unknown (libtorch_cpu not loaded)", ""
    handle = ctypes.CDLL(torch_cpu[0], mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    libc = ctypes.CDLL(None)
    try:
        sgemm = ctypes.cast(handle.sgemm_, ctypes.c_void_p)
    except AttributeError:
        return "none (sgemm_ not resolved)", ""
    info = _DlInfo()
    if not libc.dladdr(sgemm, ctypes.byref(info)) or not info.dli_fname:
        return "unknown", ""
    path = os.path.realpath(info.dli_fname.decode())
    config = ""
    try:
        get_config = handle.openblas_get_config
        get_config.restype = ctypes.c_char_p
        config = get_config().decode()
        if threads is not None:
            handle.openblas_set_num_threads(ctypes.c_int(threads))
    except AttributeError:
        pass  # not OpenBLAS (reference BLAS, BLIS, MKL...): nothing to configure
    return path, config


def setup_torch(threads, seed):
    """Sets torch's threads (intra-op T, inter-op 1) and seed. Returns (blas path, blas config)."""
    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(seed)
    blas, config = blas_info(threads)
    return blas, config


def init_params(width, dtype=None):
    """MAML-paper initialisation of the 1-W-W-1 network, in torch's (out, in) layout.

    Returns [w1, b1, w2, b2, w3, b3] as leaf tensors that require grad. Uses torch's global RNG.
    """
    return init_network([(width, 1), (width, width), (1, width)], dtype)


def init_network(shapes, dtype=None):
    """MAML-paper initialisation of a network whose layers have the given (out, in) shapes.

    Weights truncated normal (sigma 0.01, cut at 2 sigma), biases zero. Returns [w1, b1, w2, b2, ...]
    as leaf tensors that require grad. Uses torch's global RNG.
    """
    params = []
    for out_in in shapes:
        weight = torch.empty(out_in, dtype=dtype)
        torch.nn.init.trunc_normal_(weight, mean=0.0, std=INIT_STD, a=-2 * INIT_STD, b=2 * INIT_STD)
        params += [weight.requires_grad_(), torch.zeros(out_in[0], dtype=dtype, requires_grad=True)]
    return params


def sample_tasks(meta_batch, dtype=None):
    """B sinusoid tasks y = A sin(x - phi), with K support and K query points each.

    Returns (xs, ys, xq, yq), each of shape [B, K, 1]. Uses torch's global RNG.
    """
    amplitude = torch.empty(meta_batch, 1, 1, dtype=dtype).uniform_(*AMPLITUDE)
    phase = torch.empty(meta_batch, 1, 1, dtype=dtype).uniform_(*PHASE)
    x = torch.empty(meta_batch, 2 * K_SHOT, 1, dtype=dtype).uniform_(*X_RANGE)
    y = amplitude * torch.sin(x - phase)
    return x[:, :K_SHOT], y[:, :K_SHOT], x[:, K_SHOT:], y[:, K_SHOT:]


def percentile(sorted_values, q):
    """Linear interpolation between closest ranks (numpy's default); the C++ side does the same."""
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def run_benchmark(impl, args, workload, meta_iteration, blas, blas_config):
    """Runs M warm-up and N timed meta-iterations, prints the one JSON line of the report."""
    for _ in range(args.warmup):
        meta_iteration()
    times_ms = []
    for _ in range(args.iterations):
        start = time.perf_counter_ns()  # CLOCK_MONOTONIC
        meta_iteration()
        times_ms.append((time.perf_counter_ns() - start) / 1e6)
    times_ms.sort()
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # ru_maxrss is in KiB
    report = {"impl": impl, "order": args.order, "inner_steps": args.inner_steps}
    report.update(workload.report_fields())  # sine: width; omniglot: workload, network, ways, shots
    report.update({
        "meta_batch": args.meta_batch,
        "threads": args.threads,
        "iterations": args.iterations,
        "median_ms": round(percentile(times_ms, 0.5), 4),
        "p10_ms": round(percentile(times_ms, 0.1), 4),
        "p90_ms": round(percentile(times_ms, 0.9), 4),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "blas": blas,
        "blas_config": blas_config,
        "torch_version": torch.__version__,
    })
    print(json.dumps(report))
    sys.stdout.flush()
