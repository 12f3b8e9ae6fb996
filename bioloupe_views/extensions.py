"""Commands kept in their own modules, one job each; importing them registers them on the
`bioloupe-views` group (each does `@cli.main.command(...)`)."""
from . import cron  # noqa: F401,E402  (issue 5: pg_cron install/status/remove)
from . import lineage  # noqa: F401,E402  (issue 8: graph)
from . import status  # noqa: F401,E402  (issue 8: status)
from . import drift  # noqa: F401,E402  (issue 6: diff)
from . import scaffold  # noqa: F401,E402  (issue 6: new-version)
from . import doctor  # noqa: F401,E402  (issue 7: source indexes the plans use)
