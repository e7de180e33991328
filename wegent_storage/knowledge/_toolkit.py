"""The knowledge toolkit: `knowledge_search` for members whose Ghost (`defaultKnowledgeBaseRefs`) or Task
(`knowledgeBaseRefs`) references knowledge bases.

The tool returns the best chunks as numbered passages, each with its source and location, and asks the model to cite
them as `[n]`. Citations reach the event stream as `citation` events (one per passage returned, emitted before the
`tool.result` of the call, with the call's `call_id`), so an application shows an answer's sources without parsing
its text. A knowledge base that resolution did not find is announced with a `knowledge.missing` notice.

Knowledge bases are opened on the first search (loading the embedding takes a moment) and kept for the process.
"""

from __future__ import annotations

import threading
from typing import Any

import anyio

from wegent_core import Citation, KnowledgeBasePlan, MemberKit, Notice, ToolContext, ToolError, ToolSpec

from ._backend import Hit
from ._knowledge import Knowledge

TOOL_NAME = "knowledge_search"
MAX_K = 20
_PREVIEW = 200
_open: dict[str, Knowledge] = {}
_open_lock = threading.Lock()


async def knowledge_toolkit(kit: MemberKit) -> None:
    for name in kit.member.missing_knowledge_bases:
        message = f"knowledge base '{name}' was not found; skipped"
        kit.emit(Notice(member=kit.member.bot, code="knowledge.missing", message=message))
    if kit.member.knowledge_bases:
        search = KnowledgeSearch(kit)
        kit.tools.append(search)
        kit.instructions.append(instructions(kit.member.knowledge_bases))


def instructions(kbs: list[KnowledgeBasePlan]) -> str:
    lines = [
        "## Knowledge bases",
        "",
        f"Answer from the knowledge bases below: call `{TOOL_NAME}` with a question or key phrases first, then answer "
        "from the passages it returns and cite each fact with its passage number, such as [1]. Say so when the "
        "passages do not contain the answer.",
        "",
    ]
    lines += [f"- `{kb.name}`" + (f": {' '.join(kb.description.split())}" if kb.description else "") for kb in kbs]
    return "\n".join(lines)


def open_knowledge(plan: KnowledgeBasePlan, plugins: Any = None) -> Knowledge:
    """The process's open handle on a knowledge base (opened once per plan)."""
    key = plan.model_dump_json()
    with _open_lock:
        if key not in _open:
            _open[key] = Knowledge.open(plan, plugins=plugins)
        return _open[key]


class KnowledgeSearch:
    """`knowledge_search(query, knowledge_base?, k?)`."""

    def __init__(self, kit: MemberKit) -> None:
        self.kit = kit
        self.kbs = {kb.name: kb for kb in kit.member.knowledge_bases}
        names = list(self.kbs)
        properties: dict[str, Any] = {
            "query": {"type": "string", "description": "What to look for, in words close to the answer's"},
            "k": {"type": "integer", "minimum": 1, "maximum": MAX_K, "description": "How many passages (default 5)"},
        }
        if len(names) > 1:
            properties["knowledge_base"] = {"type": "string", "enum": names, "description": "Default: all of them"}
        self.spec = ToolSpec(
            name=TOOL_NAME,
            description=f"Search the knowledge bases ({', '.join(names)}) for passages relevant to a query; returns "
            "numbered passages with their source document and location.",
            parameters={"type": "object", "properties": properties, "required": ["query"]},
        )

    async def call(self, arguments: dict[str, Any], context: ToolContext) -> str:
        query = arguments.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ToolError(f"{TOOL_NAME} needs a non-empty query")
        plans = self._chosen(arguments.get("knowledge_base"))
        k = arguments.get("k")
        k = max(1, min(MAX_K, k)) if isinstance(k, int) and not isinstance(k, bool) else None
        hits: list[tuple[KnowledgeBasePlan, Hit]] = []
        for plan in plans:
            found = await anyio.to_thread.run_sync(self._search, plan, query, k)
            hits += [(plan, hit) for hit in found]
        hits.sort(key=lambda pair: pair[1].score, reverse=True)
        hits = hits[: k or max(p.top_k for p in plans)]
        if not hits:
            return "No passages found."
        for ref, (plan, hit) in enumerate(hits, start=1):
            self.kit.emit(citation(plan, hit, ref, context))
        return format_hits(hits)

    def _chosen(self, name: Any) -> list[KnowledgeBasePlan]:
        if name in (None, ""):
            return list(self.kbs.values())
        if name not in self.kbs:
            raise ToolError(f"there is no knowledge base {name!r}; knowledge bases: {', '.join(self.kbs)}")
        return [self.kbs[name]]

    def _search(self, plan: KnowledgeBasePlan, query: str, k: int | None) -> list[Hit]:
        return open_knowledge(plan, self.kit.plugins).search(query, k=k)

    def __repr__(self) -> str:
        return f"<tool {TOOL_NAME}>"


def citation(plan: KnowledgeBasePlan, hit: Hit, ref: int, context: ToolContext) -> Citation:
    meta = hit.metadata
    return Citation(
        subtask_id=context.subtask_id,
        member=context.member,
        call_id=context.call_id,
        ref=ref,
        knowledge_base=plan.key,
        source=str(meta.get("source", "")),
        location=str(meta.get("location", "")),
        chunk_id=hit.id,
        score=round(hit.score, 4),
        text=hit.text[:_PREVIEW],
    )


def format_hits(hits: list[tuple[KnowledgeBasePlan, Hit]]) -> str:
    blocks = []
    for ref, (plan, hit) in enumerate(hits, start=1):
        meta = hit.metadata
        where = f"{meta.get('title') or meta.get('source')}, {meta.get('location')}"
        blocks.append(f"[{ref}] {where} (knowledge base {plan.name}, score {hit.score:.2f})\n{hit.text.strip()}")
    return "\n\n".join(blocks)
