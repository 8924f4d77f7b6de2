"""Packaging: the Lambda zip, the SAM template and the container image stay complete and true."""

from __future__ import annotations

import ast
import importlib.util
import json
import platform
import re
import shlex
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from dataclasses import fields
from pathlib import Path
from subprocess import PIPE
from types import ModuleType
from typing import Any

import pytest
from cfnlint.decode import decode
from lambda_events import http_event

from userservice.settings import Settings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "build_lambda_zip.py"
HERE = "{}.{}".format(*sys.version_info[:2])
HERE_ARCH = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
MIB = 1024 * 1024
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath")
# SnapStart's hooks: the managed runtime ships the module (lambda_handler imports it).
RUNTIME_MODULES = ("snapshot_restore_py.py",)
NOT_SHIPPED = (
    *RUNTIME_PACKAGES,
    "snapshot_restore_py",
    "gunicorn",
    "gevent",
    "greenlet",
    "zope",
    "fakesnow",
    "duckdb",
    "pytest",
    "mypy",
    "ruff",
)
# Dummy production settings shaped like template.yaml's: the secret is read on first connect,
# so building the app does no network I/O.
LAMBDA_ENV = {
    "ENVIRONMENT": "production",
    "AUTH_ISSUER": "https://issuer.example.com/",
    "AUTH_AUDIENCE": "userservice",
    "SNOWFLAKE_ACCOUNT": "example-account",
    "SNOWFLAKE_USER": "USERSERVICE",
    "SNOWFLAKE_WAREHOUSE": "USERSERVICE_WH",
    "SNOWFLAKE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:snowflake-AbCdEf",
    "DB_POOL_MAX_CONNECTIONS": "1",
    "LOG_LEVEL": "WARNING",
}

# Runs in a bare interpreter (-I -S: no site-packages) on the unpacked zip, plus the packages
# the Lambda runtime ships; reports what it saw to the file named by argv[3].
PROBE = """
import importlib.util, json, sys, sysconfig
task, runtime, report = sys.argv[1:]
sys.path[:0] = [task, runtime]
import lambda_handler
import snowflake.connector
from snowflake.connector.options import installed_boto
class Context:  # what Lambda passes; the handler reads the invocation's remaining time
    aws_request_id = "probe"
    get_remaining_time_in_millis = staticmethod(lambda: 30000)
answer = lambda_handler.handler(json.load(sys.stdin), Context())
allowed = (task, runtime, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
files = [getattr(m, "__file__", None) for m in list(sys.modules.values())]
outside = sorted(f for f in files if f and not f.startswith(allowed))
dev = [name for name in ("fakesnow", "duckdb") if importlib.util.find_spec(name)]
with open(report, "w") as out:
    json.dump({"answer": answer, "outside": outside, "dev": dev, "boto": installed_boto}, out)
"""


def start_build(out: Path, arch: str, python: str) -> subprocess.Popen[str]:
    command = [sys.executable, str(SCRIPT), "--arch", arch, "--python", python, "--out", str(out)]
    return subprocess.Popen(command, cwd=ROOT, stdout=PIPE, stderr=PIPE, text=True)


@pytest.fixture(scope="module")
def zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build, side by side, a zip for this machine (to import it) and the deployed one."""
    targets = {"local": (HERE_ARCH, HERE), "deployed": ("arm64", "3.12")}
    folder = tmp_path_factory.mktemp("zips")
    outs = {name: folder / name / "lambda.zip" for name in targets}
    builds = {name: start_build(outs[name], *target) for name, target in targets.items()}
    errors = {name: build.communicate(timeout=600)[1] for name, build in builds.items()}
    assert {name: build.returncode for name, build in builds.items()} == dict.fromkeys(
        targets, 0
    ), errors
    return outs


@pytest.fixture(scope="module")
def local_zip(zips: dict[str, Path]) -> Path:
    return zips["local"]


@pytest.fixture(scope="module")
def unpacked(local_zip: Path) -> Path:
    task = local_zip.parent / "task"
    with zipfile.ZipFile(local_zip) as archive:
        archive.extractall(task)
    return task


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    """A folder holding only the packages the Lambda runtime ships, taken from this venv."""
    folder = tmp_path / "runtime"
    folder.mkdir()
    for name in (*RUNTIME_PACKAGES, *RUNTIME_MODULES):
        (folder / name).symlink_to(Path(sysconfig.get_paths()["purelib"]) / name)
    return folder


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_lambda_zip", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_unpacked_zip_serves_health_using_only_its_own_files_and_the_runtime_boto3(
    unpacked, runtime, tmp_path
):
    report = tmp_path / "report.json"
    event = http_event(raw_path="/health")

    result = subprocess.run(
        [sys.executable, "-B", "-I", "-S", "-c", PROBE, str(unpacked), str(runtime), str(report)],
        input=json.dumps(event),
        cwd=tmp_path,
        env=LAMBDA_ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    seen = json.loads(report.read_text())
    assert seen["answer"]["statusCode"] == 200
    assert json.loads(seen["answer"]["body"]) == {"status": "ok"}
    assert seen["outside"] == []
    assert seen["dev"] == []
    assert seen["boto"] is True


def test_zip_leaves_out_dev_tools_gunicorn_and_what_the_runtime_ships(local_zip):
    tops = {name.split("/")[0] for name in zip_names(local_zip)}
    distributions = {re.sub(r"-.*\.dist-info$", "", top).lower() for top in tops}

    assert [name for name in NOT_SHIPPED if name in tops | distributions] == []
    assert "bin" not in tops


def test_zip_holds_the_app_its_sql_and_its_static_assets(local_zip):
    names = set(zip_names(local_zip))
    expected = {"lambda_handler.py"}
    for folder in ("userservice", "sql"):
        expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / folder).rglob("*.*")}

    assert {n for n in expected if "__pycache__" not in n} - names == set()
    assert "userservice/static/swagger-ui/swagger-ui-bundle.js" in names
    assert "wsgi.py" not in names


def test_zip_holds_unchecked_hash_pyc_for_its_python_only(local_zip):
    tag = sys.implementation.cache_tag
    with zipfile.ZipFile(local_zip) as archive:
        pycs = [n for n in archive.namelist() if n.endswith(".pyc")]
        flags = {int.from_bytes(archive.read(n)[4:8], "little") for n in pycs}
        sources = [n for n in archive.namelist() if n.endswith(".py")]

    assert [n for n in pycs if not n.endswith(f".{tag}.pyc")] == []
    assert flags == {0b01}  # hash-based, source never checked: the zip keeps no mtimes
    assert len(pycs) == len(sources)


def test_zip_is_the_same_bytes_whatever_the_files_times(script, tmp_path):
    tree = tmp_path / "tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "pkg" / "b.py").write_text("B = 2\n")
    (tree / "a.py").write_text("A = 1\n")
    script.write_zip(tree, tmp_path / "first.zip")
    (tree / "a.py").touch()
    script.write_zip(tree, tmp_path / "second.zip")

    assert (tmp_path / "first.zip").read_bytes() == (tmp_path / "second.zip").read_bytes()
    assert zip_names(tmp_path / "first.zip") == ["a.py", "pkg/b.py"]


def test_size_report_fails_a_zip_over_lambdas_limits(script, tmp_path, monkeypatch, capsys):
    out = tmp_path / "tiny.zip"
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.py", "A = 1\n" * 100)
    assert script.report_sizes(out) == 0

    monkeypatch.setattr(script, "UNZIPPED_LIMIT", 10)

    assert script.report_sizes(out) == 1
    assert "over AWS Lambda's deployment package limits" in capsys.readouterr().err


def test_deployed_arm64_python312_zip_is_within_lambdas_limits(zips):
    out = zips["deployed"]

    with zipfile.ZipFile(out) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
        extensions = [n for n in archive.namelist() if n.endswith(".so")]
    assert out.stat().st_size < 50 * MIB
    assert unzipped < 250 * MIB
    assert "_cffi_backend.cpython-312-aarch64-linux-gnu.so" in extensions
    assert [n for n in extensions if "x86_64" in n] == []


# The SAM template.


def template() -> dict[str, Any]:
    decoded, problems = decode(str(ROOT / "template.yaml"))
    assert problems == []
    assert decoded is not None
    return decoded


def test_sam_template_passes_cfn_lint_with_no_errors_or_warnings():
    cfn_lint = Path(sys.executable).with_name("cfn-lint")

    result = subprocess.run(
        [str(cfn_lint), "template.yaml"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert (result.returncode, result.stdout) == (0, "")


def test_sam_function_runs_lambda_handler_on_python312_arm64_from_the_zip():
    function = template()["Resources"]["Function"]["Properties"]
    module = ast.parse((ROOT / "lambda_handler.py").read_text(encoding="utf-8"))
    defined = {node.name for node in module.body if isinstance(node, ast.FunctionDef)}

    assert function["Handler"] == "lambda_handler.handler"
    assert "handler" in defined
    assert (function["Runtime"], function["Architectures"]) == ("python3.12", ["arm64"])
    assert function["CodeUri"] == "build/lambda.zip"


def test_sam_function_turns_snapstart_on_for_the_published_versions_the_api_invokes():
    function = template()["Resources"]["Function"]["Properties"]

    assert function["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert function["AutoPublishAlias"] == "live"


def test_sam_function_sets_only_settings_the_service_reads():
    variables = template()["Resources"]["Function"]["Properties"]["Environment"]["Variables"]
    known = {f.metadata["env"] for f in fields(Settings)}

    assert set(variables) - known == set()
    assert variables["DB_POOL_MAX_CONNECTIONS"] == "1"
    assert variables["SNOWFLAKE_SECRET_ARN"] == {"Ref": "SnowflakeSecretArn"}


def test_sam_function_may_read_its_snowflake_secret_and_nothing_else():
    policies = template()["Resources"]["Function"]["Properties"]["Policies"]

    assert policies == [
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadTheSnowflakeSecret",
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": {"Ref": "SnowflakeSecretArn"},
                }
            ],
        }
    ]


def test_sam_http_api_throttles_its_stage_with_the_parameters():
    # cfn-lint does not check names nested in SAM properties: a misspelling would pass it.
    api = template()["Resources"]["HttpApi"]["Properties"]

    assert api["StageName"] == {"Ref": "StageName"}
    assert api["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
    }


def test_sam_http_api_checks_tokens_on_the_api_routes_and_leaves_health_open():
    # API Gateway's own check, in front of the function's (which every other door relies on).
    resources = template()["Resources"]
    auth = resources["HttpApi"]["Properties"]["Auth"]
    events = resources["Function"]["Properties"]["Events"]

    assert auth["DefaultAuthorizer"] == "JwtAuthorizer"
    assert auth["Authorizers"]["JwtAuthorizer"] == {
        "IdentitySource": "$request.header.Authorization",
        "JwtConfiguration": {
            "issuer": {"Ref": "AuthIssuer"},
            "audience": [{"Ref": "AuthAudience"}],
        },
    }
    routes = {
        (e["Properties"].get("Method"), e["Properties"].get("Path")): e["Properties"]["Auth"]
        for e in events.values()
    }
    assert routes == {
        ("ANY", "/api/{proxy+}"): {
            "AuthorizationScopes": [{"Ref": "AuthReadScope"}, {"Ref": "AuthWriteScope"}]
        },
        ("OPTIONS", "/api/{proxy+}"): {"Authorizer": "NONE"},
        ("GET", "/health"): {"Authorizer": "NONE"},
        ("GET", "/health/ready"): {"Authorizer": "NONE"},
        (None, None): {"Authorizer": "NONE"},
    }
    variables = resources["Function"]["Properties"]["Environment"]["Variables"]
    assert {name: variables[name] for name in ("AUTH_ISSUER", "AUTH_AUDIENCE")} == {
        "AUTH_ISSUER": {"Ref": "AuthIssuer"},
        "AUTH_AUDIENCE": {"Ref": "AuthAudience"},
    }


def test_sam_function_logs_to_its_own_log_group_with_a_retention():
    resources = template()["Resources"]

    assert resources["Function"]["Properties"]["LoggingConfig"] == {
        "LogGroup": {"Ref": "FunctionLogGroup"}
    }
    assert resources["FunctionLogGroup"]["Type"] == "AWS::Logs::LogGroup"
    assert resources["FunctionLogGroup"]["Properties"] == {
        "RetentionInDays": {"Ref": "LogRetentionInDays"}
    }


# The container image (no Docker engine here: the Dockerfile is checked as text).


def dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1]) for pair in pairs]


def instructions(name: str) -> list[str]:
    return [args for instruction, args in dockerfile() if instruction == name]


def test_dockerfile_cmd_is_the_procfile_web_command():
    procfile = (ROOT / "Procfile").read_text(encoding="utf-8")
    web = re.search(r"^web:(.*)$", procfile, re.MULTILINE)

    assert web is not None
    assert instructions("CMD") == [json.dumps(shlex.split(web.group(1)))]


def test_dockerfile_serves_as_a_user_that_is_not_root():
    order = [instruction for instruction, _ in dockerfile()]
    users = instructions("USER")

    assert users == ["10001:10001"]  # the app user and group created above, by number
    assert order.index("USER") < order.index("CMD")


def test_dockerfile_healthcheck_asks_health_with_urllib():
    (check,) = instructions("HEALTHCHECK")
    command = json.loads(check.split("CMD", 1)[1])

    assert command[:2] == ["python", "-c"]
    assert "urllib.request" in command[2]
    assert "/health'" in command[2]


def test_dockerfile_installs_production_pins_and_copies_only_what_gunicorn_needs():
    copied = [source for args in instructions("COPY") for source in args.split()[:-1]]
    installs = [args for args in instructions("RUN") if "pip install" in args]

    assert copied == ["requirements.txt", "userservice/", "sql/", "wsgi.py", "gunicorn.conf.py"]
    assert installs == ["pip install --no-cache-dir -r requirements.txt"]


def test_dockerfile_image_matches_the_python_the_code_is_checked_for():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    version = pyproject["tool"]["mypy"]["python_version"]

    assert instructions("FROM") == [f"python:{version}-slim-bookworm"]


def test_dockerignore_keeps_the_venv_tests_data_and_builds_out_of_the_context():
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()

    for entry in (".venv/", ".git/", ".env", "tests/", ".data/", "build/", "**/__pycache__/"):
        assert entry in ignored, entry
