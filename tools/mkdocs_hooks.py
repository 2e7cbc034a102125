"""MkDocs hooks: fill in the parts of the docs that are generated from the code.

A page asks for a generated part with a comment on a line of its own, which
GitHub hides and the site build replaces::

    <!-- generated: settings vault -->          the options a source type declares
    <!-- generated: common-settings -->         on_error, retries, backoff (every source)
    <!-- generated: top-level-settings -->      the config file's top-level keys
    <!-- generated: client-settings aws -->     the [clients.aws] keys its factory reads
    <!-- generated: source-types -->            each built-in backend's source types and page
    <!-- generated: reference-forms -->         each built-in source type's reference form
    <!-- generated: all-client-settings -->     every [clients.KIND] table, with its backend's page
    <!-- generated: cli -->                     every command of the argument parser
    <!-- generated: exit-codes -->              the CLI's exit codes, from its epilog
    <!-- generated: benchmark-table -->         the table of benchmarks/RESULTS.md
    <!-- generated: readme-section TITLE -->    a README section, where it still lives

A line right after the comment that starts ``*The docs site shows`` tells a reader
on GitHub what is missing there; the site replaces it along with the comment.

Tables come from the ``Option`` declarations through the registry and the
backends' own declarations (``CLIENT_KIND``; never a backend module's import
path written here, so adding or moving a backend does not touch this file),
the CLI from ``authchain.cli.build_parser``.
So the docs cannot disagree with the code: change the declaration, and the
page follows.

Links from a page to a file outside ``docs/`` (``../README.md``,
``../examples/...``) work on GitHub; on the site they become the file's path
as text, after checking that the file exists, so a dead one still fails the
build. An unknown generated part, or a part that cannot be generated, fails
the build too.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from authchain._limits import number_text

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # document this checkout, not whatever authchain is installed
    sys.path.insert(0, str(ROOT))

# The line after the comment may say, for readers on GitHub, what the site shows there;
# the site drops it.
_GENERATED = re.compile(
    r"^<!-- generated: (?P<what>[a-z-]+)(?: (?P<argument>[^>]*?))? -->$(?:\n\*The docs site shows .*\*$)?",
    re.MULTILINE,
)
_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]+)\]\((?P<target>[^)\s]+)\)")


class GenerationError(Exception):
    """A generated part cannot be made: the build stops and says which and why."""


# -- tables of options ---------------------------------------------------------


def _type_name(kind: Any) -> str:
    return {str: "string", bool: "boolean", int: "integer", float: "number", list: "array"}.get(
        kind, getattr(kind, "__name__", str(kind))
    )


def _default(option: Any) -> str:
    if option.required:
        return "required"
    if option.default is None:
        return "unset"
    value = option.default
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    elif isinstance(value, str):
        text = f'"{value}"'
    else:
        text = str(value)
    return f"`{text}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def options_table(options: Iterable[Any]) -> str:
    """A Markdown table of ``Option`` declarations: key, type, default, meaning."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for option in options:
        meaning = option.help or ""
        if option.choices:
            meaning += " (one of " + ", ".join(f"`{choice}`" for choice in option.choices) + ")"
        low, high = option.minimum, option.maximum
        if low is not None and high is not None:
            meaning += f" ({number_text(low)} to {number_text(high)})"
        elif low is not None:
            meaning += f" (at least {number_text(low)})"
        elif high is not None:
            meaning += f" (at most {number_text(high)})"
        kind = _type_name(option.kind)
        rows.append(f"| `{option.name}` | {kind} | {_default(option)} | {_cell(meaning)} |")
    if len(rows) == 2:
        return "No settings of its own."
    return "\n".join(rows)


def source_settings(type_name: str) -> str:
    from authchain._registry import load_source_class

    cls = load_source_class(type_name)
    return options_table(cls.options)


def common_settings(_: str = "") -> str:
    """The settings every source takes: what a built-in's ``all_options()`` adds to its own."""
    from authchain._registry import load_source_class

    cls = load_source_class("env")
    own = {option.name for option in cls.options}
    return options_table(option for option in cls.all_options() if option.name not in own)


def top_level_settings(_: str = "") -> str:
    from authchain.config import TOP_LEVEL

    return options_table(TOP_LEVEL.values())


def client_options(kind: str) -> tuple[Any, ...]:
    """The options ``[clients.KIND]`` accepts, as the module of the backend that declares
    ``kind`` (its ``CLIENT_KIND``) lists them."""
    import importlib

    from authchain._declarations import client_kinds

    kinds = client_kinds()
    if kind not in kinds:
        raise GenerationError(f"unknown client kind {kind!r}; known: {', '.join(kinds)}")
    module = importlib.import_module(kinds[kind])
    for attribute in ("OPTIONS", "CLIENT_OPTIONS"):
        if isinstance(getattr(module, attribute, None), tuple):
            return tuple(getattr(module, attribute))
    for attribute in ("_options", "client_options"):
        if callable(getattr(module, attribute, None)):
            return tuple(getattr(module, attribute)())
    raise GenerationError(f"{module.__name__} declares no client options")


def client_settings(kind: str) -> str:
    return options_table(client_options(kind))


# -- the backends ------------------------------------------------------------------


def _backend_name(where: str) -> str:
    """The name (``aws``: its page is ``docs/backends/aws.md``) of the built-in backend package
    that a source type's ``module:Class``, or a module, belongs to."""
    from authchain._declarations import package_of

    return package_of(where).rpartition(".")[2]


def _backends() -> list[tuple[str, list[str]]]:
    """authchain's own backend packages (by name) with their source types, in chain order
    (the lowest rank among their types, then the name)."""
    from authchain._registry import builtin_types, load_source_class

    packages: dict[str, list[str]] = {}
    for type_name, target in builtin_types().items():
        packages.setdefault(_backend_name(target), []).append(type_name)
    ranked = sorted(
        packages.items(), key=lambda item: (min(load_source_class(t).rank for t in item[1]), item[0])
    )
    return [(name, sorted(types)) for name, types in ranked]


def _backend_page(name: str) -> str:
    """A link to backend ``name``'s page, ``docs/backends/<name>.md``, titled with its heading,
    from a page at the top of ``docs/``. A backend without a page fails the build."""
    page = ROOT / "docs" / "backends" / f"{name}.md"
    if not page.is_file():
        raise GenerationError(f"backend {name!r} has no page docs/backends/{name}.md")
    lines = page.read_text(encoding="utf-8").splitlines()
    title = next((line[2:].strip() for line in lines if line.startswith("# ")), name)
    return f"[{title}](backends/{name}.md)"


def source_types(_: str = "") -> str:
    """Each built-in backend's source types and the page that lists their settings."""
    rows = ["| type | page |", "|---|---|"]
    for name, types in _backends():
        rows.append(f"| {', '.join(f'`{type_name}`' for type_name in types)} | {_backend_page(name)} |")
    return "\n".join(rows)


def reference_forms(_: str = "") -> str:
    """Each built-in source type's reference form, as its ``reference_grammar`` declares it
    (the form a malformed reference's error shows), with its backend's page."""
    from authchain._registry import load_source_class

    rows = ["| reference | backend |", "|---|---|"]
    for name, types in _backends():
        for type_name in types:
            form = load_source_class(type_name).reference_grammar.form
            shown = " or ".join(f"`{part}`" for part in form.split(" or "))
            rows.append(f"| {shown} | {_backend_page(name)} |")
    return "\n".join(rows)


def all_client_settings(_: str = "") -> str:
    """Every ``[clients.KIND]`` a backend declares (``CLIENT_KIND``), each with its table."""
    from authchain._declarations import client_kinds

    parts = []
    for kind, module in client_kinds().items():
        page = _backend_page(_backend_name(module))
        parts += [f"`[clients.{kind}]` ({page}):", "", client_settings(kind), ""]
    return "\n".join(parts).strip()


# -- the command line --------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _helps(parser: argparse.ArgumentParser) -> dict[str, str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {choice.dest: choice.help or "" for choice in action._choices_actions}
    return {}


_GLOBAL = ("--config", "--profile", "--debug", "--debug-sdk", "--help")


def _arguments_table(parser: argparse.ArgumentParser, *, skip: Iterable[str] = ()) -> str:
    rows = ["| argument | meaning |", "|---|---|"]
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        if set(action.option_strings) & set(skip):
            continue
        if action.option_strings:
            name = ", ".join(action.option_strings)
            if action.nargs != 0:
                name += f" {action.metavar or action.dest.upper()}"
                if action.nargs in ("+", "*"):
                    name += " ..."
        else:
            name = str(action.metavar or action.dest.upper())
            if action.nargs == "?":
                name = f"[{name}]"
        rows.append(f"| `{name}` | {_cell(action.help or '')} |")
    return "\n".join(rows) if len(rows) > 2 else ""


def _usage(parser: argparse.ArgumentParser) -> str:
    return " ".join(parser.format_usage().replace("usage:", "", 1).split())


def cli_reference(_: str = "") -> str:
    """Every command of ``authchain``: usage, what it does, its arguments; global options first."""
    from authchain.cli import build_parser

    parser = build_parser()
    parts = [
        "### Global options",
        "",
        "Every command takes these, before or after its name:",
        "",
        _arguments_table(parser, skip=("--help",)),
    ]

    def walk(current: argparse.ArgumentParser, path: list[str], help_text: str) -> None:
        commands = _subcommands(current)
        if path:
            title = " ".join(["authchain", *path])
            parts.extend(["", f"### `{title}`", "", (help_text or "").capitalize() + "."])
            if current.description:
                parts.extend(["", current.description])
            if not commands:
                parts.extend(["", "```text", _usage(current), "```"])
                table = _arguments_table(current, skip=_GLOBAL)
                if table:
                    parts.extend(["", table])
        helps = _helps(current)
        for name, sub in commands.items():
            walk(sub, [*path, name], helps.get(name, ""))

    walk(parser, [], "")
    return "\n".join(parts)


def exit_codes(_: str = "") -> str:
    """The exit codes the parser's epilog lists (``Exit codes: 0 ok, 1 not found, ...``)."""
    from authchain.cli import build_parser

    epilog = build_parser().epilog or ""
    match = re.search(r"Exit codes: (?P<codes>.*?)\.?$", epilog)
    if not match:
        raise GenerationError("the parser's epilog lists no exit codes")
    rows = ["| exit code | meaning |", "|---|---|"]
    for item in match.group("codes").split(","):
        code, _, meaning = item.strip().partition(" ")
        rows.append(f"| {code} | {meaning} |")
    return "\n".join(rows)


# -- text kept elsewhere in the repository --------------------------------------------


def benchmark_table(_: str = "") -> str:
    text = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- bench:table:start -->\n(?P<table>.*?)<!-- bench:table:end -->", text, re.DOTALL)
    if not match:
        raise GenerationError("benchmarks/RESULTS.md has no bench:table markers")
    return match.group("table").strip()


def readme_section(title: str) -> str:
    """A ``##`` section of the README (its text, headings one level up, links made relative
    to ``docs/``), or a pointer to the README when the section is not there (yet)."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == f"## {title}"), None)
    if start is None:
        return f'The section "{title}" is in the repository\'s `README.md`.'
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    # The section's "###" headings become the page's "##" (the page title stands for its "##").
    body = [line[1:] if line.startswith("###") else line for line in lines[start + 1 : end]]
    return _LINK.sub(_from_docs, "\n".join(body).strip())


def _from_docs(match: re.Match[str]) -> str:
    """A link written relative to the README, rewritten relative to a page in ``docs/``."""
    target = match.group("target")
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
        return match.group(0)
    path, _, anchor = target.partition("#")
    moved = os.path.relpath(ROOT / path, ROOT / "docs").replace(os.sep, "/")
    return f"[{match.group('text')}]({moved}{'#' + anchor if anchor else ''})"


GENERATORS: dict[str, Callable[[str], str]] = {
    "settings": source_settings,
    "common-settings": common_settings,
    "top-level-settings": top_level_settings,
    "client-settings": client_settings,
    "source-types": source_types,
    "reference-forms": reference_forms,
    "all-client-settings": all_client_settings,
    "cli": cli_reference,
    "exit-codes": exit_codes,
    "benchmark-table": benchmark_table,
    "readme-section": readme_section,
}


def fill(markdown: str, where: str = "") -> str:
    """Replace every ``<!-- generated: ... -->`` line of ``markdown`` by what it names."""

    def replace(match: re.Match[str]) -> str:
        what, argument = match.group("what"), (match.group("argument") or "").strip()
        if what not in GENERATORS:
            raise GenerationError(f"{where}: unknown generated part {what!r}; known: {', '.join(GENERATORS)}")
        try:
            return GENERATORS[what](argument)
        except GenerationError as error:
            raise GenerationError(f"{where}: generated: {what} {argument}: {error}") from None

    return _GENERATED.sub(replace, markdown)


def outside_links(markdown: str, page: Path, docs_dir: Path) -> str:
    """Links to files outside ``docs_dir`` become the file's path as text; a missing file raises."""

    def replace(match: re.Match[str]) -> str:
        target = match.group("target")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            return match.group(0)
        path = (page.parent / target.split("#", 1)[0]).resolve()
        if path.is_relative_to(docs_dir.resolve()):
            return match.group(0)  # MkDocs checks links between pages itself
        if not path.exists():
            raise GenerationError(f"{page.name}: dead link to {target}")
        shown = path.relative_to(ROOT).as_posix()
        return f"{match.group('text')} (`{shown}` in the repository)"

    return _LINK.sub(replace, markdown)


def backend_nav() -> list[dict[str, str]]:
    """The "Backends" section of the site's navigation: each built-in backend's page, in chain
    order, titled by its heading (Markdown marks dropped)."""
    entries = []
    for name, _ in _backends():
        title = re.match(r"\[(?P<title>.*)\]\(", _backend_page(name))
        entries.append({(title.group("title") if title else name).replace("`", ""): f"backends/{name}.md"})
    return entries


def on_config(config: Any) -> Any:
    """Fill the empty "Backends" section of ``nav`` in ``mkdocs.yml`` (a new backend's page
    joins the navigation without editing it)."""
    for item in config["nav"] or []:
        if isinstance(item, dict) and item.get("Backends") == []:
            item["Backends"] = backend_nav()
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    from mkdocs.exceptions import PluginError

    source = Path(page.file.abs_src_path)
    try:
        return outside_links(fill(markdown, page.file.src_uri), source, Path(config["docs_dir"]))
    except (GenerationError, ImportError) as error:
        raise PluginError(str(error)) from error
