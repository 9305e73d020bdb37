"""results.json, console summaries, tables and plots."""
