"""Data-parallel training over MPI: P processes (ranks), one model replica each, kept in step.

The design of PyTorch's DistributedDataParallel and of ChainerMN, on mpi4py::

    rank 0 broadcasts its parameters and buffers             # the replicas start identical
    every step, on every rank:
        x_r, y_r = this rank's shard of the global batch     # DataLoader(num_replicas=P, rank=r)
        loss_r = loss(model(x_r), y_r); model.backward(...)  # local gradient g_r
        g = (1/P) sum_r g_r                                  # one Allreduce of a flat buffer
        optimizer.step()                                     # same g, same update everywhere

With equal shards of B/P samples, the mean of the P shard-mean losses is the mean loss of the
global batch of B, so ``g`` is the gradient a single process would get for that batch (batch norm
aside: by default each rank normalizes with its own shard's statistics, as DDP does;
``nn.SyncBatchNorm`` uses the global batch's).  The replicas then stay identical without ever
being compared, because MPI's Allreduce hands every rank the same sum.

mpi4py is imported on first use (as CuPy is in ``backend``): ``import tinyresnet`` never needs it.
Install both it and an MPI library with ``pip install 'tinyresnet[mpi]'`` (the ``mpich`` wheel
brings ``mpiexec``).  The buffers communicated are NumPy arrays: the MPI of the ``mpich`` wheel
does not read GPU memory.
"""
import sys
import time

import numpy as np

from .backend import get_array_module, to_numpy

__all__ = ["mpi_available", "world", "allreduce_sum", "Replicas", "abort", "abort_on_error"]

_MPI_HELP = (
    "tinyresnet: data-parallel training needs mpi4py and an MPI library; install them with "
    "pip install 'tinyresnet[mpi]' (the mpich wheel brings mpiexec), then start the ranks with "
    "mpiexec -n P"
)


def _import_mpi():
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise RuntimeError(_MPI_HELP) from err
    return MPI


def mpi_available():
    """True when mpi4py and an MPI library load (without starting MPI)."""
    try:
        import mpi4py  # noqa: F401  (importing the package does not initialise MPI)
    except ImportError:
        return False
    return True


def world():
    """``MPI.COMM_WORLD``: every process ``mpiexec`` started (a single one without mpiexec).

    Raises RuntimeError, with the install command, when mpi4py is missing.
    """
    return _import_mpi().COMM_WORLD


def ranks_on_this_machine(comm):
    """How many of comm's ranks share this machine (MPI's shared-memory split): they share its
    cores, so ``tinyresnet train --distributed`` gives each rank its part of them."""
    local = comm.Split_type(_import_mpi().COMM_TYPE_SHARED)
    try:
        return local.Get_size()
    finally:
        local.Free()


def allreduce_sum(comm, values):
    """The sum over the ranks of ``values`` (an array, NumPy or CuPy), in the array's dtype."""
    host = np.ascontiguousarray(to_numpy(values))
    total = np.empty_like(host)
    comm.Allreduce(host, total)  # mpi4py's default operation is MPI.SUM
    return get_array_module(values).asarray(total)


class Replicas:
    """One model replica per rank of ``comm``, kept identical: ``broadcast_state`` once, then
    ``average_gradients`` after every backward.

    Parameters
    ----------
    model : Module
    comm : an mpi4py communicator; default ``world()``

    Attributes ``rank``, ``size`` (P) and ``is_root`` (rank 0, the one that writes files).
    """

    def __init__(self, model, comm=None):
        self.model = model
        self.comm = comm if comm is not None else world()
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.is_root = self.rank == 0
        self._buffer = None

    def broadcast_state(self, root=0):
        """Copy rank ``root``'s parameters and buffers (the whole state_dict) to every rank."""
        state = {}
        for name, value in self.model.state_dict().items():
            array = np.array(to_numpy(value), copy=True)  # contiguous, writable, 0-d kept
            self.comm.Bcast(array, root=root)
            state[name] = array
        self.model.load_state_dict(state)

    def average_gradients(self, extra=()):
        """Replace every ``p.grad`` by its mean over the ranks, in one Allreduce.

        The gradients are packed into one flat buffer (allocated once, in the parameters' dtype),
        followed by the numbers of ``extra``, which come back summed over the ranks (the trainer
        sends its loss sum, correct count, sample count and stop flag along, so one message per
        step carries everything).  A parameter without a gradient counts as zero; frozen ones
        (``requires_grad`` False) are left out.  Returns the
        summed ``extra`` as a float64 array.
        """
        params = [p for p in self.model.parameters() if p.requires_grad]
        sizes = [p.data.size for p in params]
        total = sum(sizes)
        dtype = params[0].data.dtype
        if self._buffer is None or self._buffer.size != total + len(extra) or \
                self._buffer.dtype != dtype:
            self._buffer = np.empty(total + len(extra), dtype=dtype)
        send = self._buffer
        offset = 0
        for p, n in zip(params, sizes):
            send[offset:offset + n] = 0 if p.grad is None else to_numpy(p.grad).ravel()
            offset += n
        send[total:] = extra
        received = np.empty_like(send)
        self.comm.Allreduce(send, received)
        received[:total] /= self.size
        xp = get_array_module(params[0].data)
        offset = 0
        for p, n in zip(params, sizes):
            mean = xp.asarray(received[offset:offset + n].reshape(p.data.shape))
            if p.grad is None:
                p.grad = mean
            else:
                p.grad[...] = mean
            offset += n
        return received[total:].astype(np.float64)

    def sum(self, values):
        """The sum over the ranks of a few numbers, as a float64 array (metrics, flags)."""
        return allreduce_sum(self.comm, np.asarray(values, dtype=np.float64))


def abort(comm, message, status=1):
    """Print ``message`` as one line naming the rank, then end every rank of ``comm``.

    A rank that stops on its own would leave the others waiting forever in their next
    collective; ``Abort`` makes the MPI launcher terminate them all, with status ``status``.
    """
    rank, size = comm.Get_rank(), comm.Get_size()
    print(f"rank {rank} of {size}: {message}", file=sys.stderr, flush=True)
    if size > 1:
        time.sleep(0.5)  # the launcher forwards the line before Abort tears the job down
        comm.Abort(status)


def abort_on_error(comm=None):
    """Install a ``sys.excepthook`` that ends every rank when an uncaught exception ends one.

    The hook prints the traceback, then the error in one line with the rank, then calls
    ``comm.Abort(1)``: the other ranks end within moments instead of hanging in a collective.
    """
    comm = comm if comm is not None else world()
    previous = sys.excepthook

    def hook(kind, value, traceback):
        previous(kind, value, traceback)
        text = " ".join(str(value).split())
        abort(comm, f"{kind.__name__}: {text}" if text else kind.__name__, status=1)

    sys.excepthook = hook
