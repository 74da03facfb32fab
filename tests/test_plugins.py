import pytest

from conftest import run_cli
from toolkit import hookimpl, hookspecs
from toolkit.errors import ToolkitError
from toolkit.plugins import REGISTRATION_HOOKS, Registry, load_registry


class Good:
    @hookimpl
    def register_algorithms(self, register):
        register("mine", "toolkit.random_agent:RandomAgent", "My algorithm\nsecond line ignored")

    @hookimpl
    def register_samplers(self, register):
        register("mysampler", "toolkit.replay:UniformSampler", "My sampler")


class Duplicate:
    @hookimpl
    def register_algorithms(self, register):
        register("mine", "toolkit.random_agent:RandomAgent", "Same name again")


class RaisesHalfway:
    @hookimpl
    def register_samplers(self, register):
        register("half", "toolkit.replay:UniformSampler", "registered before the failure")

    @hookimpl
    def register_algorithms(self, register):
        raise RuntimeError("boom")


class Misspelt:
    @hookimpl
    def register_algoritms(self, register):
        pass


def test_plugin_registrations_and_descriptions():
    registry = Registry()
    registry.add_plugin("good", Good(), "1.0", builtin=False)
    entry = registry.get("algorithm", "mine")
    assert entry.plugin == "good" and entry.description == "My algorithm"
    assert entry.load().__name__ == "RandomAgent"
    info = registry.plugin("good")
    assert info.error is None and info.hooks == ["register_algorithms", "register_samplers"]
    assert info.provides == ["algorithm:mine", "sampler:mysampler"]


def test_a_name_clash_is_shown_on_both_plugins_and_qualified_names_choose():
    registry = Registry()
    registry.add_plugin("good", Good(), "1.0", builtin=False)
    registry.add_plugin("copycat", Duplicate(), "0.1", builtin=False)
    assert registry.plugin("copycat").error is None and registry.plugin("good").error is None
    assert registry.plugin("good").clashes == ["algorithm 'mine' is also registered by 'copycat': use 'good:mine'"]
    assert registry.plugin("copycat").clashes == ["algorithm 'mine' is also registered by 'good': use 'copycat:mine'"]
    with pytest.raises(ToolkitError, match="registered by several plugins \\(good, copycat\\).*'good:mine' or "
                                           "'copycat:mine'.*TOOLKIT_PLUGINS"):
        registry.get("algorithm", "mine")
    assert registry.get("algorithm", "copycat:mine").description == "Same name again"
    assert registry.get("algorithm", "good:mine").plugin == "good"
    assert registry.names("algorithm") == [] and registry.ambiguous("algorithm") == ["mine"]
    assert registry.get("sampler", "mysampler").plugin == "good"  # other names unaffected


def test_a_clash_with_a_plugin_that_then_fails_is_undone():
    class DuplicateThenRaise:
        @hookimpl
        def register_algorithms(self, register):
            register("mine", "toolkit.random_agent:RandomAgent", "Same name")
            raise RuntimeError("late failure")

    registry = Registry()
    registry.add_plugin("good", Good(), "1.0", builtin=False)
    registry.add_plugin("late", DuplicateThenRaise(), "0.1", builtin=False)
    assert registry.get("algorithm", "mine").plugin == "good"


def test_a_plugin_that_raises_is_recorded_and_rolled_back():
    registry = Registry()
    registry.add_plugin("bad", RaisesHalfway(), "1.0", builtin=False)
    registry.add_plugin("good", Good(), "1.0", builtin=False)
    assert "RuntimeError: boom" in registry.plugin("bad").error
    assert "half" not in registry.names("sampler")  # its partial registration is gone
    assert "mine" in registry.names("algorithm")


def test_a_misspelt_hook_is_reported_with_a_suggestion():
    registry = Registry()
    registry.add_plugin("typo", Misspelt(), "1.0", builtin=False)
    assert registry.plugin("typo").error == "unknown hook 'register_algoritms'; did you mean: register_algorithms?"


def test_a_hook_function_without_hookimpl_gets_a_warning():
    class Unmarked:
        def register_algorithms(self, register):
            register("never", "toolkit.random_agent:RandomAgent", "never registered")

        def register_sampler(self, register):
            pass

    registry = Registry()
    registry.add_plugin("forgetful", Unmarked(), "1.0", builtin=False)
    warnings = registry.plugin("forgetful").warnings
    assert warnings[0].startswith("register_algorithms() is not marked @hookimpl and is ignored")
    assert "did you mean register_samplers?" in warnings[1]
    assert "never" not in registry.names("algorithm")


def _write_plugin(tmp_path, name, source):
    """A plugin distribution visible to importlib.metadata through PYTHONPATH (a dist-info folder)."""
    (tmp_path / f"{name}.py").write_text(source)
    dist = tmp_path / f"{name}-0.0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    (dist / "entry_points.txt").write_text(f"[toolkit]\n{name} = {name}\n")
    return {"PYTHONPATH": str(tmp_path)}


def test_import_error_names_the_plugin_file_and_line_and_is_traced(tmp_path):
    env = _write_plugin(tmp_path, "numpy_victim", "import numpy as np\n\nSHAPE = np.zeros(3).reshape(2, 2)\n")
    result = run_cli("plugins", "--json", env={**env, "TOOLKIT_TRACE_PLUGINS": "1"})
    assert result.returncode == 0, result.stderr
    import json

    error = next(p for p in json.loads(result.stdout) if p["name"] == "numpy_victim")["error"]
    assert error.startswith("ValueError: cannot reshape") and error.endswith(f"{tmp_path}/numpy_victim.py:3)")
    assert "numpy_victim: failed to load: ValueError" in result.stderr


def test_a_plugin_calling_sys_exit_at_import_cannot_take_the_cli_down(tmp_path):
    env = _write_plugin(tmp_path, "quitter", "import sys\nsys.exit(3)\n")
    listing = run_cli("list", env=env)
    assert listing.returncode == 0 and "random" in listing.stdout
    assert "quitter 0.0.1: ERROR: SystemExit: 3" in run_cli("plugins", env=env).stdout
    assert run_cli("--help", env=env).returncode == 0


def test_unknown_names_suggest_the_closest():
    registry = load_registry()
    with pytest.raises(ToolkitError, match="unknown algorithm 'randon'; did you mean: random"):
        registry.get("algorithm", "randon")
    with pytest.raises(ToolkitError, match="unknown sampler 'unifrom'; did you mean: uniform"):
        registry.get("sampler", "unifrom")


def test_builtins_register_through_the_same_hooks(monkeypatch):
    monkeypatch.setenv("TOOLKIT_PLUGINS", "")
    registry = load_registry()
    assert [p.name for p in registry.plugins] == ["toolkit", "toolkit.envs"]
    assert registry.names("algorithm") == ["random"] and registry.names("env") == ["atari", "minatar", "rewards", "toy"]
    assert {"uniform"} == set(registry.names("sampler"))


def test_lazy_target_that_fails_to_import_is_a_clear_error():
    class Broken:
        @hookimpl
        def register_algorithms(self, register):
            register("ghost", "no_such_module_xyz:Algo", "Cannot be imported")

    registry = Registry()
    registry.add_plugin("ghostly", Broken(), "1.0", builtin=False)
    with pytest.raises(ToolkitError, match="plugin 'ghostly' cannot load algorithm 'ghost'.*ModuleNotFoundError"):
        registry.load("algorithm", "ghost")


def test_every_hook_is_documented_and_covered_here():
    import inspect

    specs = [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("register_")]
    assert sorted(specs) == sorted([*REGISTRATION_HOOKS, "register_commands"])
    for name in specs:
        assert len(inspect.getdoc(getattr(hookspecs, name))) > 40, f"{name} needs a docstring"


def test_register_commands_adds_a_cli_command():
    import typer
    from typer.testing import CliRunner

    class WithCommand:
        @hookimpl
        def register_commands(self, cli):
            @cli.command()
            def hello(name: str):
                typer.echo(f"hello {name}")

    registry = Registry()
    registry.add_plugin("cmd", WithCommand(), "1.0", builtin=False)
    app = typer.Typer()

    @app.command()
    def other():
        pass

    registry.call_commands(app)
    result = CliRunner().invoke(app, ["hello", "world"])
    assert result.exit_code == 0 and result.output.strip() == "hello world"
