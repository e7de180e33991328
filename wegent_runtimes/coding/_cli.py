"""The Claude Code command line inside the sandbox (`sandbox.useCli: true` on the Shell, and an image that has it).

This mode gives up what the default one guarantees: the command line calls the model itself, so the Model's key,
base URL and model id are passed to that one command's environment, inside the sandbox. It is therefore off by
default and only the Shell can turn it on. The key is given to the `claude` process only (never to the sandbox's own
environment, so other commands of the task do not see it), but code the agent runs under it can read it.
"""

from __future__ import annotations

from typing import Any

from wegent_core import ChatMessage, LimitExceeded, Sandbox, TextDelta, Turn, TurnResult, WegentError

from ._workspace import Workspace

CLI = "claude"
STATE_KEY = "claude_cli_turns"  # in TurnResult.state: a later turn continues the command line's conversation


class CliError(WegentError):
    """The claude command line failed."""


async def available(sandbox: Sandbox) -> bool:
    """Whether the sandbox's image has the command line (on its PATH)."""
    result = await sandbox.exec(f"command -v {CLI}", timeout=30)
    return result.ok and bool(result.stdout.strip())


def command(turn: Turn, prompt: str, system: str) -> list[str]:
    """`claude -p` with the member's prompt, model and permissions as upstream sets them up."""
    line = [CLI, "-p", prompt, "--output-format", "text", "--permission-mode", "bypassPermissions"]
    line += ["--append-system-prompt", system]
    if turn.member.model.model_id:
        line += ["--model", turn.member.model.model_id]
    if turn.state.get(STATE_KEY):
        line.append("--continue")  # the command line keeps its conversation in the workspace: carry on with it
    return line


def environment(turn: Turn) -> dict[str, str]:
    """What the command line needs to reach the Model (as upstream's settings.json env): key, base URL, model."""
    config: dict[str, Any] = turn.member.model.materialize()
    env: dict[str, str] = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    if config.get("api_key"):
        env["ANTHROPIC_API_KEY"] = env["ANTHROPIC_AUTH_TOKEN"] = str(config["api_key"])
    if config.get("base_url"):
        env["ANTHROPIC_BASE_URL"] = str(config["base_url"]).rstrip("/").removesuffix("/v1")
    if config.get("model_id"):
        env["ANTHROPIC_MODEL"] = str(config["model_id"])
    return env


async def run(turn: Turn, sandbox: Sandbox, workspace: Workspace, system: str) -> TurnResult:
    """Run the turn as one `claude -p` call; its output is streamed as the member's text."""
    turn.budget.start_turn()
    turn.budget.start_model_call()
    prompt = turn.messages[-1].content if turn.messages else ""

    def stream(channel: str, text: str) -> None:
        if channel == "stdout" and text:
            turn.emit(TextDelta(subtask_id=turn.subtask_id, member=turn.member.bot, text=text))

    limit = turn.budget.limits.turn_timeout_seconds
    result = await sandbox.exec(
        command(turn, str(prompt), system), cwd=workspace.cwd, env=environment(turn), timeout=limit, on_output=stream
    )
    if result.timed_out:
        raise LimitExceeded("turn_timeout_seconds", f"{turn.member.bot} did not answer within {limit:g} s")
    if not result.ok:
        detail = (result.stderr.strip() or result.stdout.strip())[-2000:]
        raise CliError(f"claude exited with code {result.exit_code}: {detail}")
    text = result.stdout.strip()
    turns = int(turn.state.get(STATE_KEY) or 0) + 1
    return TurnResult(text=text, messages=[ChatMessage(role="assistant", content=text)], state={STATE_KEY: turns})
