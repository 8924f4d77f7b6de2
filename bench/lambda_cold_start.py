"""Measure cold imports of the Lambda package: `lambda_handler`, with and without .pyc.

Builds the x86_64 zip for the runtime's Python with scripts/build_lambda_zip.py, unpacks it
twice (as built, with precompiled .pyc, and with every __pycache__ removed), and times the
import in fresh interpreters run with -B -I -S (no bytecode writes, as on Lambda's read-only
/var/task; nothing on the path but the package, the standard library and boto3/botocore,
which the runtime ships). The baseline is `import flask, flask_smorest` from the same tree.
Prints Markdown table rows: the median of RUNS processes.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 10
RUNTIME = "3.12"
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py")
ENV = {
    "ENVIRONMENT": "production",
    "AUTH_ISSUER": "https://issuer.example.com/",
    "AUTH_AUDIENCE": "userservice",
    "SNOWFLAKE_ACCOUNT": "bench",
    "SNOWFLAKE_USER": "bench",
    "SNOWFLAKE_WAREHOUSE": "bench",
    "SNOWFLAKE_PASSWORD": "unused",
    "LOG_LEVEL": "WARNING",
}
PROBE = """
import sys, time
sys.path[:0] = {path!r}
started = time.perf_counter()
{statement}
print(time.perf_counter() - started)
"""


def runtime_python() -> str | None:
    """Return a Python of the runtime's version (pyenv's, when its shim needs a version)."""
    for candidate in (f"/root/.pyenv/versions/{RUNTIME}.1/bin/python{RUNTIME}", f"python{RUNTIME}"):
        found = shutil.which(candidate) or (candidate if Path(candidate).exists() else None)
        if found and subprocess.run([found, "-c", "pass"], capture_output=True).returncode == 0:
            return found
    return None


def build(workdir: Path, python: str) -> Path:
    """Build the zip and return it."""
    out = workdir / "lambda.zip"
    subprocess.run(
        [
            sys.executable,
            "scripts/build_lambda_zip.py",
            "--arch",
            "x86_64",
            "--python",
            RUNTIME,
            "--out",
            str(out),
            "--interpreter",
            python,
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return out


def unpack(archive: Path, target: Path, *, keep_pyc: bool) -> Path:
    """Unpack the zip; without keep_pyc, remove every __pycache__."""
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(target)
    if not keep_pyc:
        for cache in list(target.rglob("__pycache__")):
            shutil.rmtree(cache)
    return target


def runtime_packages(workdir: Path) -> Path:
    """Link the venv's boto3 and friends into a folder, standing in for the runtime's."""
    folder = workdir / "runtime"
    folder.mkdir()
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    for name in RUNTIME_PACKAGES:
        source = site / "site-packages" / name
        if source.exists():
            (folder / name).symlink_to(source)
    return folder


def median_seconds(python: str, path: list[str], statement: str) -> float:
    """Return the median import time over RUNS fresh interpreters."""
    code = PROBE.format(path=path, statement=statement)
    times = []
    for _ in range(RUNS):
        result = subprocess.run(
            [python, "-B", "-I", "-S", "-c", code],
            env={**os.environ, **ENV},
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(result.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main() -> None:
    python = runtime_python()
    if python is None:
        print(f"skipped: no Python {RUNTIME} here, and the figures need the runtime's version")
        return
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        archive = build(workdir, python)
        runtime = str(runtime_packages(workdir))
        trees = {
            "with .pyc": str(unpack(archive, workdir / "pyc", keep_pyc=True)),
            "without .pyc": str(unpack(archive, workdir / "nopyc", keep_pyc=False)),
        }
        rows = [
            ("`import flask, flask_smorest`", "import flask, flask_smorest"),
            ("`import lambda_handler` (app built)", "import lambda_handler"),
            ("`import snowflake.connector` (first connection)", "import snowflake.connector"),
        ]
        print(f"Python {RUNTIME} ({python}), median of {RUNS} fresh processes:\n")
        print("| import | with .pyc | without .pyc |\n|---|---|---|")
        for label, statement in rows:
            figures = [
                median_seconds(python, [tree, runtime], statement) for tree in trees.values()
            ]
            print(f"| {label} | {figures[0] * 1000:.0f} ms | {figures[1] * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
