"""Third-party plugins as separate pip packages: installed into this venv, then removed."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT, run_cli


def pip(*args):
    result = subprocess.run([sys.executable, "-m", "pip", "-q", *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def installed():
    """Install example plugins for one test; always uninstall afterwards."""
    names = []

    def install(folder, dist):
        pip("install", "--no-deps", "--no-build-isolation", "-e", str(ROOT / "examples" / folder))
        names.append(dist)

    yield install
    for dist in names:
        pip("uninstall", "-y", dist)


def test_installed_plugin_registers_an_algorithm_and_a_sampler_then_uninstall_removes_them(installed, tmp_path):
    assert "tabular-q" not in run_cli("list").stdout
    installed("toolkit-tabular", "toolkit-tabular")
    listing = run_cli("list").stdout
    assert "tabular-q" in listing and "recent" in listing

    run_dir = tmp_path / "tabular"
    result = run_cli("train", "tabular-q", "--env", "toolkit/Corridor-v0", "--steps", "3000", "--replay", "recent",
                     "--eval-every", "0", "--eval-episodes", "3", "--run-dir", str(run_dir), "--no-progress")
    assert result.returncode == 0, result.stderr
    evaluation = json.loads(run_cli("eval", str(run_dir), "--json").stdout)
    assert evaluation["mean_return"] == 1.0  # learned to walk to the goal

    bad = run_cli("train", "tabular-q", "--env", "toolkit/Corridor-v0", "--replay", "unifrom")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: unknown sampler 'unifrom'; did you mean: uniform?"

    pinned = run_cli("list", env={"TOOLKIT_PLUGINS": ""})
    assert "tabular-q" not in pinned.stdout and "random" in pinned.stdout

    pip("uninstall", "-y", "toolkit-tabular")
    assert "tabular-q" not in run_cli("list").stdout
    gone = run_cli("train", "tabular-q", "--env", "toolkit/Corridor-v0")
    assert gone.returncode == 2 and "unknown algorithm 'tabular-q'" in gone.stderr
    orphan = run_cli("eval", str(run_dir))  # the checkpoint says which plugin wrote it
    assert orphan.returncode == 2
    assert "written by algorithm 'tabular-q' of plugin 'tabular' 0.1.0, which is not installed" in orphan.stderr


def test_plugin_that_raises_on_import_is_reported_and_harmless(installed, tmp_path):
    installed("toolkit-broken", "toolkit-broken")
    report = run_cli("plugins", "--json")
    assert report.returncode == 0, report.stderr
    broken = next(p for p in json.loads(report.stdout) if p["name"] == "broken")
    assert broken["error"].startswith("RuntimeError: toolkit-broken fails on purpose")
    assert "broken 0.0.1: ERROR: RuntimeError" in run_cli("plugins").stdout
    result = run_cli("train", "random", "--env", "CartPole-v1", "--steps", "300", "--eval-episodes", "1",
                     "--run-dir", str(tmp_path / "ok"), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ok" / "checkpoints").is_dir()


def test_plugin_that_reregisters_dqn_breaks_nothing_else(installed, tmp_path):
    installed("toolkit-clash", "toolkit-clash")
    listing = run_cli("list")
    assert listing.returncode == 0, listing.stderr
    assert "dqn            registered by several plugins: use clash:dqn or dqn:dqn" in listing.stdout

    plugins = run_cli("plugins").stdout
    assert "CLASH: algorithm 'dqn' is also registered by 'clash': use 'dqn:dqn'" in plugins
    assert "CLASH: algorithm 'dqn' is also registered by 'dqn': use 'clash:dqn'" in plugins

    ok = run_cli("train", "random", "--env", "CartPole-v1", "--steps", "200", "--eval-episodes", "1",
                 "--run-dir", str(tmp_path / "random"), "--no-progress")
    assert ok.returncode == 0, ok.stderr

    ambiguous = run_cli("train", "dqn", "--env", "CartPole-v1", "--run-dir", str(tmp_path / "no"))
    assert ambiguous.returncode == 2 and len(ambiguous.stderr.strip().splitlines()) == 1
    assert "'clash:dqn' or 'dqn:dqn'" in ambiguous.stderr and "TOOLKIT_PLUGINS" in ambiguous.stderr
    assert not (tmp_path / "no").exists()

    chosen = run_cli("train", "dqn:dqn", "--env", "CartPole-v1", "--steps", "300", "--learning-starts", "100",
                     "--eval-episodes", "1", "--run-dir", str(tmp_path / "qualified"), "--no-progress")
    assert chosen.returncode == 0, chosen.stderr
    assert 'algorithm = "dqn:dqn"' in (tmp_path / "qualified" / "config.toml").read_text()
    evaluation = run_cli("eval", str(tmp_path / "qualified"), "--json")
    assert evaluation.returncode == 0 and json.loads(evaluation.stdout)["algorithm"] == "dqn:dqn"

    pinned = run_cli("list", env={"TOOLKIT_PLUGINS": "dqn"})
    assert "registered by several plugins" not in pinned.stdout and "Deep Q" in pinned.stdout
