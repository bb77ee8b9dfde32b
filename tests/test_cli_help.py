"""`--help` of every command: examples at its foot that parse with the real parser, and help
text for every option and positional argument."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.cli import build_parser
from orchestrator.helptext import EXAMPLES, epilog
from tests.conftest import cli_env


def commands(
    parser: argparse.ArgumentParser, path: str = ""
) -> list[tuple[str, argparse.ArgumentParser]]:
    """The parser and every subparser under it, recursively, by the words that reach them."""
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += commands(child, f"{path} {name}".strip())
    return found


COMMANDS = dict(commands(build_parser()))


def invocations(command: str) -> list[str]:
    """The examples of `command`, a `\\`-continued line joined to the next."""
    joined, pending = [], ""
    for line in EXAMPLES[command]:
        text = pending + line.strip()
        if text.endswith("\\"):
            pending = text[:-1]
        else:
            joined.append(text)
            pending = ""
    assert not pending, f"{command!r}: the last example ends in a backslash"
    return joined


def test_the_walk_finds_every_command() -> None:
    assert {"", "run", "submit", "exec", "config", "config validate", "config migrate"} <= set(
        COMMANDS
    )
    assert len(COMMANDS) >= 17


def test_every_command_has_examples_and_no_example_is_left_over() -> None:
    assert set(EXAMPLES) == set(COMMANDS)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_ends_with_its_examples(command: str) -> None:
    parser = COMMANDS[command]
    assert parser.epilog == epilog(command)
    assert parser.formatter_class is argparse.RawDescriptionHelpFormatter
    text = parser.format_help()
    assert text.rstrip().endswith(EXAMPLES[command][-1].rstrip())
    for line in EXAMPLES[command]:  # line for line, not rewrapped
        assert f"\n  {line}\n" in text


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_argument_has_help(command: str) -> None:
    parser = COMMANDS[command]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"orchestrator {command}: {name} has no help text"
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"orchestrator {command} {choice.dest}: no help text"
    assert parser.description or not command, f"orchestrator {command}: no description"


def parsed(example: str, capsys: pytest.CaptureFixture[str]) -> argparse.Namespace:
    """`example` parsed by the real parser; a test failure with argparse's message if not."""
    words = shlex.split(example, comments=True)
    assert words[0] == "orchestrator", example
    try:
        args = build_parser().parse_args(words[1:])
    except SystemExit:
        pytest.fail(f"{example!r} does not parse: {capsys.readouterr().err}")
    if getattr(args, "handler", None) is None:
        pytest.fail(f"{example!r} runs no command")
    return args


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_example_parses(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    for example in invocations(command):
        args = parsed(example, capsys)
        # an example of `config validate` runs `config validate`; of `config`, one of its own
        ran = " ".join(filter(None, (args.command, getattr(args, "config_command", None))))
        assert f"{ran} ".startswith(f"{command} ".lstrip()), example


@pytest.mark.parametrize(
    ("example", "why"),
    [
        ("orchestrator run --once --no-such-option", "unrecognized arguments"),
        ("orchestrator submit --prompt 'no agent'", "the following arguments are required"),
        ("orchestrator config", "does not parse"),
        ("orchestrator --root .", "runs no command"),
    ],
)
def test_an_example_that_rotted_fails(
    example: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(pytest.fail.Exception, match=why):
        parsed(example, capsys)


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["run", "--help"], ["submit", "--help"], ["config", "migrate", "--help"]],
)
def test_the_real_command_prints_its_examples(argv: list[str], tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *argv],
        capture_output=True,
        text=True,
        env=cli_env(tmp_path, {"COLUMNS": "100"}),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    command = " ".join(argv[:-1])
    assert "\nexamples:\n" in done.stdout
    for line in EXAMPLES[command]:
        assert f"  {line}\n" in done.stdout


def test_version_loads_no_config_yaml_or_pydantic(tmp_path: Path) -> None:
    """The examples are plain strings: building the parser stays cheap for `version`."""
    heavy = {"pydantic", "yaml", "anyio", "watchfiles", "aiosqlite", "orchestrator.config"}
    code = (
        "import sys\nfrom orchestrator.cli import main\nmain(['version'])\n"
        f"print(sorted({heavy!r} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=cli_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("orchestrator ")
    assert done.stdout.splitlines()[-1] == "[]", done.stdout
