import pytest

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


def test_duplicate_names_are_an_error_naming_both_plugins():
    registry = Registry()
    registry.add_plugin("good", Good(), "1.0", builtin=False)
    registry.add_plugin("copycat", Duplicate(), "0.1", builtin=False)
    assert "also registered by plugin 'good'" in registry.plugin("copycat").error
    with pytest.raises(ToolkitError, match="registered by two plugins, 'good' and 'copycat'"):
        registry.get("algorithm", "mine")
    assert registry.get("sampler", "mysampler").plugin == "good"  # other names unaffected


def test_a_plugin_that_raises_is_recorded_and_rolled_back():
    registry = Registry()
    registry.add_plugin("bad", RaisesHalfway(), "1.0", builtin=False)
    registry.add_plugin("good", Good(), "1.0", builtin=False)
    assert "RuntimeError: boom" in registry.plugin("bad").error
    assert "half" not in registry.names("sampler")  # its partial registration is gone
    assert "mine" in registry.names("algorithm")


def test_a_misspelt_hook_is_reported():
    registry = Registry()
    registry.add_plugin("typo", Misspelt(), "1.0", builtin=False)
    assert "register_algoritms" in registry.plugin("typo").error


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
    assert registry.names("algorithm") == ["random"] and registry.names("env") == ["atari", "toy"]
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
