"""Cold start: how long each Lambda handler module takes to import in a fresh interpreter,
and how big each built function and layer is (from a ``sam build`` output)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from .harness import ROOT, function_folders
from .report import NOT_MEASURED

if TYPE_CHECKING:
    from .report import Report

FUNCTIONS = ROOT / "functions"

_PROBE = (
    "import sys, time\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "t = time.perf_counter()\n"
    "import app\n"
    "print(time.perf_counter() - t)\n"
)


def _lambda_env(function: str) -> dict[str, str]:
    """What the handler sees at init in Lambda, as far as imports care: the function name
    makes powertools' Tracer active (it patches botocore at import), as with Tracing: Active."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_ENDPOINT_URL", "BATCHPLANE_"))}
    env.update({
        "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": function, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR", "POWERTOOLS_SERVICE_NAME": "batchplane",
        "BATCHPLANE_TABLE": "batchplane",
    })
    env.pop("POWERTOOLS_TRACE_DISABLED", None)
    return env


def import_seconds(folder: Path, function: str, *, bytecode: bool = True) -> float:
    """``import app`` in a fresh interpreter. Without ``bytecode`` nothing is read from or
    written to a .pyc cache, as on Lambda when the layer ships none (its file system is
    read-only): every module is compiled from source (the standard library too, here,
    which Lambda's runtime does have compiled: this overstates a little)."""
    env = _lambda_env(function)
    with tempfile.TemporaryDirectory(prefix="batchplane-nopyc-") as empty:
        if not bytecode:
            env.update({"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": empty})
        out = subprocess.run([sys.executable, "-c", _PROBE, str(folder)], env=env,
                             capture_output=True, text=True, timeout=120, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def heaviest_packages(folder: Path, function: str,
                      top: int = 4) -> tuple[float, list[tuple[str, float]]]:
    """The import time, and the heaviest top-level packages (the sum of their modules' own
    times) as ``-X importtime`` reports them (which itself adds a little)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", _PROBE, str(folder)],
                         env=_lambda_env(function), capture_output=True, text=True, timeout=120,
                         check=True)
    totals: dict[str, float] = defaultdict(float)
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, _, name = line.removeprefix("import time:").split("|")
        totals[name.strip().split(".")[0]] += int(own) / 1e6
    seconds = float(out.stdout.strip().splitlines()[-1])
    return seconds, sorted(totals.items(), key=lambda kv: -kv[1])[:top]


def interpreter_seconds() -> float:
    """A bare interpreter's start and exit, seen from outside (fork and exec included)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], timeout=60, check=True)
    return time.perf_counter() - start


def run_imports(report: Report, repeats: int, deadline: float = float("inf")) -> None:
    data = {}
    ids = function_folders()
    for folder in sorted(p for p in FUNCTIONS.iterdir() if (p / "app.py").is_file()):
        function = ids.get(folder.name, folder.name)
        if time.monotonic() > deadline:
            report.add("Cold start", f"import {folder.name}/app.py ({function})", NOT_MEASURED,
                       note="quick mode's time budget ran out on a busy machine")
            continue
        # First, also as warm-up: it writes the .pyc files (a built layer ships them too).
        traced, heavy = heaviest_packages(folder, function)
        times = [import_seconds(folder, function) for _ in range(repeats)] or [traced]
        median = statistics.median(times)
        data[function] = {"seconds": [round(t, 4) for t in times],
                          "median_seconds": round(median, 4),
                          "heaviest_packages": [(n, round(s, 4)) for n, s in heavy]}
        report.add("Cold start", f"import {folder.name}/app.py ({function})",
                   round(median * 1000), "ms",
                   note=(f"median of {repeats} fresh interpreters" if repeats
                         else "one fresh interpreter, -X importtime") + ", tracer on; heaviest: "
                        + ", ".join(f"{n} {s * 1000:.0f}" for n, s in heavy[:3]) + " ms")
    api = FUNCTIONS / "api"
    if (api / "app.py").is_file() and time.monotonic() < deadline:
        cold = statistics.median(import_seconds(api, ids.get("api", "api"), bytecode=False)
                                 for _ in range(max(repeats, 1)))
        report.add("Cold start", "import api/app.py without .pyc files", round(cold * 1000), "ms",
                   note="as on Lambda when the layer ships no bytecode (the sizes below count "
                        "its .pyc files): every module compiled at import")
        data["ApiFunction (no bytecode)"] = {"median_seconds": round(cold, 4)}
    bare = statistics.median(interpreter_seconds() for _ in range(max(repeats, 1)))
    report.add("Cold start", "bare interpreter start (python -c pass)", round(bare * 1000), "ms",
               note="for scale: Lambda's own runtime start is not in the import figures")
    report.data.setdefault("coldstart", {})["imports"] = data
    report.data["coldstart"]["bare_interpreter_seconds"] = round(bare, 4)


def _size(path: Path) -> dict[str, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    raw = sum(p.stat().st_size for p in files)
    with tempfile.TemporaryFile() as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for p in files:
                z.write(p, p.relative_to(path))
        zipped = tmp.tell()
    return {"files": len(files), "bytes": raw, "zipped_bytes": zipped}


def run_sizes(report: Report, build_dir: Path | None, *, build: bool) -> None:
    """Sizes of a ``sam build`` output; runs ``sam build`` itself only when ``build``."""
    note = ""
    tmp = None
    if build_dir is None and build:
        tmp = Path(tempfile.mkdtemp(prefix="batchplane-sam-build-"))
        build_dir, note = _sam_build(tmp)
    try:
        if build_dir is None or not build_dir.is_dir():
            why = note or "pass --sam-build-dir PATH (a `sam build` output) to measure"
            report.add("Cold start", "built function and layer sizes", NOT_MEASURED, note=why)
            report.data.setdefault("coldstart", {})["sizes"] = None
            return
        sizes = {}
        for artifact in sorted(p for p in build_dir.iterdir() if p.is_dir()):
            sizes[artifact.name] = _size(artifact)
            s = sizes[artifact.name]
            pyc = sum(1 for _ in artifact.rglob("*.pyc"))
            report.add("Cold start", f"size of {artifact.name}",
                       f"{_human(s['bytes'])} ({_human(s['zipped_bytes'])} zipped)",
                       note=f"{s['files']:,} files, {pyc:,} of them .pyc, in {build_dir}")
        report.data.setdefault("coldstart", {})["sizes"] = {"build_dir": str(build_dir), **sizes}
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _human(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB"


def _sam_build(into: Path) -> tuple[Path | None, str]:
    sam = shutil.which("sam") or str(Path(sys.executable).with_name("sam"))
    if not Path(sam).exists():
        return None, "sam CLI not found"
    try:
        subprocess.run([sam, "build", "--build-dir", str(into)], cwd=ROOT, capture_output=True,
                       text=True, timeout=900, check=True)
    except subprocess.CalledProcessError as e:
        last = (e.stderr or e.stdout or "").strip().splitlines()[-1:] or ["?"]
        return None, f"sam build failed: {last[0][:120]}"
    except subprocess.TimeoutExpired:
        return None, "sam build took over 15 minutes"
    return into, ""
