"""The seed "LLM Service Layer" config schema: recognising it, reading it as it is, and
rewriting it in the native schema (`orchestrator config migrate`)."""
