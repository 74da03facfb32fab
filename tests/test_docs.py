"""The plugin author's guide is executable: every ```python block of docs/plugins.md runs,
in order, in one namespace, in a temporary directory."""

import re

from conftest import ROOT


def test_plugin_guide_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = (ROOT / "docs" / "plugins.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 6
    namespace: dict = {"__name__": "plugin_guide"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"docs/plugins.md block {number}", "exec"), namespace)


def test_plugin_guide_covers_every_hook_and_context_field():
    import dataclasses

    from toolkit import hookspecs
    from toolkit.interfaces import DataContext, EnvContext, EnvSpec

    text = (ROOT / "docs" / "plugins.md").read_text()
    hooks = [name for name in dir(hookspecs) if name.startswith("register_")]
    missing = [h for h in hooks if f"`{h}`" not in text]
    for record in (EnvContext, DataContext, EnvSpec):
        missing += [f"{record.__name__}.{f.name}" for f in dataclasses.fields(record) if f.name not in text]
    assert not missing, missing
