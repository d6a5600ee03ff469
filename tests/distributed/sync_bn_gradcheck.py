"""Under mpiexec -n P: SyncBatchNorm's forward and backward across ranks, in float64.

1. Against one process: rank 0 gathers every rank's shard and runs plain batch norm on the whole
   batch; the shards of y, dx and the summed dgamma, dbeta must match.
2. Numerically: L = sum over ranks of sum(y_r * w_r) for fixed random w_r; a central difference
   in one entry of x on one rank (every rank recomputes its forward, as the statistics are shared)
   must match that entry of dx, and the same for gamma and beta.
Prints "ok" on rank 0; any mismatch raises (and the excepthook ends every rank).
"""
import numpy as np
from mpi4py import MPI

from tinyresnet import distributed
from tinyresnet import functional as F

comm = MPI.COMM_WORLD
distributed.abort_on_error(comm)
rank, size = comm.Get_rank(), comm.Get_size()
rng = np.random.default_rng(0)
C = 3
shapes = [(2 + r, C, 3, 4) for r in range(size)]  # unequal shards: the counts must be global
xs = [rng.standard_normal(s) * 2 + 1 for s in shapes]
ws = [rng.standard_normal(s) for s in shapes]
gamma, beta = rng.standard_normal(C), rng.standard_normal(C)
x, w = xs[rank], ws[rank]


def loss(x_local, gamma, beta):
    y, _ = F.sync_batchnorm2d_forward(x_local, gamma, beta, None, None, 0.1, 1e-5, comm)
    return comm.allreduce(float((y * w).sum()))


rm, rv = np.zeros(C), np.ones(C)
y, cache = F.sync_batchnorm2d_forward(x, gamma, beta, rm, rv, 0.1, 1e-5, comm)
dx, dgamma, dbeta = F.sync_batchnorm2d_backward(w, cache)
dgamma_all, dbeta_all = comm.allreduce(dgamma), comm.allreduce(dbeta)

# 1. The one-process batch norm of the whole batch.
rm1, rv1 = np.zeros(C), np.ones(C)
y1, cache1 = F.batchnorm2d_forward(np.concatenate(xs), gamma, beta, rm1, rv1, True, 0.1, 1e-5)
dx1, dgamma1, dbeta1 = F.batchnorm2d_backward(np.concatenate(ws), cache1)
start = sum(s[0] for s in shapes[:rank])
np.testing.assert_allclose(y, y1[start:start + x.shape[0]], rtol=1e-12, atol=1e-12)
np.testing.assert_allclose(dx, dx1[start:start + x.shape[0]], rtol=1e-10, atol=1e-12)
np.testing.assert_allclose(dgamma_all, dgamma1, rtol=1e-10)
np.testing.assert_allclose(dbeta_all, dbeta1, rtol=1e-10)
np.testing.assert_allclose(rm, rm1, rtol=1e-12)
np.testing.assert_allclose(rv, rv1, rtol=1e-12)  # unbiased with the global count

# 2. Central differences, one entry at a time; every rank takes part in every evaluation.
h = 1e-6
worst = 0.0
for owner in range(size):
    for index in [(0, 0, 0, 0), (1, 2, 2, 3), (0, 1, 1, 2)]:
        bump = np.zeros_like(x)
        if rank == owner:
            bump[index] = h
        numeric = (loss(x + bump, gamma, beta) - loss(x - bump, gamma, beta)) / (2 * h)
        analytic = comm.bcast(dx[index] if rank == owner else None, root=owner)
        worst = max(worst, abs(numeric - analytic) / max(abs(numeric), abs(analytic), 1e-3))
for c in range(C):
    e = np.zeros(C)
    e[c] = h
    numeric = (loss(x, gamma + e, beta) - loss(x, gamma - e, beta)) / (2 * h)
    worst = max(worst, abs(numeric - dgamma_all[c]) / max(abs(numeric), 1e-3))
    numeric = (loss(x, gamma, beta + e) - loss(x, gamma, beta - e)) / (2 * h)
    worst = max(worst, abs(numeric - dbeta_all[c]) / max(abs(numeric), 1e-3))
assert worst < 1e-6, f"sync batch norm gradient check: relative error {worst:.3g}"
if rank == 0:
    print(f"ok: {size} ranks, worst relative error {worst:.2e}")
