"""How marts and source tables become Dagster assets: keys, groups, owners, tags.

The defaults reproduce what dagster-dbt made of the dbt project this replaces, so existing
asset history, schedules and downstream assets keep working: a mart is ["public", <mart>]
(dbt's `+schema: public` model key) and a source table is [<table>] (its
meta.dagster.asset_key). Subclass and override any method, as with DagsterDbtTranslator.
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from .. import definitions
from ..definitions import MART_SCHEMA


class BioloupeTranslator:
    def get_asset_key(self, mart: str) -> dg.AssetKey:
        return dg.AssetKey([MART_SCHEMA, mart])

    def get_source_asset_key(self, table: str) -> dg.AssetKey:
        """The key of a source table of the contract (sources/contract.toml)."""
        return dg.AssetKey([table])

    def get_group_name(self, mart: str) -> str | None:
        return None

    def get_owners(self, mart: str) -> list[str]:
        return []

    def get_tags(self, mart: str) -> Mapping[str, str]:
        return {}

    def get_description(self, mart: str) -> str:
        return definitions.get(mart).latest.description

    def get_metadata(self, mart: str) -> Mapping[str, object]:
        return {"dagster/table_name": f"{MART_SCHEMA}.{mart}"}
