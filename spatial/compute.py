"""Where dask graphs run: a local cluster sized to the machine, or an existing cluster.

Set ``SHIKONG_DASK_SCHEDULER=tcp://host:8786`` (or ``dask.scheduler`` in the dask config)
to run jobs on a distributed cluster; nothing else changes. Without it a LocalCluster is
started once per process: one worker per core, one thread each, memory split evenly, so
a job's peak memory is bounded by the workers' limits, not by the raster's size.
"""

from __future__ import annotations

import os
import threading

import dask
import psutil
from distributed import Client, LocalCluster

from .memory import environment

_lock = threading.Lock()
_client: Client | None = None


def scheduler_address() -> str | None:
    return os.environ.get("SHIKONG_DASK_SCHEDULER") or dask.config.get("dask.scheduler", None)


def get_client() -> Client:
    """The process's dask client (created on first use)."""
    global _client
    with _lock:
        if _client is not None and _client.status == "running":
            return _client
        address = scheduler_address()
        if address:
            _client = Client(address, set_as_default=False)
        else:
            cores = os.cpu_count() or 1
            memory = int(psutil.virtual_memory().total * 0.6 / cores)
            prefix = "distributed.nanny.pre-spawn-environ"
            spawn = {f"{prefix}.{k}": v for k, v in environment().items()}
            with dask.config.set(spawn):  # workers reuse freed block arrays (see .memory)
                cluster = LocalCluster(
                    n_workers=cores,
                    threads_per_worker=1,
                    memory_limit=memory,
                    dashboard_address=None,
                    processes=True,
                )
            _client = Client(cluster, set_as_default=False)
        return _client


def close() -> None:
    global _client
    with _lock:
        if _client is not None:
            cluster = getattr(_client, "cluster", None)
            _client.close()
            if cluster is not None and not scheduler_address():
                cluster.close()
            _client = None
