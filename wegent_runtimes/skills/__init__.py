"""Skills: preloaded into the prompt, or loaded on demand with the `load_skill` tool."""
