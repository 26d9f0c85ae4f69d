"""Report: leaderboard data and tables, verdict reports (rich, Markdown, JUnit, JSON), plots, pytest-benchmark JSON."""
