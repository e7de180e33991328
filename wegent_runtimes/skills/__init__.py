"""Skills: preloaded into the prompt, or loaded on demand with the `load_skill` tool.

Skill resources come from YAML or from SKILL.md folders (the core loader reads both); resolution gives each member
the skills its Ghost (or its Task) asks for, and this toolkit puts them to work. See docs/skills.md.
"""

from ._toolkit import SKILL_TURNS, SkillBook, catalogue, skill_block, skills_toolkit

__all__ = ["SKILL_TURNS", "SkillBook", "catalogue", "skill_block", "skills_toolkit"]
