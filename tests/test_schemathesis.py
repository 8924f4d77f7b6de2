"""The HTTP contract, proved from outside: schemathesis against the running service's spec.

gunicorn serves the app on the emulator; the schemathesis CLI reads /openapi.json and runs
every check on every operation in every phase, stateful runs included (they follow the
spec's links from a create to get, update and delete). A fixed seed and a bounded number of
examples per operation keep a run repeatable and under a minute or so.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from issuer import READ, WRITE

from bench.servers import BIN, ROOT, call, emulator_env, free_port, gunicorn
from userservice.auth import devkey
from userservice.settings import Settings

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent

SEED = 20261126
MAX_EXAMPLES = 200
PHASES = ("examples", "coverage", "fuzzing", "stateful")
REPORTS = ROOT / "build" / "schemathesis"
SUMMARY = ROOT / "build" / "schemathesis-summary.txt"
# A schema-valid If-Match that names no current version is refused with 412: that is what
# the header is for, not a rejection of valid data, so the writes that take it may say 412.
CONFIG = """
[[operations]]
include-name = [
    "PUT /api/v1/users/{user_id}",
    "PATCH /api/v1/users/{user_id}",
    "DELETE /api/v1/users/{user_id}",
]
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "401", "403", "404", "409", "412", "429", "5xx",
]

# Likewise a schema-valid Idempotency-Key that an earlier create sent with another body is
# refused with 422 IDEMPOTENCY_KEY_REUSED, as the IETF draft says: that is what the key is for.
[[operations]]
include-name = ["POST /api/v1/users"]
checks.positive_data_acceptance.expected-statuses = [
    "2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx",
]
"""


def schemathesis(port, tmp_path, token: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"http://127.0.0.1:{port}/openapi.json",
        # Every request carries a token with both scopes; the ignored_auth check (in "all")
        # also sends each secured operation without it, and expects the refusal documented.
        f"--header=Authorization: Bearer {token}",
        "--checks=all",
        f"--phases={','.join(PHASES)}",
        f"--max-examples={MAX_EXAMPLES}",
        f"--seed={SEED}",
        # One worker keeps the order of requests, and so the service's state, repeatable.
        "--workers=1",
        # No examples carried over from an earlier run: the same seed makes the same run.
        "--generation-database=none",
        "--report=junit,json,ndjson",
        f"--report-junit-path={REPORTS / 'junit.xml'}",
        f"--report-json-path={REPORTS / 'report.json'}",
        f"--report-ndjson-path={tmp_path / 'events.ndjson'}",
    ]
    # The hooks module (tests/schemathesis_hooks.py) keeps generated names within what the
    # spec's pattern can class. In tmp_path, so schemathesis's own cache stays out of the repo.
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks", "PYTHONPATH": str(TESTS)}
    return subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )


def answered(events: Path) -> set[tuple[str, str, int]]:
    """Return every (method, path, status) the service gave during the run, from its events."""
    seen = set()
    for line in events.read_text().splitlines():
        recorder = (json.loads(line).get("ScenarioFinished") or {}).get("recorder") or {}
        for case_id, case in recorder.get("cases", {}).items():
            response = (recorder["interactions"].get(case_id) or {}).get("response")
            if response:
                seen.add((case["value"]["method"], case["value"]["path"], response["status_code"]))
    return seen


def auth_probes(events: Path) -> list[tuple[str, str, bool, int]]:
    """Return the requests the ignored_auth check sent: (method, path, had a credential, status).

    They are the only cases with no check of their own: the check resends a passing case
    without the Authorization header and with a wrong one, and expects a refusal.
    """
    probes = []
    for line in events.read_text().splitlines():
        recorder = (json.loads(line).get("ScenarioFinished") or {}).get("recorder") or {}
        for case_id, case in recorder.get("cases", {}).items():
            if recorder.get("checks", {}).get(case_id):
                continue
            value = case["value"]
            response = (recorder["interactions"].get(case_id) or {}).get("response") or {}
            had = "Authorization" in (value.get("headers") or {})
            probes.append((value["method"], value["path"], had, response.get("status_code")))
    return probes


def undocumented(spec: dict, statuses: set[tuple[str, str, int]]) -> set[tuple[str, str, int]]:
    """Return the statuses an operation gave that it documents only through `default`.

    With `default` in the spec any status conforms, so schemathesis cannot tell; methods
    a path does not have (405) are schemathesis's unsupported_method check.
    """
    return {
        (method, path, status)
        for method, path, status in statuses
        if method.lower() in spec["paths"][path]
        and str(status) not in spec["paths"][path][method.lower()]["responses"]
    }


def summarize(report: dict, output: str, statuses: set[tuple[str, str, int]]) -> str:
    links = re.search(r"API Links:\s+(.+)", output)
    warnings = {name: found for name, found in report["warnings"].items() if found}
    return "\n".join(
        [
            f"schemathesis {report['schemathesis_version']}: seed {report['seed']}, "
            f"at most {MAX_EXAMPLES} examples per operation, all checks",
            "operations: {tested} tested / {selected} selected / {total} total".format(
                **report["operations"]
            ),
            "phases: "
            + ", ".join(f"{name} {phase['status']}" for name, phase in report["phases"].items()),
            f"stateful API links: {links.group(1) if links else 'not reported'}",
            "test cases: {generated} generated, {with_failures} with failures, "
            "{errored} errored".format(**report["test_cases"]),
            f"failures: {len(report['failures'])}, errors: {len(report['errors'])}, "
            f"warnings: {warnings or 'none'}",
            f"statuses answered: {sorted({status for _, _, status in statuses})}",
            f"running time: {report['running_time']:.1f} s",
        ]
    )


def test_the_running_service_honours_its_openapi_contract(tmp_path):
    REPORTS.mkdir(parents=True, exist_ok=True)
    env = emulator_env(tmp_path / "emulator", AUTH_ISSUER="dev")
    token = devkey.mint(Settings.from_env(env, env_file=None), [READ, WRITE], 3600)
    port = free_port()
    with gunicorn(env, tmp_path / "gunicorn.log", port=port):
        run = schemathesis(port, tmp_path, token)
        spec = call(port, "GET", "/openapi.json")[2]
        refused = {
            (method, path): call(port, method.upper(), path.replace("{user_id}", "1"), None)
            for path, item in spec["paths"].items()
            for method in item
            if path.startswith("/api/v1/") and method != "parameters"
        }

    report = json.loads((REPORTS / "report.json").read_text())
    statuses = answered(tmp_path / "events.ndjson")
    summary = summarize(report, run.stdout, statuses)
    SUMMARY.write_text(summary + "\n")
    evidence = f"{summary}\n\n{run.stdout[-20_000:]}{run.stderr[-5_000:]}"
    assert run.returncode == 0, evidence
    assert report["operations"] == {
        "total": 8,
        "selected": 8,
        "tested": 8,
        "errored": 0,
        "skipped": 0,
        "skip_reasons": [],
    }, evidence
    assert report["phases"] == {
        name: {"status": "success", "skip_reason": None} for name in PHASES
    }, evidence
    assert report["test_cases"]["generated"] > 0, evidence
    assert {
        count: report["test_cases"][count]
        for count in ("with_failures", "unique_failures", "errored")
    } == {"with_failures": 0, "unique_failures": 0, "errored": 0}, evidence
    # Every secured operation was probed without a credential and with a wrong one: both 401.
    probes = auth_probes(tmp_path / "events.ndjson")
    secured = [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if path.startswith("/api/v1/") and method != "parameters"
    ]
    assert sorted(probes) == sorted(
        (method, path, had, 401) for method, path in secured for had in (False, True)
    ), f"{probes}\n{evidence}"
    assert report["test_cases"]["without_checks"] == len(probes), evidence
    assert (report["failures"], report["errors"]) == ([], []), evidence
    assert {name: found for name, found in report["warnings"].items() if found} == {}, evidence
    assert undocumented(spec, statuses) == set(), evidence
    # Without credentials, every secured operation answers the 401 its spec documents.
    assert len(refused) == 6
    for (method, path), (status, headers, body) in refused.items():
        assert (status, body["code"], headers["WWW-Authenticate"]) == (
            401,
            "UNAUTHENTICATED",
            'Bearer realm="userservice"',
        ), (method, path)
        assert "401" in spec["paths"][path][method]["responses"]
