"""Two process executions at once on one view keep their own processor.

pygeoapi's job manager kept the execution's processor on the manager itself, shared by
every request of a view; a land-approval precheck started while a planning-compliance
run was between ``get_processor`` and its handler ran with the other's processor and
inputs ("unknown inputs figure"). The interleaving is forced here, not hoped for.
"""

from __future__ import annotations

import threading

from pygeoapi.process.manager.base import RequestedProcessExecutionMode
from shikong.server.jobs import ShikongJobManager
from shikong.server.processes import process_resources

RING = [[113.30, 33.80], [113.31, 33.80], [113.31, 33.81], [113.30, 33.81], [113.30, 33.80]]
PROPOSAL = {"type": "Polygon", "coordinates": [RING]}


class Interleaving(ShikongJobManager):
    """Holds the first execution after get_processor until the second has fetched its own."""

    def __init__(self, manager_def: dict) -> None:
        super().__init__(manager_def)
        self.first_fetched = threading.Event()
        self.second_fetched = threading.Event()

    def add_job(self, job_metadata: dict) -> str:
        if job_metadata["process_id"] == "planning-compliance":
            self.first_fetched.set()
            assert self.second_fetched.wait(30)
        else:
            self.second_fetched.set()
        return super().add_job(job_metadata)


def test_concurrent_executions_run_their_own_processor(demo_data, tmp_path):
    resources = process_resources(demo_data)
    everything = sorted({"nrp-" + n for n in ("planning_zones", "landuse")})
    for pid in ("planning-compliance", "land-approval-precheck"):
        resources[pid]["processor"]["visible"] = everything
    manager = Interleaving(
        {
            "name": "Interleaving",
            "connection": str(tmp_path / "jobs.db"),
            "output_dir": str(tmp_path),
        }
    )
    manager.processes = resources
    results: dict[str, object] = {}

    def run(pid: str, inputs: dict) -> None:
        try:
            _, _, outputs, status, _ = manager.execute_process(
                pid, inputs, execution_mode=RequestedProcessExecutionMode.wait
            )
            results[pid] = (status, outputs)
        except Exception as exc:  # what the swapped processor raised
            results[pid] = exc

    first = threading.Thread(
        target=run, args=("planning-compliance", {"proposal": PROPOSAL, "figure": False})
    )
    first.start()
    assert manager.first_fetched.wait(30)
    second = threading.Thread(target=run, args=("land-approval-precheck", {"proposal": PROPOSAL}))
    second.start()
    first.join(120)
    second.join(120)
    for pid in ("planning-compliance", "land-approval-precheck"):
        outcome = results[pid]
        assert not isinstance(outcome, Exception), f"{pid}: {outcome}"
        assert "unknown inputs" not in str(outcome)
    compliance = results["planning-compliance"][1]
    precheck = results["land-approval-precheck"][1]
    assert "rules" in str(compliance) or "verdict" in str(compliance)
    assert compliance != precheck
