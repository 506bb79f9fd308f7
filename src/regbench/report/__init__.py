"""Reports built from results.json files: leaderboard JSON and page, LaTeX / Markdown tables, plots."""
