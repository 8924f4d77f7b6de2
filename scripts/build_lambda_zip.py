"""Build the AWS Lambda deployment zip: production wheels for the runtime, the app, and .pyc.

    python scripts/build_lambda_zip.py --arch arm64 --python 3.12 --out build/lambda.zip

The tree is staged beside the zip (`build/lambda/` for `build/lambda.zip`) and zipped with
sorted entries and fixed timestamps, so the same inputs give the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"
APP_PATHS = ("userservice", "sql", "lambda_handler.py")
# The runtime ships boto3 and botocore (snowflake-connector-python imports them when present).
LEFT_OUT = ("boto3", "botocore", "s3transfer", "jmespath")
# Lambda runs no WSGI server: gunicorn and its gevent worker are not even installed (gevent
# has no wheel for the older runtimes' glibc).
SERVER_ONLY = ("gunicorn", "gevent")
ARCHES = {"x86_64": "x86_64", "arm64": "aarch64"}
# Lambda's python3.12 and later run on Amazon Linux 2023 (glibc 2.34), earlier ones on
# Amazon Linux 2 (glibc 2.26); manylinux2014 is glibc 2.17.
AL2023_FROM = (3, 12)
ZIPPED_LIMIT = 50 * 1024 * 1024
UNZIPPED_LIMIT = 250 * 1024 * 1024
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(ARCHES), default="arm64")
    parser.add_argument("--python", default="3.12", help="the runtime's Python, e.g. 3.12")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lambda.zip")
    parser.add_argument(
        "--interpreter",
        help="a Python of the runtime's version to precompile .pyc with "
        "(default: this one if its version matches, else python3.X on PATH)",
    )
    args = parser.parse_args(argv)
    if args.out.suffix != ".zip":
        parser.error("--out must name a .zip file")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Build the zip; return 1 when it is over Lambda's size limits."""
    args = parse_args(argv)
    missing = [name for name in APP_PATHS if not (ROOT / name).exists()]
    if missing:
        sys.exit(f"error: missing from {ROOT}: {', '.join(missing)}")
    staging = args.out.with_suffix("")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    install_wheels(staging, args.arch, args.python)
    for name in LEFT_OUT:
        remove_distribution(staging, name)
    shutil.rmtree(staging / "bin", ignore_errors=True)
    remove_empty_folders(staging)
    copy_app(staging)
    precompile(staging, args.python, args.interpreter)
    write_zip(staging, args.out)
    return report_sizes(args.out)


def platforms(arch: str, python: str) -> list[str]:
    """List the manylinux platform tags the runtime accepts, newest first."""
    machine = ARCHES[arch]
    newest = 34 if tuple(map(int, python.split("."))) >= AL2023_FROM else 26
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(newest, 16, -1)]
    return [*tags, f"manylinux2014_{machine}"]


def install_wheels(staging: Path, arch: str, python: str) -> None:
    """Install the production pins into staging from wheels built for the runtime."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-compile"]
    command += ["--disable-pip-version-check", "--target", str(staging)]
    command += ["--implementation", "cp", "--python-version", python, "--only-binary=:all:"]
    for tag in platforms(arch, python):
        command += ["--platform", tag]
    lines = REQUIREMENTS.read_text().splitlines(keepends=True)
    with tempfile.TemporaryDirectory() as folder:
        pins = Path(folder) / "requirements.txt"
        pins.write_text("".join(line for line in lines if not _server_only(line)))
        subprocess.run([*command, "-r", str(pins)], check=True)  # noqa: S603


def _server_only(line: str) -> bool:
    """Tell whether a requirements line pins a package only gunicorn needs."""
    return line.split("==")[0].strip().lower() in SERVER_ONLY


def remove_distribution(staging: Path, name: str) -> None:
    """Delete every file an installed distribution's RECORD lists, and its dist-info."""
    for dist_info in staging.glob(f"{name}-*.dist-info"):
        with (dist_info / "RECORD").open(newline="", encoding="utf-8") as record:
            for row in csv.reader(record):
                path = (staging / row[0]).resolve()
                if path.is_relative_to(staging.resolve()):
                    path.unlink(missing_ok=True)
        shutil.rmtree(dist_info, ignore_errors=True)


def remove_empty_folders(staging: Path) -> None:
    """Delete folders left empty, deepest first."""
    for folder in sorted(staging.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def copy_app(staging: Path) -> None:
    """Copy the service's own code and SQL into staging."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in APP_PATHS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, staging / name, ignore=ignore)
        else:
            shutil.copy2(source, staging / name)


def precompile(staging: Path, python: str, interpreter: str | None) -> None:
    """Write .pyc for the runtime's Python, or warn that the runtime will compile at import."""
    for cache in list(staging.rglob("__pycache__")):
        shutil.rmtree(cache)
    found = find_interpreter(python, interpreter)
    if found is None:
        print(
            f"warning: no Python {python} interpreter found (try --interpreter): .pyc were not "
            "precompiled, so every cold start compiles from source (read-only /var/task)",
            file=sys.stderr,
        )
        return
    # unchecked-hash: the .pyc never looks at the source's mtime, which the zip does not keep.
    command = [found, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode"]
    command += ["unchecked-hash", str(staging)]
    # A fixed hash seed keeps frozenset constants, and so the .pyc bytes, the same every build.
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run(command, check=True, env=env)  # noqa: S603


def find_interpreter(python: str, interpreter: str | None) -> str | None:
    """Return a runnable interpreter of exactly that version, or None."""
    if interpreter is None and python == "{}.{}".format(*sys.version_info[:2]):
        return sys.executable
    candidate = interpreter or shutil.which(f"python{python}")
    if candidate is None:
        return None
    probe = [candidate, "-c", "import sys; print('{}.{}'.format(*sys.version_info[:2]))"]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30)  # noqa: S603
    except OSError:
        return None
    return candidate if result.returncode == 0 and result.stdout.strip() == python else None


def files_under(staging: Path) -> Iterator[Path]:
    """Yield every file under staging, in a stable order."""
    for path in sorted(staging.rglob("*"), key=lambda p: p.relative_to(staging).as_posix()):
        if path.is_file():
            yield path


def write_zip(staging: Path, out: Path) -> None:
    """Zip staging into out with sorted entries, fixed timestamps and fixed permissions."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files_under(staging):
            info = zipfile.ZipInfo(path.relative_to(staging).as_posix(), ZIP_TIME)
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    os.replace(partial, out)


def report_sizes(out: Path) -> int:
    """Print the zip's sizes against Lambda's limits; return 1 when it is over one."""
    with zipfile.ZipFile(out) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    zipped = out.stat().st_size
    over = zipped > ZIPPED_LIMIT or unzipped > UNZIPPED_LIMIT
    print(f"{out}: {mib(zipped)} zipped (limit {mib(ZIPPED_LIMIT)}), ", end="")
    print(f"{mib(unzipped)} unzipped (limit {mib(UNZIPPED_LIMIT)})")
    if over:
        print("error: over AWS Lambda's deployment package limits", file=sys.stderr)
    return 1 if over else 0


def mib(size: int) -> str:
    """Format a byte count in MiB."""
    return f"{size / 1024 / 1024:.1f} MiB"


if __name__ == "__main__":
    sys.exit(main())
