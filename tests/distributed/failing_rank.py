"""Under mpiexec -n 2: data-parallel fit on the digits where rank 1 fails mid-epoch, at batch 2
of epoch 1, either by raising (``raise``) or by being killed with SIGKILL (``kill``); or
(``uneven``) loaders without drop_last whose ranks would take different numbers of steps.  Every
rank must end, with a message, instead of waiting forever for rank 1 in the next Allreduce."""
import os
import signal
import sys
import tempfile

from tinyresnet import data, distributed, models, optim
from tinyresnet.random import manual_seed
from tinyresnet.train import fit
from tinyresnet.train.recipes import build_datasets

how = sys.argv[1]
comm = distributed.world()
distributed.abort_on_error(comm)
rank, size = comm.Get_rank(), comm.Get_size()
bundle = build_datasets("digits", seed=0)
manual_seed(0)
model = models.get_model("cifar_resnet20", num_classes=10, in_channels=1)
# uneven: 1347 images in batches of 2 leave a last batch of one image, for rank 0 alone.
loader = data.DataLoader(bundle.train, batch_size=2 if how == "uneven" else 64, shuffle=True,
                         drop_last=how != "uneven", seed=0, num_replicas=size, rank=rank)


def fail(epoch, step, logs):
    if rank == 1 and step == 2:
        if how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError("rank 1 failed on purpose")


with tempfile.TemporaryDirectory() as out:
    fit(model, loader, None, optim.SGD(model.parameters(), lr=0.05), epochs=1, out_dir=out,
        progress=False, plot=False, on_batch=fail, comm=comm)
print(f"rank {rank}: finished, which it should not have", flush=True)
