"""The skills toolkit: what a member's skills add to its turns (upstream reference 2.7).

* A preloaded skill's instructions go into the member's system prompt, and its MCP servers' tools are attached.
* The other skills are listed by name and description in the system prompt; the `load_skill` tool returns a skill's
  instructions and attaches its MCP servers' tools.
* A loaded skill stays for `SKILL_TURNS` member turns, the one it was loaded in included: in the later ones its
  instructions are in the system prompt (the history keeps only messages and answers, not tool results) and its tools
  stay attached. Loading it again while it stays refreshes its turns and returns a short confirmation.
* A skill that resolution did not find is announced with a `skill.missing` notice; the member goes on without it.

A turn is told apart by its message id (every member turn is a subtask with a message id of its own), given by the
engine at the start of each turn (`kit.turn_hooks`) and read again from the `ToolContext` of a call.
The state lives in the member's kit, which lasts for one run of the task.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from wegent_core import MemberKit, Notice, SkillPlan, Tool, ToolContext, ToolError, ToolSpec

log = logging.getLogger("wegent.skills")

SKILL_TURNS = 5  # upstream: a loaded skill stays for 5 turns
TOOL_NAME = "load_skill"
_MESSAGE = re.compile(r"(?:^|/)message-(\d+)(?:/|$)")


async def skills_toolkit(kit: MemberKit) -> None:
    """Equip a member with its skills (see the module docstring)."""
    for name in kit.member.missing_skills:
        kit.emit(Notice(member=kit.member.bot, code="skill.missing", message=f"skill '{name}' was not found; skipped"))
    skills = kit.member.skills
    preloaded = [s for s in skills if s.preload]
    on_demand = [s for s in skills if not s.preload]
    for skill in preloaded:
        kit.instructions.append(skill_block(skill))
        kit.tools += await attach_servers(kit, skill.name)
    if on_demand:
        book = SkillBook(kit, on_demand, preloaded)
        kit.instructions.append(catalogue(on_demand))
        kit.tools.append(book.tool)
        kit.turn_hooks.append(book.start_turn)


# --- texts --------------------------------------------------------------------------------------------------------


def skill_block(skill: SkillPlan) -> str:
    """A skill's instructions as a section of the system prompt."""
    title = f"{skill.display_name} ({skill.name})" if skill.display_name else skill.name
    return f"## Skill: {title}\n\n{skill.prompt or skill.description}"


def catalogue(skills: Sequence[SkillPlan]) -> str:
    """The skills a member can load, by name and description."""
    lines = [
        "## Skills",
        "",
        f"Skills give you instructions for particular kinds of work. When a request needs one, call `{TOOL_NAME}` with "
        "its name first and follow the instructions it returns.",
        "",
    ]
    lines += [f"- `{s.name}`: {' '.join(s.description.split())}" for s in skills]
    return "\n".join(lines)


# --- loading ------------------------------------------------------------------------------------------------------


@dataclass
class _Loaded:
    skill: SkillPlan
    instruction: str
    tools: list[Tool]
    loaded_in: str  # the turn it was loaded in
    turns: int = 1  # member turns it has stayed for, the loading one included


@dataclass
class SkillBook:
    """One member's on-demand skills in one run: which are loaded, since when, and with which tools."""

    kit: MemberKit
    skills: Sequence[SkillPlan]
    preloaded: Sequence[SkillPlan] = ()
    loaded: dict[str, _Loaded] = field(default_factory=dict)
    turn: str | None = None  # the member's current turn, as far as the book has seen
    _lock: anyio.Lock = field(default_factory=anyio.Lock)

    def __post_init__(self) -> None:
        self.by_name = {s.name: s for s in self.skills}
        self.tool = LoadSkillTool(self)

    def start_turn(self, turn: object) -> None:
        """A turn of the member has started: loaded skills age by one turn, and those past `SKILL_TURNS` leave."""
        key = str(turn)
        if key == self.turn:
            return
        first = self.turn is None
        self.turn = key
        if first:
            return
        for name, entry in list(self.loaded.items()):
            entry.turns += 1
            if entry.turns > SKILL_TURNS:
                self.unload(name)

    def unload(self, name: str) -> None:
        entry = self.loaded.pop(name)
        self.kit.instructions[:] = [i for i in self.kit.instructions if i is not entry.instruction]
        gone = {id(t) for t in entry.tools}
        self.kit.tools[:] = [t for t in self.kit.tools if id(t) not in gone]

    async def load(self, name: str, turn: str) -> str:
        """The skill's instructions, or a short confirmation when they are already in the member's context."""
        async with self._lock:  # parallel calls for one skill must not attach its servers twice
            self.start_turn(turn)
            skill = self.by_name.get(name)
            if skill is None:
                if any(s.name == name for s in self.preloaded):
                    return f"Skill '{name}' is preloaded: its instructions are already in your system prompt."
                known = ", ".join(sorted(self.by_name)) or "none"
                raise ToolError(f"there is no skill {name!r}; available skills: {known}")
            entry = self.loaded.get(name)
            if entry is not None:
                entry.turns = 1  # used again: it stays for SKILL_TURNS more turns
                where = "above" if self.turn == entry.loaded_in else "in your system prompt"
                return f"Skill '{name}' is already loaded; its instructions are {where}."
            tools = await attach_servers(self.kit, name)
            entry = _Loaded(skill, skill_block(skill), tools, loaded_in=self.turn or turn)
            self.loaded[name] = entry
            self.kit.instructions.append(entry.instruction)  # the system prompt of the member's next turns
            self.kit.tools += tools  # the next model call of this turn sees them
        text = skill.prompt or skill.description
        if tools:
            text += "\n\n(Tools of this skill are now available: " + ", ".join(t.spec.name for t in tools) + ".)"
        return text


class LoadSkillTool:
    """`load_skill(name)`: the instructions of one of the member's skills."""

    def __init__(self, book: SkillBook) -> None:
        self.book = book
        names = [s.name for s in book.skills]
        self.spec = ToolSpec(
            name=TOOL_NAME,
            description="Load a skill by name: returns its instructions and makes its tools available. "
            f"Skills: {', '.join(names)}.",
            parameters={
                "type": "object",
                "properties": {"name": {"type": "string", "enum": names, "description": "The skill to load"}},
                "required": ["name"],
            },
        )

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        name = arguments.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ToolError(f"{TOOL_NAME} needs a skill name; available skills: {', '.join(self.book.by_name)}")
        return await self.book.load(name.strip(), turn_of(context))

    def __repr__(self) -> str:
        return f"<tool {TOOL_NAME}>"


def turn_of(context: ToolContext) -> str:
    """The member turn a call belongs to: the message id in its idempotency key (`task-1/message-2/step-3/call-1`)."""
    found = _MESSAGE.search(context.idempotency_key)
    return found.group(1) if found else context.idempotency_key.partition("/step-")[0]


# --- MCP servers --------------------------------------------------------------------------------------------------


async def attach_servers(kit: MemberKit, skill: str) -> list[Tool]:
    """The tools of the skill's MCP servers (resolution names their source `skill:<name>`), connected once per task.
    A server that cannot be used is announced with a notice; the skill's instructions still apply."""
    servers = [s for s in kit.member.mcp_servers if s.source == f"skill:{skill}"]
    if not servers:
        return []
    try:
        from wegent_runtimes.mcp import kit_placeholders, mcp_tools
    except ImportError as error:
        names = ", ".join(s.name for s in servers)
        kit.emit(
            Notice(
                member=kit.member.bot,
                code="mcp.unavailable",
                message=f"skill '{skill}': MCP servers {names} not attached ({error})",
            )
        )
        return []
    try:
        tools: list[Tool] = await mcp_tools(kit.session, servers, placeholders=kit_placeholders(kit), emit=kit.emit)
    except Exception as error:  # the skill is still worth its instructions; cancellation is not caught
        log.warning("skill %s: attaching MCP servers failed", skill, exc_info=True)
        message = f"skill '{skill}': MCP servers not attached: {type(error).__name__}: {error}"
        kit.emit(Notice(member=kit.member.bot, code="mcp.unavailable", message=message))
        return []
    return tools
