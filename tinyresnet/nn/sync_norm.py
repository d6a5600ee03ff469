"""SyncBatchNorm: batch norm whose training statistics are those of the global batch over MPI ranks
(torch.nn.SyncBatchNorm), and ``convert_sync_batchnorm`` to switch a whole network to it."""
from .. import functional as F
from ..functional.sync_norm import sync_batchnorm2d_backward, sync_batchnorm2d_forward
from .norm import BatchNorm2d

__all__ = ["SyncBatchNorm", "convert_sync_batchnorm"]


class SyncBatchNorm(BatchNorm2d):
    """BatchNorm2d that, in training, normalizes with the mean and variance of the batch of every
    rank of ``comm`` together (``functional.sync_norm``).  In evaluation it is BatchNorm2d (the
    running statistics are the same on every rank).  Parameters, buffers and state_dict keys are
    BatchNorm2d's, so checkpoints move freely between the two.

    ``comm`` : an mpi4py communicator; default None, meaning ``tinyresnet.distributed.world()``
    at the first training forward (which needs mpi4py).
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None, comm=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)
        self.comm = comm

    def forward(self, x):
        weight = self.weight.data if self.affine else None
        bias = self.bias.data if self.affine else None
        if not self.training and self.track_running_stats:
            y, cache = F.batchnorm2d_forward(x, weight, bias, self.running_mean, self.running_var,
                                             False, 0.0, self.eps)
            self._save(("local", cache))
            return y
        if self.comm is None:
            from ..distributed import world

            self.comm = world()
        momentum = self.momentum
        tracking = self.training and self.track_running_stats
        if tracking and momentum is None:
            momentum = 1.0 / float(self.num_batches_tracked + 1)
        y, cache = sync_batchnorm2d_forward(
            x, weight, bias,
            self.running_mean if tracking else None,
            self.running_var if tracking else None,
            momentum if momentum is not None else 0.0,
            self.eps,
            self.comm,
        )
        if tracking:
            self.num_batches_tracked += 1  # in place, as BatchNorm2d: state_dict arrays stay live
        self._save(("sync", cache))
        return y

    def backward(self, dy):
        kind, cache = self._pop_cache()
        backward = sync_batchnorm2d_backward if kind == "sync" else F.batchnorm2d_backward
        dx, dgamma, dbeta = backward(dy, cache)
        if self.affine:
            self.weight.accumulate(dgamma)
            self.bias.accumulate(dbeta)
        return dx


def convert_sync_batchnorm(module, comm=None):
    """Replace every BatchNorm2d in ``module`` by a SyncBatchNorm over ``comm``, in place, keeping
    the same Parameter objects and buffers (an optimizer built before still works); returns the
    module (a new SyncBatchNorm when ``module`` itself is a BatchNorm2d), as
    torch.nn.SyncBatchNorm.convert_sync_batchnorm does."""
    if isinstance(module, BatchNorm2d) and not isinstance(module, SyncBatchNorm):
        sync = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                             module.track_running_stats, comm=comm)
        if module.affine:
            sync.weight, sync.bias = module.weight, module.bias
        if module.track_running_stats:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                setattr(sync, name, getattr(module, name))
        sync.train(module.training)
        return sync
    for name, child in list(module._modules.items()):
        if child is not None:
            converted = convert_sync_batchnorm(child, comm)
            if converted is not child:
                setattr(module, name, converted)
    return module
