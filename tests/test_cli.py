import subprocess
import sys


def test_soaes_help_lists_every_group_with_a_description():
    out = subprocess.run([sys.executable, "-m", "soaes.cli", "--help"], capture_output=True, text=True,
                         env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    for group in ["curate", "filters", "synth", "review", "train", "distill", "manifest", "eval", "demo"]:
        line = next((l for l in out.stdout.splitlines() if l.strip("│ ").startswith(group + " ")), None)
        assert line is not None, f"{group} missing from soaes --help"
        assert len(line.strip("│ ").split(None, 1)) == 2, f"{group} has no description"


def test_importing_the_cli_is_light():
    code = "import sys, soaes.cli; heavy = [m for m in ('torch', 'transformers', 'datatrove', 'ray', 'deepspeed') if m in sys.modules]; print(heavy)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"heavy modules imported by the CLI: {out.stdout}"
