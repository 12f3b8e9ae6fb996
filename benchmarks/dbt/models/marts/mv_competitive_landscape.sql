-- dbt/models/marts/mv_competitive_landscape.sql
{{
config(
materialized='table',
indexes=[
{'columns': ['drug_id', 'disease_id'], 'unique': true, 'type': 'btree'},
{'columns': ['disease_id'], 'type': 'btree'},
{'columns': ['highest_phase_rank'], 'type': 'btree'},
{'columns': ['technology_name'], 'type': 'btree'},
],
)
}}
SELECT
dp.drug_id,
dp.drug_name,
dp.disease_id,
dp.disease_name,
dp.highest_phase,
dp.highest_phase_rank,
dp.phase_source,
d.drug_type,
t.name AS technology_name,
t.drug_class,
owners.current_owner_names
FROM {{ ref('mv_development_programs') }} dp
JOIN {{ source('bioloupe', 'drugs') }} d ON d.id = dp.drug_id
LEFT JOIN {{ source('bioloupe', 'technologies') }} t ON t.id = d.technology_id
LEFT JOIN LATERAL (
SELECT array_agg(DISTINCT o.name ORDER BY o.name) AS current_owner_names
FROM {{ source('bioloupe', 'drug_ownerships') }} dow
JOIN {{ source('bioloupe', 'organisations') }} o ON o.id = dow.organisation_id
WHERE dow.drug_id = d.id AND dow.is_current = true
) owners ON true
