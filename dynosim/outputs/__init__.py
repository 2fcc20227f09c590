"""Outputs: the Report value and everything rendered from it (JSON, records, table, HTML, planner log)."""
