"""``batchplane local up`` as a child process on a data directory, as a user runs it: started,
killed with SIGKILL (no shutdown code runs) and started again on the same directory, with
what /proc says of its memory and CPU. Used by ``--restart`` and ``--big-array``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from .harness import ROOT

_LISTENING = re.compile(r"listening on (http://[A-Za-z0-9.\-]+:[0-9]+)")


def clean_env() -> dict[str, str]:
    """This environment without AWS_* / BATCHPLANE_*: the stack sets its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BATCHPLANE_"))}


class UpProcess:
    """One ``batchplane local up --port PORT --data-dir DIR`` at a time; ``start()`` again
    after ``kill9()`` or ``stop()`` starts a new process on the same directory. Its output
    (every start's) is appended to ``log``."""

    def __init__(self, data_dir: Path, log: Path, *, port: int = 0, options: list[str] | None = None) -> None:
        self.data_dir = data_dir
        self.log = log
        self.port = port
        self.options = options or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""
        self.starts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 180.0) -> float:
        """Start the stack and wait for its "listening on" line; returns the seconds it took."""
        began = time.monotonic()
        offset = self.log.stat().st_size if self.log.exists() else 0
        cmd = [sys.executable, "-m", "batchplane.cli", "local", "up", "--port", str(self.port),
               "--data-dir", str(self.data_dir), *self.options]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=clean_env())
        self.starts += 1
        deadline = began + timeout
        while time.monotonic() < deadline:
            with self.log.open("rb") as f:
                f.seek(offset)
                m = _LISTENING.search(f.read().decode(errors="replace"))
            if m:
                self.endpoint = m.group(1)
                return time.monotonic() - began
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        tail = self.tail()
        self.kill9()
        raise RuntimeError(f"`batchplane local up` did not start:\n{tail}")

    def kill9(self) -> None:
        """SIGKILL to the stack's process only: the jobs' processes outlive it, as ECS tasks
        outlive their control plane."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM: the stack's clean stop."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def status(self) -> dict[str, int]:
        """VmRSS / VmHWM (peak) / VmSize of the stack's process, in KiB ({} when gone)."""
        if self.proc is None:
            return {}
        return proc_status(self.proc.pid)

    def cpu_seconds(self) -> float | None:
        """User + system CPU so far of the stack's process and of the worker process it
        runs now (the Batch API and the publisher; a worker that was replaced is not
        counted). Its jobs are separate processes, not counted."""
        return stack_cpu_seconds(self.proc.pid) if self.proc is not None else None


def stack_cpu_seconds(pid: int) -> float | None:
    """User + system CPU so far of the stack's process ``pid`` and of its worker process
    now (see UpProcess.cpu_seconds)."""
    own = _cpu_seconds(pid)
    if own is None:
        return None
    return own + sum(_cpu_seconds(worker) or 0.0 for worker in workers_of(pid))


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workers_of(pid: int) -> list[int]:
    """The stack's worker processes (local/worker.py) among its children: those of each of
    its threads (the kernel lists a child under the thread that started it, and a worker
    started again is started by the stack's supervisor thread)."""
    found = []
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += (task / "children").read_text().split()
        except OSError:
            continue  # a thread that ended meanwhile
    for child in children:
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"batchplane.local.worker" in argv:
            found.append(int(child))
    return found


def proc_status(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "VmSize", "Threads"):
            out[key] = int(rest.split()[0])
    return out


def dir_bytes(path: Path) -> int:
    """Bytes the directory's files take on disk (allocated blocks, as du counts them)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).lstat().st_blocks * 512
            except OSError:
                pass  # a task directory removed meanwhile
    return total


class MemorySampler:
    """Samples the stack process's /proc status every ``every`` seconds in a thread: the
    peak of VmHWM (the kernel's own high-water mark of its resident set) and of VmRSS seen,
    and a timeline of (seconds, VmRSS KiB)."""

    def __init__(self, stack: UpProcess, every: float = 1.0) -> None:
        self.stack = stack
        self.every = every
        self.peak_hwm_kib = 0
        self.peak_rss_kib = 0
        self.peak_threads = 0
        self.timeline: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)
        self._began = time.monotonic()

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sample()
        self._stop.set()
        self._thread.join(5)

    def sample(self) -> None:
        s = self.stack.status()
        if not s:
            return
        self.peak_hwm_kib = max(self.peak_hwm_kib, s.get("VmHWM", 0))
        self.peak_rss_kib = max(self.peak_rss_kib, s.get("VmRSS", 0))
        self.peak_threads = max(self.peak_threads, s.get("Threads", 0))
        self.timeline.append((round(time.monotonic() - self._began, 1), s.get("VmRSS", 0)))

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()
