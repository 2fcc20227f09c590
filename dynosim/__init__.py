"""dynosim-tui: the edges around the engine (trace ingestion, config, reports, CLI)."""
