"""A datatrove step for the Ray tests: rank 1 hangs on its first attempt (a stuck task), then passes.

Lives in an importable module (not the test file) so Ray's workers can unpickle it.
"""
from __future__ import annotations

import time
from pathlib import Path

from datatrove.pipeline.base import PipelineStep


class HangOnceStep(PipelineStep):
    name = "hang once"

    def __init__(self, marker_dir: str, out_dir: str):
        super().__init__()
        self.marker_dir, self.out_dir = marker_dir, out_dir

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        attempt = Path(self.marker_dir) / f"attempt-{rank}"
        first = not attempt.exists()
        attempt.write_text("x")
        if rank == 1 and first:
            # a stuck task: only the executor's time limit gets the run past it (short, so that the
            # orphaned process left by the kill ends soon after the test)
            time.sleep(240)
        Path(self.out_dir, f"rank-{rank}").write_text("done")
        yield from data or []
