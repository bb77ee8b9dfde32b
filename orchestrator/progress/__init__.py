"""Live progress of running tools: events from their output streams, logged per task."""
