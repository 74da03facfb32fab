"""mkdocs hooks: the pages that are generated rather than written.

* ``commands/<name>.md``: each CLI command's ``--help`` as the installed toolkit prints it at
  build time, followed by a real session with it (``docs/sessions.json``, captured by
  ``python docs/capture_sessions.py``);
* ``bundled/<plugin>.md``: each bundled plugin's README.md with its figures;
* links in any page to files of the repository outside the docs (a plugin's source file, the
  example plugin) become plain code text, since the site does not carry those files; a link
  to something that exists nowhere is left alone, so the strict build reports it.
"""

from __future__ import annotations

import contextlib
import io
import json
import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)")
IMAGE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


def help_text(argv: list[str]) -> str:
    from toolkit.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(argv)
    return out.getvalue().rstrip()


def command_names() -> list[str]:
    import typer.main

    from toolkit.cli import app
    from toolkit.plugins import get_registry

    get_registry().call_commands(app)
    return list(typer.main.get_command(app).commands)


def command_page(name: str, sessions: dict) -> str:
    lines = [f"# toolkit {name}", "", "```text", f"$ toolkit {name} --help", help_text([name, "--help"]), "```", ""]
    for session in sessions.get(name, []):
        lines += [session.get("title", "Example"), "", "```text"]
        for command, output in session["commands"]:
            lines += [f"$ {command}", output.rstrip()] if output.strip() else [f"$ {command}"]
        lines += ["```", ""]
    return "\n".join(lines)


def commands_index(names: list[str]) -> str:
    rows = [f"| [`toolkit {name}`]({name}.md) |" for name in names]
    return "\n".join(["# Commands", "", "Every command's page shows its `--help` as this toolkit prints it and a "
                      "real session with it.", "", "| command |", "|---|", *rows, ""])


def plugin_page(name: str, files, config) -> str:
    readme = (ROOT / "plugins" / name / "README.md").read_text()

    def image(match: re.Match) -> str:
        alt, target = match.groups()
        source = ROOT / "plugins" / name / target
        if target.startswith("http") or not source.is_file():
            return match.group(0)
        uri = f"bundled/{name}/{target}"
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, content=source.read_bytes()))
        return f"![{alt}]({name}/{target})"

    return IMAGE.sub(image, readme)


def on_files(files, config):
    sessions_path = ROOT / "docs" / "sessions.json"
    sessions = json.loads(sessions_path.read_text()) if sessions_path.is_file() else {}
    names = command_names()
    files.append(File.generated(config, "commands/index.md", content=commands_index(names)))
    for name in names:
        files.append(File.generated(config, f"commands/{name}.md", content=command_page(name, sessions)))
    for readme in sorted((ROOT / "plugins").glob("*/README.md")):
        name = readme.parent.name
        files.append(File.generated(config, f"bundled/{name}.md", content=plugin_page(name, files, config)))
    return files


def on_page_markdown(markdown, page, config, files):
    """Links to repository files the site does not carry become code text."""
    source = _repository_path(page.file.src_uri)

    def link(match: re.Match) -> str:
        text, target = match.groups()
        path = target.split("#")[0]
        if not path or re.match(r"^[a-z]+:", path) or files.get_file_from_path(
                posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), path))) is not None:
            return match.group(0)
        in_repository = (source.parent / path).resolve()
        if in_repository.exists() and ROOT in in_repository.parents:
            shown = in_repository.relative_to(ROOT).as_posix()
            return text if text.strip("`") == shown else f"{text} (`{shown}`)"
        return match.group(0)

    return LINK.sub(link, markdown)


def _repository_path(src_uri: str) -> Path:
    """Where a page's text lives in the repository (a generated plugin page: its README)."""
    if src_uri.startswith("bundled/") and src_uri.endswith(".md"):
        return ROOT / "plugins" / Path(src_uri).stem / "README.md"
    return ROOT / "docs" / src_uri
