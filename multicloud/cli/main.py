"""`multicloud` command line: argument parsing only; commands import what they need lazily."""

from __future__ import annotations

import os
import sys

from multicloud import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

EPILOG = """\
examples:
  multicloud validate                         check multicloud.yaml
  multicloud plan --target local              show what apply would change
  multicloud apply --target aws --yes         deploy without a prompt (CI)
  multicloud endpoints --target local         where devices and people connect
  multicloud destroy --target local --yes     remove everything the app owns

exit codes: 0 success, 1 failure, 2 invalid input (spec, settings or arguments);
plan --detailed-exitcode: 0 no changes, 1 error, 2 changes present.
"""


COMPLETION_HELP = """\
Print a static completion script: commands, options, and the service and target names of the spec
(read when you press Tab, from -f FILE on the line or the spec found as commands find it).

  bash:  multicloud completion bash > ~/.local/share/bash-completion/completions/multicloud
  zsh:   multicloud completion zsh > "${fpath[1]}/_multicloud"   (then: autoload -U compinit && compinit)
  fish:  multicloud completion fish > ~/.config/fish/completions/multicloud.fish
"""


def _common(parser: argparse.ArgumentParser, *, target: bool = True, output: bool = True) -> None:
    parser.add_argument(
        "-f", "--file", action="append", dest="files", metavar="FILE",
        help="spec file; repeat to override it with later files, as compose does (default: $MULTICLOUD_FILE, "
        "else multicloud.yaml or .yml in this directory or the nearest parent)",
    )
    parser.add_argument(
        "--profile", action="append", metavar="NAME",
        help="compose profile to include when -f names a compose file (repeatable; default $COMPOSE_PROFILES)",
    )
    parser.add_argument(
        "--var", action="append", default=[], metavar="NAME=VALUE",
        help="set a variable the spec declares under vars: (repeatable; beats --var-file and $MULTICLOUD_VAR_NAME)",
    )
    parser.add_argument(
        "--var-file", action="append", default=[], metavar="FILE",
        help="YAML file of variable values (repeatable; later files win)",
    )
    if target:
        parser.add_argument(
            "-t", "--target", default=os.environ.get("MULTICLOUD_TARGET"),
            help="target name from the spec's targets (or $MULTICLOUD_TARGET); "
            "may be omitted when the spec has exactly one",
        )
    if output:
        parser.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")


def _apply_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--concurrency", type=int, default=4, metavar="N", help="steps run at once (default 4)")
    parser.add_argument(
        "--progress", choices=("plain", "tty", "json"), default=os.environ.get("MULTICLOUD_PROGRESS") or None,
        help="how progress is shown: tty (a live view; the default on a terminal), plain (lines; elsewhere) "
        "or json (one JSON object per event); $MULTICLOUD_PROGRESS",
    )
    parser.add_argument(
        "--health-timeout", type=float, default=None, metavar="SECONDS",
        help="how long each step waits for health (default: the provider's, e.g. aws-ecs 600; else 300)",
    )


def _count(text: str) -> int:
    """A number of lines (0 or more) for --tail; argparse reports anything else."""
    import argparse

    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of lines (0 or more)")
    return int(text)


def _services(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("services", nargs="*", metavar="SERVICE", help=help)


def _import_command(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=("compose",), help="what to import from")
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="compose files, merged as compose merges them (default: compose.yaml and its override file)")
    p.add_argument("--out", metavar="FILE",
                   help="where to write (default: multicloud.yaml beside the first file; - for stdout)")
    p.add_argument("--force", action="store_true", help="replace an existing spec file")
    p.add_argument("--profile", action="append", metavar="NAME", help="compose profile to include (repeatable)")


EXEC_HELP = """\
Run CMD in a running replica of SERVICE, as `docker compose exec` does: standard input is
forwarded, and a terminal is allocated when this one is a terminal (not with -T).

  docker        the engine's exec
  aws-ecs       ECS Exec (the session API): the service needs enableExecuteCommand, and AWS's
                session-manager-plugin must be on PATH
  azure-aci     ACI's exec API: one program, no arguments (an Azure limit); its exit status is
                not reported (0)
  gcp-cloudrun  refused: Cloud Run offers no way into a running instance

exit codes: the exit status of CMD (126: it could not be run, 127: not found); multicloud's own
errors, said on stderr as "error: ...": 1 (a backend failed or cannot be reached), 2 (invalid
input: no such service or replica, or the target refuses exec).
"""


def _logs_command(p: argparse.ArgumentParser) -> None:
    _common(p, output=False)
    p.add_argument("service", nargs="?", help="service name")
    p.add_argument("--follow", action="store_true", help="keep printing new lines")
    p.add_argument(
        "--tail", type=_count, default=100, metavar="N",
        help="lines of history per service, after --since (default 100; 0: none, only new lines with --follow)",
    )
    p.add_argument(
        "--since", metavar="WHEN", help="only lines written since WHEN: a duration ago (10m, 1h30m, 2d) or an ISO time",
    )


def _exec_command(p: argparse.ArgumentParser) -> None:
    p.description = EXEC_HELP
    _common(p, output=False)
    p.add_argument("--replica", type=int, default=1, metavar="N", help="which replica, from 1 (default 1)")
    p.add_argument("-T", "--no-tty", action="store_true", help="allocate no terminal even on a terminal")
    p.add_argument("service", help="service name")
    p.add_argument("argv", nargs="*", metavar="CMD", help="the command and its arguments, after --")


def _completion_command(p: argparse.ArgumentParser) -> None:
    p.description = COMPLETION_HELP
    p.add_argument("shell", choices=("bash", "zsh", "fish"), help="the shell to complete in")


def _graph_command(p: argparse.ArgumentParser) -> None:
    _common(p, output=False)
    _services(p, "graph only these services and what they need")
    p.add_argument("-o", "--output", choices=("mermaid", "dot"), default="mermaid", help="format (default mermaid)")
    p.add_argument(
        "--desired", action="store_true",
        help="graph what the spec becomes on the target as if nothing existed there: reads nothing from "
        "the target and needs no secret value",
    )


def _emulate_command(p: argparse.ArgumentParser) -> None:
    p.add_argument("cloud", help="emulator name, e.g. aws, azure, gcp (see `multicloud providers`)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to listen on (default: a free one)")
    p.add_argument(
        "--no-run", action="store_true", help="serve the API only (default: run the workload's containers on a "
        "reachable Docker engine, removed when the emulator stops)"
    )


def _estimate_command(p: argparse.ArgumentParser) -> None:
    from multicloud.cli.estimate import add_arguments

    _common(p, target=False, output=False)
    add_arguments(p)


def _plan_command(p: argparse.ArgumentParser) -> None:
    _common(p)
    _services(p, "plan only these services and what they need (or, with --destroy, what needs them)")
    p.add_argument("--out", metavar="FILE", help="save the plan for `apply FILE` (holds no secret value)")
    p.add_argument("--detailed-exitcode", action="store_true", help="exit 0 no changes, 2 changes, 1 error")
    p.add_argument("--destroy", action="store_true", help="plan the removal of everything the app owns")
    p.add_argument("-v", "--verbose", action="store_true", help="show every property of new resources")


def _apply_command(p: argparse.ArgumentParser) -> None:
    _common(p)
    _apply_options(p)
    p.add_argument(
        "services", nargs="*", metavar="SERVICE|PLANFILE",
        help="apply only these services and what they need; or apply exactly a plan saved by plan --out",
    )


def _destroy_command(p: argparse.ArgumentParser) -> None:
    _common(p)
    _apply_options(p)
    _services(p, "remove only these services and the services that need them")
    p.add_argument("--volumes", action="store_true", help="also delete named volumes and their data")


def _rollback_command(p: argparse.ArgumentParser) -> None:
    _common(p, output=False)
    p.add_argument("service", help="service name")


def _status_command(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument(
        "--watch", nargs="?", type=float, const=2.0, metavar="SECONDS",
        help="show it again every SECONDS (default 2) until Ctrl-C",
    )


def _secrets_command(p: argparse.ArgumentParser) -> None:
    _common(p, output=False)
    p.add_argument("what", choices=("ca",), help="ca: the CA certificate (PEM) of a generated TLS secret")
    p.add_argument("--name", metavar="SECRET", help="which generated TLS secret (default: the only one)")


def _providers_command(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")


def _no_arguments(p: argparse.ArgumentParser) -> None:
    return None


COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "validate": ("check a spec (and, with --target, that the target can run it)", _common),
    "plan": ("show what apply would create, update, replace or delete", _plan_command),
    "apply": ("make the target match the spec (shows the plan first)", _apply_command),
    "destroy": ("remove everything the app owns on the target", _destroy_command),
    "graph": ("print the dependency graph of a plan (Mermaid or Graphviz DOT)", _graph_command),
    "estimate": ("the spec's monthly cost on each target, side by side (list prices)", _estimate_command),
    "rollback": ("return a service to its previous revision (ECS, Cloud Run)", _rollback_command),
    "status": ("replica counts and state per service", _status_command),
    "endpoints": ("where each exposed port is reached (e.g. the MQTT URL)", _common),
    "secrets": ("print what a target's secret store holds that is public (the TLS CA certificate)", _secrets_command),
    "logs": ("print a service's logs (all services if none is named)", _logs_command),
    "exec": ("run a command in a running service (exit status passed through)", _exec_command),
    "emulate": ("run a local emulator of a cloud (prints the environment to export)", _emulate_command),
    "import": ("write a multicloud.yaml from compose files (saying what is not carried)", _import_command),
    "completion": ("print a shell completion script (bash, zsh or fish)", _completion_command),
    "schema": ("print the spec's JSON Schema (for editor completion)", _no_arguments),
    "providers": ("list installed provider plugins", _providers_command),
}
"""Every command: its help line and what adds its arguments, in the order help lists them."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Return the argument parser for every command (or, given a command's name, for that one alone:
    it parses that command's arguments exactly as the whole parser does, at a fraction of its cost)."""
    import argparse

    class Formatter(argparse.RawDescriptionHelpFormatter):
        """Help at a fixed width: measuring the terminal would import shutil on every start."""

        def __init__(self, prog: str) -> None:
            super().__init__(prog, width=int(os.environ.get("COLUMNS", "100")), max_help_position=30)
            self._action_max_length = 16

    parser = argparse.ArgumentParser(
        prog="multicloud",
        description="Deploy one container spec to AWS ECS Fargate, Azure Container Instances, "
        "Google Cloud Run or a local Docker engine.",
        epilog=EPILOG,
        formatter_class=Formatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"multicloud {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (help, populate) in COMMANDS.items():
        if only in (None, name):
            # an abbreviated option is a typo waiting to happen (`--out` silently becoming `--output`)
            populate(commands.add_parser(name, help=help, allow_abbrev=False, formatter_class=Formatter))
    return parser


HELP_FILE = os.path.join(os.path.dirname(__file__), "help.txt")
FAST_PATHS = (["--help"], ["-h"], ["--version"])


def render_help() -> str:
    """The top-level help exactly as argparse renders it (at the fixed width)."""
    return build_parser().format_help()


def _fast_path(argv: Sequence[str]) -> bool:
    """Answer --help and --version without building the parser; False if the cached help is stale."""
    if list(argv) == ["--version"]:
        print(f"multicloud {__version__}")
        return True
    if "COLUMNS" in os.environ:
        return False
    try:
        with open(HELP_FILE, encoding="utf-8") as handle:
            sys.stdout.write(handle.read())
    except OSError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (errors are printed, never raised as tracebacks)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_complete":  # the completion scripts' helper: no parser, nothing heavy
        from multicloud.cli.completion import print_names

        return print_names(argv[1:])
    if list(argv) in FAST_PATHS and _fast_path(argv):
        return 0
    remote: list[str] | None = None
    if argv and argv[0] == "exec" and "--" in argv:  # what follows -- is CMD's, every `--` and option of it
        split = list(argv).index("--")
        argv, remote = argv[:split], list(argv[split + 1:])
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    if remote is not None:
        args.argv = [*args.argv, *remote]
    if args.command is None:
        parser.print_help()
        return 2
    from multicloud.cli.commands import run

    return run(args)


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    if sys.argv[1:] == ["--write-help"]:  # maintainers: refresh the cached top-level help
        with open(HELP_FILE, "w", encoding="utf-8") as out:
            out.write(render_help())
        sys.exit(0)
    entry()
