"""The picture-writer process's main loop: `python -m visionbench.dissect.writer_worker FD`.

Reads jobs (pickled: job id, then the function and its arguments pickled apart) from stdin until stdin
closes, runs each with its arrays taken from the shared region (the inherited descriptor FD), and replies
(job id, error or None) on its stdout. It imports only the standard library,
numpy, Pillow and the picture modules: never torch (writer_process.py says why processes at all).
"""

from __future__ import annotations

import mmap
import os
import pickle
import signal
import sys

from visionbench.dissect.shared_region import WriterFailed, lower_priority, resolve


def serve(region_fd: int) -> None:
    """Worker main loop: run jobs from stdin until it closes; reply (job id, error or None)."""
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print in a job goes to stderr, never into the reply stream
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes our stdin
    lower_priority()
    region = mmap.mmap(region_fd, 0)
    os.close(region_fd)
    jobs = sys.stdin.buffer
    pickle.dump("ready", replies)
    replies.flush()
    while True:
        try:
            job_id, payload = pickle.load(jobs)
        except EOFError:
            return
        error = None
        try:
            job, args = pickle.loads(payload)  # apart, so a job that cannot be loaded is an error, not a crash
            job(*(resolve(a, region) for a in args))
        except BaseException as exc:  # noqa: BLE001 - handed to the parent
            error = exc
        try:  # pickled whole first: a half-written reply would corrupt the stream
            reply = pickle.dumps((job_id, error), protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):
            reply = pickle.dumps((job_id, WriterFailed(f"{type(error).__name__}: {error}")))
        replies.write(reply)
        replies.flush()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
