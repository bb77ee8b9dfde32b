"""What the CLI shows about the work: `status` (the queue, the spend against the budgets)
and `stats` (spend reports). Kept light on purpose (no pydantic, no anyio) so both commands
start fast."""
