"""Model providers: Anthropic, OpenAI, Google, the offline local model, and `auto` (whichever is configured)."""
