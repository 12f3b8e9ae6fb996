"""Commands kept in their own modules, one job each; importing them registers them on the
`bioloupe-views` group (each does `@cli.main.command(...)`)."""
