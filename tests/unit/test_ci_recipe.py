"""The CI recipe in docs/ci/github-actions.yml: valid against GitHub's
workflow schema (check-jsonschema ships it, so no network is needed) and
wired to what the suite writes (JUnit XML, HTML reports, failure dumps)."""

import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "docs" / "ci" / "github-actions.yml"
LINTER = Path(sys.executable).parent / "check-jsonschema"


def lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINTER), "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_workflow_is_valid_for_github_and_the_check_can_fail(tmp_path):
    result = lint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "run-on:"))
    assert lint(broken).returncode != 0


def test_workflow_runs_the_suite_as_root_and_uploads_what_it_writes():
    workflow = YAML(typ="safe").load(WORKFLOW.read_text())
    (job,) = workflow["jobs"].values()
    assert job["runs-on"].startswith("ubuntu-")
    runs = [step for step in job["steps"] if "run" in step]
    (command,) = [step["run"] for step in runs if "./run.sh test" in step["run"]]
    assert command.startswith("sudo ./run.sh test")
    options = dict(part.split("=", 1) for part in command.split() if part.startswith("--"))
    upload = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()"          # the reports matter most when a test failed
    paths = upload["with"]["path"].split()
    for written in (options["--junitxml"], options["--testbed-report"], "test-artifacts/"):
        assert any(written.startswith(p) for p in paths), (written, paths)


def test_readme_points_to_the_recipe():
    assert "docs/ci/github-actions.yml" in (ROOT / "README.md").read_text()
