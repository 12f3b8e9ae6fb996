"""bioloupe-views for Dagster: one asset per mart, refreshed by the same engine as the CLI.

    dagster asset materialize -m bioloupe_views.dagster --select '*'

`defs` is ready to load (the database settings are read when a step runs, as the CLI reads
them). To compose your own Definitions, use `build_definitions()` or `build_marts_asset()`
with a BioloupeTranslator subclass for keys, groups, owners and tags. Requires the `dagster`
extra: pip install 'bioloupe-views[dagster]'.
"""

from __future__ import annotations

try:
    import dagster as dg
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError("bioloupe_views.dagster needs Dagster: pip install 'bioloupe-views[dagster]'"
                      ) from None

from .assets import RESOURCE_KEY, build_marts_asset, check_specs, mart_specs, source_specs
from .automation import automation_condition
from .resource import BioloupeViewsResource
from .translator import BioloupeTranslator

_DEFAULT = object()


def build_definitions(*, translator: BioloupeTranslator | None = None,
                      resource: BioloupeViewsResource | None = None,
                      automation: dg.AutomationCondition | None | object = _DEFAULT,
                      on_cron: str | None = None,
                      freshness_policy: dg.FreshnessPolicy | None = None,
                      include_sources: bool = True) -> dg.Definitions:
    """The marts (and, with include_sources, their source tables as external assets) and the
    resource. `automation`: default eager (or `on_cron`), gated on upstream blocking checks;
    None for no automation."""
    translator = translator or BioloupeTranslator()
    if automation is _DEFAULT:
        automation = automation_condition(on_cron=on_cron)
    assets = [build_marts_asset(translator, automation, freshness_policy)]
    if include_sources:
        assets += source_specs(translator)
    return dg.Definitions(assets=assets,
                          resources={RESOURCE_KEY: resource or BioloupeViewsResource()})


defs = build_definitions()

__all__ = ["BioloupeTranslator", "BioloupeViewsResource", "automation_condition",
           "build_definitions", "build_marts_asset", "check_specs", "defs", "mart_specs",
           "source_specs", "RESOURCE_KEY"]
