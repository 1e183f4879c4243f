"""The engagement loops: derived state that acts (lifecycle first), inside the engagement app.

They reach the outbox only through the `PULSE_OUTBOX` port (docs/ARCHITECTURE.md §2)."""
