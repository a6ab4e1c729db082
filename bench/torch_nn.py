#!/usr/bin/python3
"""PyTorch 1.13 on the same cases as bench/bench_nn.c, same output lines:
    case  precision  median_ms  GFLOP/s
Run through bench/nn.sh (2 threads, GOMP_SPINCOUNT=1000, OpenBLAS
variables unset for this process). Usage: torch_nn.py [reps]"""
import resource
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)
reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5


def median_time(fn):
    fn()  # warm-up
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2]


def report(name, prec, sec, flops):
    print("%s\t%s\t%.2f\t%.1f" % (name, prec, sec * 1e3, flops / sec / 1e9),
          flush=True)


def bench_mm(M, K, N, dt, prec):
    a, b = torch.rand(M, K).to(dt), torch.rand(K, N).to(dt)
    with torch.no_grad():
        t = median_time(lambda: torch.mm(a, b))
    report("matmul_%dx%dx%d" % (M, K, N), prec, t, 2.0 * M * K * N)


def bench_linear(T, C, OC, dt, prec):
    # a linear layer with constant weights and bias (a ViT block's MLP)
    x, w, b = torch.rand(T, C).to(dt), torch.rand(OC, C).to(dt), \
        torch.rand(OC).to(dt)
    with torch.no_grad():
        t = median_time(lambda: F.linear(x, w, b))
    report("linear_const_%dx%dx%d" % (T, C, OC), prec, t, 2.0 * T * C * OC)


def bench_conv(N, C, H, W, dt, prec):
    x = torch.rand(N, C, H, W).to(dt).requires_grad_(True)
    w = (torch.rand(C, C, 3, 3) - 0.5).to(dt).requires_grad_(True)
    b = torch.rand(C).to(dt).requires_grad_(True)
    dy = torch.rand(N, C, H, W).to(dt)
    fl = 2.0 * N * C * C * 9 * H * W

    def fwd():
        with torch.no_grad():
            F.conv2d(x, w, b, padding=1)

    y = F.conv2d(x, w, b, padding=1)

    def bwd():
        # backward data + weights (+ bias) of one convolution
        torch.autograd.grad(y, (x, w, b), dy, retain_graph=True)

    tf, tb = median_time(fwd), median_time(bwd)
    tag = "N%d_C%d_%dx%d" % (N, C, H, W)
    report("conv3x3_fwd_" + tag, prec, tf, fl)
    report("conv3x3_bwd_" + tag, prec, tb, 2 * fl)
    report("conv3x3_fwdbwd_" + tag, prec, tf + tb, 3 * fl)


def bench_memory(N, C, H):
    """The memory-bound kernels of bench_nn.c at the same shape (ms)."""
    x = torch.rand(N, C, H, H).requires_grad_(True)
    g, b = torch.rand(C).requires_grad_(True), torch.rand(C).requires_grad_(True)
    rm, rv = torch.zeros(C), torch.ones(C)
    small = torch.rand(N, C, H // 2, H // 2).requires_grad_(True)
    dy = torch.rand(N, C, H, H)
    y_bn = F.batch_norm(x, rm, rv, g, b, training=True)
    y_l2 = F.normalize(x, dim=1)
    y_up = F.interpolate(small, size=(H, H), mode="bilinear",
                         align_corners=False)
    cases = [
        ("batchnorm_fwd", lambda: F.batch_norm(x, rm, rv, g, b, training=True)),
        ("batchnorm_bwd", lambda: torch.autograd.grad(y_bn, (x, g, b), dy,
                                                      retain_graph=True)),
        ("l2norm_fwd", lambda: F.normalize(x, dim=1)),
        ("l2norm_bwd", lambda: torch.autograd.grad(y_l2, (x,), dy,
                                                   retain_graph=True)),
        ("resize2x_fwd", lambda: F.interpolate(small, size=(H, H),
                                               mode="bilinear",
                                               align_corners=False)),
        ("resize2x_bwd", lambda: torch.autograd.grad(y_up, (small,), dy,
                                                     retain_graph=True)),
        ("relu_fwd", lambda: F.relu(x)),
    ]
    for name, fn in cases:
        grad = name.endswith("bwd")
        if grad:
            t = median_time(fn)
        else:
            with torch.no_grad():
                t = median_time(fn)
        print("%s_N%d_C%d_%dx%d\tf32\t%.2f\t-" % (name, N, C, H, H, t * 1e3),
              flush=True)


def has_avx512():
    with open("/proc/cpuinfo") as fh:
        return "avx512" in fh.read()


print("# torch %s, threads %d" % (torch.__version__, torch.get_num_threads()))
precs = [(torch.float32, "f32")]
if has_avx512():
    precs.append((torch.bfloat16, "bf16"))
else:
    print("# bf16: skipped, CPU without AVX-512")
for dt, prec in precs:
    bench_mm(1024, 1024, 1024, dt, prec)
    bench_mm(4096, 768, 768, dt, prec)
    bench_linear(1024, 768, 3072, dt, prec)
    bench_conv(8, 256, 64, 64, dt, prec)
    bench_conv(8, 128, 128, 128, dt, prec)
bench_memory(8, 256, 64)
print("# peak RSS %.1f MB" %
      (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0))
