"""Import jobs and export archives (see docs/switching.md)."""
