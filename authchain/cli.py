"""The ``authchain`` command: parsing, output and exit codes; no resolution logic.

Exit codes: 0 ok, 1 not found, 2 usage or config error, 3 backend error
(``run`` passes the child's own exit code through). Errors print one
message to stderr and no traceback unless ``--debug``. Nothing prints a
secret value unless ``--reveal`` asks for it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, NoReturn

from authchain import masking
from authchain._chain import Chain
from authchain._scrub import scrubbed
from authchain.errors import AuthChainError, ConfigError, SecretNotFound
from authchain.values import MASK

__all__ = ["main"]

# The chains this call of main() made, closed when it returns (a ContextVar:
# two threads may each call main()).
_CHAINS: ContextVar[list[Chain]] = ContextVar("authchain_cli_chains")

EXIT_OK, EXIT_NOT_FOUND, EXIT_CONFIG, EXIT_BACKEND = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_CONFIG, f"authchain: error: {message}\n")

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse makes a formatter for every add_argument, and without a width the
        # formatter imports shutil (with bz2, lzma, zlib: a few ms of every CLI start)
        # for shutil.get_terminal_size; this is the same answer without it.
        return self.formatter_class(prog=self.prog, width=_terminal_width() - 2)  # type: ignore[call-arg]


def _terminal_width() -> int:
    """``shutil.get_terminal_size().columns``: ``COLUMNS``, else the terminal's, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="config file (default: AUTHCHAIN_CONFIG or authchain.toml found upwards)",
    )
    common.add_argument(
        "--profile",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="profile to apply (default: AUTHCHAIN_PROFILE)",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="debug logging and tracebacks (values stay masked; SDK wire logs stay off)",
    )
    common.add_argument(
        "--debug-sdk",
        action="store_true",
        default=argparse.SUPPRESS,
        help="--debug plus the SDKs' own DEBUG logs (botocore, urllib3, grpc, hvac...; "
        "also AUTHCHAIN_DEBUG_SDK=1); still masked",
    )

    parser = _Parser(
        prog="authchain",
        description="Resolve secrets through the configured chain of sources.",
        epilog="Exit codes: 0 ok, 1 not found, 2 usage or config error (check: a source misconfigured), "
        "3 backend error (check: a source unreachable or unauthenticated).",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    resolve = commands.add_parser("resolve", parents=[common], help="resolve one name or reference")
    resolve.add_argument("name", help="a name (DB_PASSWORD) or a reference (env://X, vault://...)")
    resolve.add_argument("--reveal", action="store_true", help="print the real value (default: masked)")
    resolve.add_argument("--json", action="store_true", help="print a JSON object")

    explain = commands.add_parser(
        "explain", parents=[common], help="ask every source and show who has the name"
    )
    explain.add_argument("name", help="a name or a reference, as for resolve")
    explain.add_argument("--json", action="store_true", help="print a JSON object")

    run = commands.add_parser(
        "run",
        parents=[common],
        help="run a command with references in its environment resolved",
        description="Start CMD with every environment variable whose value is a secret "
        "reference (FOO=vault://...) replaced by the resolved value (with --only: the "
        "variables it names). References from the environment read files only inside the "
        "working directory. Resolved values are masked in the command's output unless --no-masking.",
    )
    run.add_argument("--no-masking", action="store_true", help="pass the command's output through unchanged")
    run.add_argument(
        "--scrub",
        metavar="NAME",
        nargs="+",
        action="extend",
        default=[],
        help="remove these variables (bootstrap credentials) from the command's environment "
        "(names or fnmatch patterns such as 'VAULT_*', as for --only)",
    )
    run.add_argument(
        "--only",
        metavar="NAME",
        nargs="+",
        action="extend",
        default=[],
        help="resolve only these variables (names or fnmatch patterns such as 'DB_*'; "
        "default: [run] only in the config, else every reference); recommended in CI",
    )
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS", help="the command to run")

    check = commands.add_parser(
        "check", parents=[common], help="report whether each configured source works here"
    )
    check.add_argument("--json", action="store_true", help="print a JSON object")

    config = commands.add_parser(
        "config", parents=[common], help="show the effective configuration and where each setting came from"
    )
    config.add_argument("--json", action="store_true", help="print a JSON object")

    trust = commands.add_parser(
        "trust",
        help="let a config file found upwards name where credentials go (like direnv allow)",
        description="A config file found by searching upwards from the working directory may "
        "configure the chain, but sources whose endpoint (url, endpoint_url, endpoint) it names "
        "get no credentials until you trust it. This records the file's path and SHA-256 in "
        "$XDG_CONFIG_HOME/authchain/trusted.json; any change to the file needs trusting again.",
    )
    trust.add_argument(
        "path", nargs="?", metavar="PATH", help="the config file (default: the one found from here upwards)"
    )
    trust.add_argument(
        "--revoke",
        action="store_true",
        help="forget the file instead of trusting it (exit 1 if it was not trusted: nothing changed)",
    )

    keyring = commands.add_parser(
        "keyring",
        parents=[common],
        help="store or delete an entry in the OS keyring",
        description="Uses the backend of the configured keyring source, else keyring's own choice. "
        "The value is read from a no-echo prompt (or from stdin when it is not a terminal), "
        "never from the command line, where it would land in shell history and ps.",
    )
    actions = keyring.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser, required=True)
    for action, text in (("set", "store a value"), ("delete", "delete an entry")):
        item = actions.add_parser(action, parents=[common], help=text)
        item.add_argument("service", metavar="SERVICE", help="the keyring service (the source's `service`)")
        item.add_argument("username", metavar="NAME", help="the secret name (keyring's username)")
        # Swallowed so that a value typed after NAME is refused without being echoed
        # back, as argparse's "unrecognized arguments: ..." would.
        item.add_argument("stray", nargs="*", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``authchain`` console script; returns the exit code.

    Called in-process (a program embedding the CLI), it leaves one thing
    changed, on purpose: log masking stays installed process-wide, so a value
    the command resolved never shows in the program's later log lines (as
    after ``authchain.install_log_masking()``). What ``--debug`` turned on
    (a root handler, the root and SDK loggers' levels) is put back and the
    chains the command made are closed before it returns. docs/cli.md says so.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    # Every log record this process writes (an SDK's included) is masked, at
    # the point of output: no handler of the caller's is touched.
    masking._install_process_wide()
    debug_sdk = getattr(args, "debug_sdk", False)
    debug = getattr(args, "debug", False) or debug_sdk
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_CONFIG
    handler = _COMMANDS[args.command]
    token = _CHAINS.set([])
    try:
        with _debug_logging(debug, sdk=debug_sdk):
            try:
                return handler(args)
            except SecretNotFound as error:
                return _fail(error, EXIT_NOT_FOUND, debug)
            except ConfigError as error:
                return _fail(error, EXIT_CONFIG, debug)
            except AuthChainError as error:  # BackendError and the rest
                return _fail(error, EXIT_BACKEND, debug)
    finally:
        for chain in _CHAINS.get():
            chain.close()
        _CHAINS.reset(token)


def _fail(error: BaseException, code: int, debug: bool) -> int:
    if debug:
        import traceback

        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        sys.stderr.write(masking.default_masker.mask(text))
    sys.stderr.write(f"authchain: error: {masking.default_masker.mask(str(error))}\n")
    return code


@contextlib.contextmanager
def _debug_logging(enabled: bool, *, sdk: bool = False) -> Iterator[None]:
    """DEBUG logging to stderr, masked, for one command; the SDKs' wire loggers only with
    ``sdk`` or AUTHCHAIN_DEBUG_SDK. Everything it changes is put back afterwards.

    botocore's DEBUG output alone holds every signed request's headers (an
    ``x-amz-security-token``) and every response body: useful for debugging an
    SDK, not for seeing what authchain does. Masked either way.
    """
    if not enabled:
        yield
        return
    from authchain._sdk_logging import quiet_sdk_loggers, sdk_debug_requested, sdk_loggers

    root = logging.getLogger()
    root_level = root.level
    sdk_levels = {name: logging.getLogger(name).level for name in sdk_loggers()}
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(masking.MaskingFilter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    if not (sdk or sdk_debug_requested(os.environ)):
        quiet_sdk_loggers()
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(root_level)
        for name, level in sdk_levels.items():
            logging.getLogger(name).setLevel(level)


def _chain(args: argparse.Namespace) -> Chain:
    """The configured chain, closed when :func:`main` returns (an embedding program keeps no
    pool threads or clients of it)."""
    chain = Chain.from_config(getattr(args, "config", None), profile=getattr(args, "profile", None))
    _CHAINS.get().append(chain)
    return chain


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


# -- commands --------------------------------------------------------------


@scrubbed
def _resolve(args: argparse.Namespace) -> int:
    chain = _chain(args)
    value, attempt = chain.resolve_with_source(args.name)
    secret = value.get_secret_value()
    if args.json:
        shown: Any = MASK
        encoding = None
        if args.reveal:
            if isinstance(secret, bytes):
                shown, encoding = base64.b64encode(secret).decode(), "base64"
            else:
                shown = secret
        data = {"name": args.name, "source": attempt.source, "type": attempt.type, "value": shown}
        if encoding:
            data["encoding"] = encoding
        _print_json(data)
    elif not args.reveal:
        print(MASK)
    elif isinstance(secret, bytes):
        sys.stdout.buffer.write(secret)
        sys.stdout.flush()
    else:
        print(secret)
    return EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    explanation = _chain(args).explain(args.name)
    if args.json:
        _print_json(explanation.as_dict())
    else:
        print(explanation)
    return EXIT_OK if explanation.found else EXIT_NOT_FOUND


def _check(args: argparse.Namespace) -> int:
    from authchain._registry import plugin_errors

    chain = _chain(args)
    reports = chain.check()
    broken = plugin_errors()
    if args.json:
        _print_json(
            {
                "sources": [
                    {"source": r.source, "type": r.type, "status": r.status, "detail": r.detail}
                    for r in reports
                ],
                "plugin_errors": broken,
            }
        )
    else:
        width = max([len(f"{r.source} ({r.type})") for r in reports] + [10])
        for report in reports:
            print(
                f"{report.source + ' (' + report.type + ')':<{width}}  {report.status:<15}  {report.detail}"
            )
        for type_name, why in sorted(broken.items()):
            print(f"plugin {type_name!r} failed to load: {why}")
    statuses = {report.status for report in reports}
    if "misconfigured" in statuses:
        return EXIT_CONFIG
    if statuses & {"unreachable", "unauthenticated"}:
        return EXIT_BACKEND
    return EXIT_OK


def _config(args: argparse.Namespace) -> int:
    from authchain.config import TOP_LEVEL, describe

    chain = _chain(args)
    settings = chain.settings
    assert settings is not None
    data = describe(chain, settings)
    if args.json:
        _print_json(data)
        return EXIT_OK
    print(f"config file: {data['file'] or '(none found; using the default chain)'}")
    print(f"trust:       {_TRUST_TEXT.get(data['trust'], data['trust'])}")
    print(f"profile:     {data['profile'] or '(none)'}")
    print("settings:")
    for key in TOP_LEVEL:
        item = data["settings"][key]
        print(f"  {key} = {json.dumps(item['value'])}    # {item['origin']}")
    print("sources, in the order asked (after the explicit argument):")
    for number, source in enumerate(data["sources"], start=1):
        print(f"  {number}. {source['name']} (type {source['type']})")
        if "credentials" in source:
            print(f"       credentials: {source['credentials']}")
        for key, item in source["settings"].items():
            print(f"       {key} = {json.dumps(item['value'])}    # {item['origin']}")
    if data["secrets"]:
        print("pinned secrets:")
        for name, item in data["secrets"].items():
            print(f"  {name} = {item['reference']}    # {item['origin']}")
    for key, item in data.get("run", {}).items():
        print(f"[run] {key} = {json.dumps(item['value'])}    # {item['origin']}")
    for kind, table in data["clients"].items():
        print(f"client factory [clients.{kind}] (as written; ${{VAR}} expanded when a client is built):")
        for key, item in table.items():
            print(f"  {key} = {json.dumps(item['value'])}    # {item['origin']}")
    return EXIT_OK


_TRUST_TEXT = {
    "named": "named by you (AUTHCHAIN_CONFIG or --config): trusted",
    "trusted": "found upwards, trusted with `authchain trust`",
    "untrusted": "found upwards and NOT trusted: sources whose endpoint it names get no "
    "credentials (run `authchain trust` to trust it as it is)",
    "no file": "(no file)",
}


def _trust_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from authchain import _trust
    from authchain.config import find_config_file

    if args.path:
        path = Path(args.path).expanduser()
    else:
        searched = {k: v for k, v in os.environ.items() if k != "AUTHCHAIN_CONFIG"}
        found = find_config_file(Path.cwd(), searched)
        if found is None:
            raise ConfigError(
                "no authchain.toml (or pyproject.toml with [tool.authchain]) found from here upwards"
            )
        path = found
    if args.revoke:
        if not _trust.revoke(path):
            # Not 0: nothing changed, and a script that revoked a mistyped or
            # other path must learn that the file it meant may still be trusted.
            sys.stderr.write(f"{path} was not trusted; nothing was revoked\n")
            return EXIT_NOT_FOUND
        sys.stderr.write(f"no longer trusted: {path}\n")
        return EXIT_OK
    digest = _trust.trust(path)
    sys.stderr.write(
        f"trusted: {path.resolve()} (sha256 {digest[:16]}...); a change to it needs trusting again\n"
    )
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from authchain._run import build_environment, run_command

    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        raise ConfigError("run needs a command: authchain run -- CMD ARGS...")
    environment = build_environment(
        os.environ, lambda: _chain(args), scrub=args.scrub, only=args.only or None
    )
    return run_command(argv, environment, mask=not args.no_masking)


@scrubbed
def _keyring(args: argparse.Namespace) -> int:
    from authchain.backends.keyring.source import KeyringSource

    if args.stray:
        raise ConfigError(
            f"keyring {args.action} takes only SERVICE and NAME; a value on the command line would "
            "stay in shell history and ps: type it at the prompt or pipe it on stdin"
        )
    configured = [source for source in _chain(args).sources if isinstance(source, KeyringSource)]
    source = configured[0] if configured else KeyringSource()
    entry = f"{args.service}/{args.username}"
    if args.action == "delete":
        if not source.delete_password(args.service, args.username):
            sys.stderr.write(f"authchain: error: the keyring has no entry {entry}\n")
            return EXIT_NOT_FOUND
        sys.stderr.write(f"deleted {entry}\n")
        return EXIT_OK
    value = _read_new_value(entry)
    source.set_password(args.service, args.username, value)
    sys.stderr.write(f"stored {entry}\n")
    return EXIT_OK


def _read_new_value(entry: str) -> str:
    """A value from a no-echo prompt (asked twice) or, when piped, all of stdin minus one final newline."""
    stdin = sys.stdin
    if stdin is not None and stdin.isatty():
        import getpass

        value = getpass.getpass(f"Value for {entry}: ")
        if getpass.getpass("Repeat it: ") != value:
            raise ConfigError("the two values differ; nothing stored")
    else:
        value = stdin.read() if stdin is not None else ""
        if value.endswith("\n"):
            value = value[:-2] if value.endswith("\r\n") else value[:-1]
    if not value:
        raise ConfigError("no value given; nothing stored")
    return value


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "resolve": _resolve,
    "explain": _explain,
    "run": _run,
    "check": _check,
    "config": _config,
    "keyring": _keyring,
    "trust": _trust_command,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
