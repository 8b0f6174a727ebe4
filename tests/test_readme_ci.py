"""The README cannot lie about CI: .ci/run runs the README's test command, and the lock covers the
environment the suite runs in."""
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"## On a fresh machine: two commands\n\n```bash\n(.*?)```", readme, re.S).group(1)
    cmds = [ln.split("#", 1)[0].strip() for ln in block.splitlines() if ln.strip()]
    assert cmds == ["make demo", "make test"]
    ci = [ln.strip() for ln in (REPO / ".ci" / "run").read_text().splitlines()
          if ln.strip() and not ln.lstrip().startswith("#")]
    assert "make test" in ci


def test_environment_matches_the_lock():
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "check_lock.py"), str(REPO / "constraints.txt")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
