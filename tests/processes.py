"""Stopping the servers the tests start as subprocesses (the example app, the OpenID provider,
a dedicated Redis)."""

from __future__ import annotations

import subprocess
from typing import Any


def stop_process(process: subprocess.Popen[Any], timeout: float = 10) -> None:
    """Terminate ``process`` if it still runs, kill it if it will not stop, and reap it."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)
