"""Fail set-up when the environment drifts from the lock: every installed distribution must be in
constraints.txt at exactly that version (torch may carry a local build label such as +cpu)."""
from __future__ import annotations

import re
import sys
from importlib.metadata import distributions

IGNORED = {"soaes-toolkit", "pip", "setuptools", "wheel"}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(lock_path: str) -> int:
    lock = {}
    for line in open(lock_path, encoding="utf-8"):
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, ver = line.split("==", 1)
            lock[norm(name)] = ver.strip()
    problems = []
    for d in distributions():
        name = norm(d.metadata["Name"])
        if name in IGNORED:
            continue
        have = d.version
        want = lock.get(name)
        if want is None:
            problems.append(f"{name}=={have} is installed but not in {lock_path}")
        elif have != want and have.split("+", 1)[0] != want:
            problems.append(f"{name}: installed {have}, locked {want}")
    if problems:
        print("lock check failed (add the package to the lock in a deliberate commit, or re-run set-up):",
              *problems, sep="\n  ", file=sys.stderr)
        return 1
    print(f"lock check: {len(lock)} locked packages, environment matches")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "constraints.txt"))
