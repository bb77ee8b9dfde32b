"""The local web dashboard (`orchestrator dashboard`): its pages, JSON API and live events."""
