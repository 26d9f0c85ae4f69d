"""Every nightly run kept: the history database, its series and their change points."""
