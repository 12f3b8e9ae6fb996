"""One Dagster asset per mart, executed by the refresh engine (engine.py) like refresh-views.

All marts are one subsettable multi-asset, as dagster-dbt's @dbt_assets is: the selected
marts go to one engine.run(), so a Dagster step takes the same refresh lock as the CLI and
pg_cron (waiting `lock_wait`, then failing with who holds it), runs each mart's checks inside
its refresh transaction before publishing, writes the same run log (trigger 'dagster', the
Dagster run id as trigger_ref), and skips the dependents of a mart that failed or was
blocked. Only published marts are reported as materialized; the step then fails.

Every check is an AssetCheckSpec of its mart (error severity: blocking). Each selected
check gets a result: from the mart's refresh, or, for a mart not refreshed in this step,
from running the installed checks on their own (like `dbt test`); a mart that was skipped
or failed before its checks reports them as failed, "not run".
"""

# No `from __future__ import annotations`: Dagster reads the compute function's annotations
# (context and resource types) at definition time.
import itertools
from collections.abc import Iterator

import dagster as dg
import psycopg2.errors

from .. import checks as data_checks
from .. import engine, roles
from ..config import mask_text
from ..db import connect
from ..definitions import MART_SCHEMA
from ..errors import LockBusyError, UserError
from . import lineage
from .resource import BioloupeViewsResource
from .translator import BioloupeTranslator

RESOURCE_KEY = "bioloupe_views"
_SEVERITY = {"error": dg.AssetCheckSeverity.ERROR, "warn": dg.AssetCheckSeverity.WARN}


def check_specs(translator: BioloupeTranslator) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(c.name, asset=translator.get_asset_key(c.mart),
                              description=f"{c.test} check, severity {c.severity}",
                              blocking=c.severity == "error")
            for files in lineage.marts().values() for c in files.checks]


def mart_specs(translator: BioloupeTranslator, automation: dg.AutomationCondition | None,
               freshness_policy: dg.FreshnessPolicy | None = None) -> list[dg.AssetSpec]:
    specs = []
    for name, files in lineage.marts().items():
        deps = [translator.get_asset_key(m) for m in sorted(files.upstream_marts)]
        deps += [translator.get_source_asset_key(t) for t in sorted(files.source_tables)]
        specs.append(dg.AssetSpec(
            translator.get_asset_key(name), deps=deps, description=translator.get_description(name),
            group_name=translator.get_group_name(name), owners=translator.get_owners(name),
            tags=translator.get_tags(name), kinds={"postgres"}, code_version=files.code_version,
            metadata=translator.get_metadata(name), automation_condition=automation,
            freshness_policy=freshness_policy, skippable=True))
    return specs


def source_specs(translator: BioloupeTranslator) -> list[dg.AssetSpec]:
    """The source tables the marts read, as external assets (drop them if another code
    location already defines these keys)."""
    tables = sorted({t for files in lineage.marts().values() for t in files.source_tables})
    return [dg.AssetSpec(translator.get_source_asset_key(t), kinds={"postgres"},
                         description=f"source table {MART_SCHEMA}.{t} (sources/contract.toml)")
            for t in tables]


class _LogReporter(engine.Reporter):
    """Progress of the engine's run, to the Dagster step log."""

    def __init__(self, log):
        self.log = log

    def finish(self, index: int, total: int, result: engine.MartResult) -> None:
        detail = result.error or f"{result.rows} rows in {result.seconds:.2f}s ({result.mode})"
        self.log.info(f"{index} of {total} {result.status} {result.mart}: {detail}")

    def upkeep(self, action) -> None:
        self.log.info(f"Upkeep: {action.describe()}")


def _column_schema(cur, mart: str) -> dg.TableSchema:
    cur.execute("SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull"
                " FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0"
                " AND NOT a.attisdropped ORDER BY a.attnum", (f'{MART_SCHEMA}."{mart}"',))
    return dg.TableSchema(columns=[
        dg.TableColumn(name, type_, constraints=dg.TableColumnConstraints(nullable=not notnull))
        for name, type_, notnull in cur.fetchall()])


def _check_result(key: dg.AssetKey, result: dict) -> dg.AssetCheckResult:
    """One row of run_checks() as Dagster sees it; a check that could not run is an error."""
    severity = _SEVERITY[result["severity"]]
    if result["status"] == "error":
        severity = dg.AssetCheckSeverity.ERROR
    metadata = {"status": result["status"]}
    if result.get("failures") is not None:
        metadata["failures"] = result["failures"]
    if result.get("error"):
        metadata["error"] = result["error"]
    if result.get("sample"):
        metadata["sample"] = dg.MetadataValue.json(result["sample"])
    return dg.AssetCheckResult(asset_key=key, check_name=result["name"],
                               passed=result["status"] == "pass", severity=severity,
                               metadata=metadata)


def _not_run(key: dg.AssetKey, check: data_checks.Check, reason: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(asset_key=key, check_name=check.name, passed=False,
                               severity=_SEVERITY[check.severity],
                               metadata={"status": "not run", "reason": reason})


def build_marts_asset(translator: BioloupeTranslator | None = None,
                      automation: dg.AutomationCondition | None = None,
                      freshness_policy: dg.FreshnessPolicy | None = None,
                      name: str = "bioloupe_views_marts") -> dg.AssetsDefinition:
    translator = translator or BioloupeTranslator()
    mart_of = {translator.get_asset_key(m): m for m in lineage.marts()}
    declared = {c.name: c for files in lineage.marts().values() for c in files.checks}

    @dg.multi_asset(name=name, specs=mart_specs(translator, automation, freshness_policy),
                    check_specs=check_specs(translator), can_subset=True)
    def bioloupe_views_marts(context: dg.AssetExecutionContext,
                             bioloupe_views: BioloupeViewsResource) -> Iterator:
        selected_checks = {k.name for k in context.selected_asset_check_keys}
        marts = [m for k, m in mart_of.items() if k in context.selected_asset_keys]
        alone = sorted({declared[c].mart for c in selected_checks} - set(marts))
        reported: set[str] = set()
        dsn = None
        try:
            dsn = bioloupe_views.resolved_dsn()
            for event in itertools.chain(  # lazily: what was reported stays reported
                    _checks_alone(dsn, alone, selected_checks),
                    _refresh(context, bioloupe_views, dsn, marts, selected_checks)):
                if isinstance(event, dg.AssetCheckResult):
                    reported.add(event.check_name)
                yield event
        except (UserError, psycopg2.errors.InsufficientPrivilege) as exc:
            # One line that says what to do, as the CLI prints it (a missing grant is named).
            text = roles.explain(exc) if isinstance(exc, psycopg2.Error) else str(exc)
            message = mask_text(text, dsn) if dsn else text
            if isinstance(exc, LockBusyError):
                message = (message.split("; try again later")[0] + "; try again later, or "
                           "raise lock_wait on the bioloupe_views resource")
            # Every selected check gets a result, even when nothing could run.
            for check in (declared[c] for c in sorted(selected_checks - reported)):
                yield _not_run(translator.get_asset_key(check.mart), check, message)
            raise dg.Failure(description=message) from None

    def _refresh(context, resource, dsn, marts, selected_checks):
        if not marts:
            return
        outcome = engine.run(dsn, tuple(marts), (), resource.options(context.run.run_id),
                             _LogReporter(context.log))
        results = {r.mart: r for r in outcome.results}
        # The engine's results come in refresh order, which Dagster requires (upstream first).
        ordered = [r.mart for r in outcome.results] + [m for m in marts if m not in results]
        conn = connect(dsn)
        try:
            with conn.cursor() as cur:
                for mart in ordered:
                    key, result = translator.get_asset_key(mart), results.get(mart)
                    if result and result.status == "success":
                        yield dg.MaterializeResult(asset_key=key, metadata={
                            **translator.get_metadata(mart),
                            "dagster/row_count": result.rows,
                            "dagster/column_schema": _column_schema(cur, mart),
                            "duration_seconds": round(result.seconds, 3),
                            "refresh_mode": result.mode,
                            "bioloupe_views/run_id": outcome.run_id})
                    ran = {c["name"] for c in (result.checks if result else [])}
                    for check in result.checks if result else []:
                        if check["name"] in selected_checks:
                            yield _check_result(key, check)
                        elif check["name"] not in declared:
                            context.log.warning(
                                f"check {check['name']} of {mart} is installed in the database "
                                f"but not in these definitions ({check['status']}): deploy the "
                                "code that matches the migrated database")
                    if result and result.status == "unchanged":
                        continue  # its checks run on their own below, against what it holds
                    reason = (f"{mart} {result.status}: {result.error or 'no checks ran'}"
                              if result else f"{mart} was not refreshed")
                    for check in lineage.marts()[mart].checks:
                        if check.name in selected_checks and check.name not in ran:
                            yield _not_run(key, check, reason)
        finally:
            conn.close()
        # A mart left as it was (changed_only) is not materialized; its selected checks
        # still report, run on their own like `dbt test`.
        yield from _checks_alone(dsn, [r.mart for r in outcome.results if r.status == "unchanged"],
                                 selected_checks)
        failed = [f"{r.mart} {r.status}" + (f" ({r.error})" if r.error else "")
                  for r in outcome.results if r.status not in ("success", "unchanged")]
        if failed:
            raise dg.Failure(description=f"bioloupe-views run {outcome.run_id}: "
                             + "; ".join(failed) + "; see `bioloupe-views status`")

    def _checks_alone(dsn, marts, selected_checks):
        if not marts:
            return
        conn = connect(dsn)
        try:
            results = data_checks.run(conn, marts)
        finally:
            conn.close()
        for result in results:
            if result["name"] in selected_checks:
                yield _check_result(translator.get_asset_key(result["mart"]), result)

    return bioloupe_views_marts
