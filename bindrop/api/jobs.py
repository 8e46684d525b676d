"""Long actions the caller chose not to wait for (``?wait=0``): a job id to ask about later.

In memory only (run-state, not config), bounded: the oldest finished jobs are forgotten.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bindrop.errors import BindropError, NotFound

KEEP = 500


@dataclass
class Job:
    id: str
    app: str
    action: str
    future: asyncio.Future[Any]
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "app": self.app, "action": self.action,
                               "created_at": self.created_at.isoformat(), "state": "running",
                               "result": None, "error": None}
        if not self.future.done():
            return out
        exc = None if self.future.cancelled() else self.future.exception()
        if self.future.cancelled():
            out |= {"state": "failed", "error": {"code": "cancelled",
                                                 "message": "the job was cancelled"}}
        elif isinstance(exc, BindropError):
            out |= {"state": "failed", "error": exc.to_dict()["error"]}
        elif exc is not None:
            out |= {"state": "failed", "error": {"code": "internal_error",
                                                 "message": "the job failed unexpectedly; "
                                                            "see the hub's log"}}
        else:
            result = self.future.result()
            out |= {"state": "succeeded",
                    "result": result.to_dict() if hasattr(result, "to_dict") else result}
        return out


class Jobs:
    def __init__(self, keep: int = KEEP) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._ids = itertools.count(1)
        self._keep = keep

    def add(self, app: str, action: str, future: asyncio.Future[Any]) -> Job:
        job = Job(str(next(self._ids)), app, action, future)
        # The caller is not awaiting it: mark a failure retrieved so asyncio does not log it.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._jobs[job.id] = job
        while len(self._jobs) > self._keep:
            oldest = next((j for j in self._jobs.values() if j.future.done()), None)
            if oldest is None:
                break
            del self._jobs[oldest.id]
        return job

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}: it never existed or finished long ago")
        return job
