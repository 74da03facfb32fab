"""Third-party plugins as separate pip packages: installed into a venv of the test's own, layered over
this one, then removed."""

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import ROOT, run_cli


@pytest.fixture
def plugin_python(tmp_path):
    """A venv of its own that sees this venv's packages: what a test installs there is invisible to the
    tests running beside it (under xdist, a plugin that re-registers 'dqn' would break their runs)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip()
    # addsitedir (not a bare path) so this venv's own .pth files, the editable installs among them, apply too
    parent = sysconfig.get_paths()["purelib"]
    (Path(site_packages) / "parent_venv.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    return str(python)


@pytest.fixture
def pip(plugin_python):
    def run_pip(*args):
        result = subprocess.run([plugin_python, "-m", "pip", "-q", *args], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    return run_pip


@pytest.fixture
def installed(pip):
    """Install example plugins into the test's own venv for one test; always uninstall afterwards."""
    names = []

    def install(folder, dist):
        pip("install", "--no-deps", "--no-build-isolation", "-e", str(ROOT / "examples" / folder))
        names.append(dist)

    yield install
    for dist in names:
        pip("uninstall", "-y", dist)


@pytest.fixture
def toolkit(plugin_python):
    """`toolkit ARGS` run by the test's own venv."""
    return lambda *args, **kwargs: run_cli(*args, python=plugin_python, **kwargs)


def test_installed_plugin_registers_an_algorithm_and_a_sampler_then_uninstall_removes_them(installed, pip, toolkit,
                                                                                            tmp_path):
    assert "tabular-q" not in toolkit("list").stdout
    installed("toolkit-tabular", "toolkit-tabular")
    listing = toolkit("list").stdout
    assert "tabular-q" in listing and "recent" in listing
    assert "tabular-q" not in run_cli("list").stdout  # the project's venv, which other tests share, never sees it

    run_dir = tmp_path / "tabular"
    result = toolkit("train", "tabular-q", "--env", "toolkit/Corridor-v0", "--steps", "3000", "--replay", "recent",
                     "--eval-every", "0", "--eval-episodes", "3", "--run-dir", str(run_dir), "--no-progress")
    assert result.returncode == 0, result.stderr
    evaluation = json.loads(toolkit("eval", str(run_dir), "--json").stdout)
    assert evaluation["mean_return"] == 1.0  # learned to walk to the goal

    bad = toolkit("train", "tabular-q", "--env", "toolkit/Corridor-v0", "--replay", "unifrom")
    assert bad.returncode == 2 and bad.stderr.strip() == "error: unknown sampler 'unifrom'; did you mean: uniform?"

    pinned = toolkit("list", env={"TOOLKIT_PLUGINS": ""})
    assert "tabular-q" not in pinned.stdout and "random" in pinned.stdout

    pip("uninstall", "-y", "toolkit-tabular")
    assert "tabular-q" not in toolkit("list").stdout
    gone = toolkit("train", "tabular-q", "--env", "toolkit/Corridor-v0")
    assert gone.returncode == 2 and "unknown algorithm 'tabular-q'" in gone.stderr
    orphan = toolkit("eval", str(run_dir))  # the checkpoint says which plugin wrote it
    assert orphan.returncode == 2
    assert "written by algorithm 'tabular-q' of plugin 'tabular' 0.1.0, which is not installed" in orphan.stderr


def test_plugin_that_raises_on_import_is_reported_and_harmless(installed, toolkit, tmp_path):
    installed("toolkit-broken", "toolkit-broken")
    report = toolkit("plugins", "--json")
    assert report.returncode == 0, report.stderr
    broken = next(p for p in json.loads(report.stdout) if p["name"] == "broken")
    assert broken["error"].startswith("RuntimeError: toolkit-broken fails on purpose")
    assert "broken 0.0.1: ERROR: RuntimeError" in toolkit("plugins").stdout
    result = toolkit("train", "random", "--env", "CartPole-v1", "--steps", "300", "--eval-episodes", "1",
                     "--run-dir", str(tmp_path / "ok"), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "ok" / "checkpoints").is_dir()


def test_plugin_that_reregisters_dqn_breaks_nothing_else(installed, toolkit, tmp_path):
    installed("toolkit-clash", "toolkit-clash")
    listing = toolkit("list")
    assert listing.returncode == 0, listing.stderr
    assert "dqn            registered by several plugins: use clash:dqn or dqn:dqn" in listing.stdout

    plugins = toolkit("plugins").stdout
    assert "CLASH: algorithm 'dqn' is also registered by 'clash': use 'dqn:dqn'" in plugins
    assert "CLASH: algorithm 'dqn' is also registered by 'dqn': use 'clash:dqn'" in plugins

    ok = toolkit("train", "random", "--env", "CartPole-v1", "--steps", "200", "--eval-episodes", "1",
                 "--run-dir", str(tmp_path / "random"), "--no-progress")
    assert ok.returncode == 0, ok.stderr

    ambiguous = toolkit("train", "dqn", "--env", "CartPole-v1", "--run-dir", str(tmp_path / "no"))
    assert ambiguous.returncode == 2 and len(ambiguous.stderr.strip().splitlines()) == 1
    assert "'clash:dqn' or 'dqn:dqn'" in ambiguous.stderr and "TOOLKIT_PLUGINS" in ambiguous.stderr
    assert not (tmp_path / "no").exists()

    chosen = toolkit("train", "dqn:dqn", "--env", "CartPole-v1", "--steps", "300", "--learning-starts", "100",
                     "--eval-episodes", "1", "--run-dir", str(tmp_path / "qualified"), "--no-progress")
    assert chosen.returncode == 0, chosen.stderr
    assert 'algorithm = "dqn:dqn"' in (tmp_path / "qualified" / "config.toml").read_text()
    evaluation = toolkit("eval", str(tmp_path / "qualified"), "--json")
    assert evaluation.returncode == 0 and json.loads(evaluation.stdout)["algorithm"] == "dqn:dqn"

    pinned = toolkit("list", env={"TOOLKIT_PLUGINS": "dqn"})
    assert "registered by several plugins" not in pinned.stdout and "Deep Q" in pinned.stdout
