"""When Dagster refreshes a mart on its own (declarative automation).

Default: eagerly, when anything upstream updated, once every upstream mart's blocking checks
passed. `on_cron` refreshes on a schedule instead (after the deps updated since the tick).
Further variants (e.g. refreshing only marts whose sources changed) belong here, as more
keyword options of automation_condition().
"""

from __future__ import annotations

import dagster as dg


def automation_condition(on_cron: str | None = None,
                         cron_timezone: str = "UTC") -> dg.AutomationCondition:
    base = (dg.AutomationCondition.on_cron(on_cron, cron_timezone) if on_cron
            else dg.AutomationCondition.eager())
    return base & dg.AutomationCondition.all_deps_blocking_checks_passed()
