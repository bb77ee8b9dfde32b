"""Worktree isolation: a git worktree and branch (orchestrator/<task-id>) per task."""
