"""The rasa-gpt command, run as a user runs it."""

import subprocess
import sys


def run_cli(*args: str, env=None):
    return subprocess.run(
        [sys.executable, "-m", "rasa_gpt_components.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_models_list_shows_the_default_model_unprepared(tmp_path):
    import os

    env = dict(os.environ, RASA_GPT_CACHE=str(tmp_path))
    result = run_cli("models", "list", env=env)
    assert result.returncode == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if l.startswith("smollm2-135m-instruct"))
    assert "(default)" in line and "Apache-2.0" in line
    assert line.split()[4] == "no"  # NAME (default) LICENSE SOURCE PREPARED
    assert str(tmp_path) in result.stdout


def test_prepare_refuses_an_unknown_name(tmp_path):
    import os

    env = dict(os.environ, RASA_GPT_CACHE=str(tmp_path))
    result = run_cli("models", "prepare", "no-such-model", env=env)
    assert result.returncode == 2
    assert "neither a known model" in result.stderr
    assert "Traceback" not in result.stderr
