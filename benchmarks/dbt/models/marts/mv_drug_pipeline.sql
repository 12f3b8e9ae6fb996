-- dbt/models/marts/mv_drug_pipeline.sql
{{
config(
materialized='table',
indexes=[
{'columns': ['drug_id'], 'unique': true, 'type': 'btree'},
{'columns': ['drug_status'], 'type': 'btree'},
{'columns': ['highest_phase_rank_overall'], 'type': 'btree'},
{'columns': ['technology_name'], 'type': 'btree'},
],
)
}}
SELECT
d.id AS drug_id,
d.bloupe_id,
d.name AS drug_name,
d.drug_status,
d.drug_type,
d.first_in_class,
EXISTS(SELECT 1 FROM {{ source('bioloupe', 'drugs') }} c WHERE c.parent_id = d.id) AS is_combination,
t.name AS technology_name,
t.drug_class,
primary_tgt.target_name AS primary_target_name,
all_tgts.target_names AS target_names,
owners.owner_names AS current_owner_names,
phase_agg.highest_phase_overall,
phase_agg.highest_phase_rank_overall
FROM {{ source('bioloupe', 'drugs') }} d
LEFT JOIN {{ source('bioloupe', 'technologies') }} t ON t.id = d.technology_id
LEFT JOIN LATERAL (
SELECT tgt.name AS target_name
FROM {{ source('bioloupe', 'drug_target_actions') }} dta
JOIN {{ source('bioloupe', 'targets') }} tgt ON tgt.id = dta.target_id
WHERE dta.drug_id = d.id
ORDER BY dta.is_primary DESC, tgt.name ASC
LIMIT 1
) primary_tgt ON true
LEFT JOIN LATERAL (
SELECT array_agg(DISTINCT tgt.name ORDER BY tgt.name) AS target_names
FROM {{ source('bioloupe', 'drug_target_actions') }} dta
JOIN {{ source('bioloupe', 'targets') }} tgt ON tgt.id = dta.target_id
WHERE dta.drug_id = d.id
) all_tgts ON true
LEFT JOIN LATERAL (
SELECT array_agg(DISTINCT o.name ORDER BY o.name) AS owner_names
FROM {{ source('bioloupe', 'drug_ownerships') }} dow
JOIN {{ source('bioloupe', 'organisations') }} o ON o.id = dow.organisation_id
WHERE dow.drug_id = d.id AND dow.is_current = true
) owners ON true
LEFT JOIN LATERAL (
SELECT
MAX(dp.highest_phase_rank) AS highest_phase_rank_overall,
(array_agg(dp.highest_phase ORDER BY dp.highest_phase_rank DESC, dp.highest_phase DESC NULLS LAST))[1] AS highest_phase_overall  -- correction from marts.md
FROM {{ ref('mv_development_programs') }} dp
WHERE dp.drug_id = d.id
) phase_agg ON true
