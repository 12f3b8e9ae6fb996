-- dbt/models/marts/mv_development_programs.sql
{{
config(
materialized='table',
indexes=[
{'columns': ['drug_id', 'disease_id'], 'unique': true, 'type': 'btree'},
{'columns': ['highest_phase_rank'], 'type': 'btree'},
{'columns': ['disease_id'], 'type': 'btree'},
{'columns': ['drug_id'], 'type': 'btree'},
],
)
}}
WITH phase_sources AS (
SELECT
da.drug_id,
d.name AS drug_name,
ind.disease_id,
dis.name AS disease_name,
'approved' AS highest_phase,
100 AS highest_phase_rank,
'approval' AS phase_source,
NULL::text[] AS nct_ids,
da.approval_date,
NULL::timestamptz AS earliest_completion_date
FROM {{ source('bioloupe', 'drug_approvals') }} da
JOIN {{ source('bioloupe', 'indications') }} ind ON ind.drug_approval_id = da.id
JOIN {{ source('bioloupe', 'diseases') }} dis ON dis.id = ind.disease_id
JOIN {{ source('bioloupe', 'drugs') }} d ON d.id = da.drug_id
WHERE da.approval_status = 'approved'
UNION ALL
SELECT
i.drug_id,
d.name AS drug_name,
td.disease_id,
dis.name AS disease_name,
ct.phase AS highest_phase,
CASE ct.phase
WHEN 'phase4' THEN 4
WHEN 'phase3' THEN 3
WHEN 'phase2_3' THEN 3
WHEN 'phase2' THEN 2
WHEN 'phase1_2' THEN 2
WHEN 'phase1' THEN 1
WHEN 'early_phase1' THEN 1
ELSE 0
END AS highest_phase_rank,
'clinical_trial' AS phase_source,
ARRAY[ct.nct_id] AS nct_ids,
NULL::timestamptz AS approval_date,
ct.completion_date AS earliest_completion_date
FROM {{ source('bioloupe', 'trial_arm_interventions') }} tai
JOIN {{ source('bioloupe', 'interventions') }} i ON i.id = tai.intervention_id
JOIN {{ source('bioloupe', 'trial_arms') }} ta ON ta.id = tai.trial_arm_id
JOIN {{ source('bioloupe', 'clinical_trials') }} ct ON ct.id = ta.clinical_trial_id
JOIN {{ source('bioloupe', 'trial_diseases') }} td ON td.clinical_trial_id = ct.id
JOIN {{ source('bioloupe', 'diseases') }} dis ON dis.id = td.disease_id
JOIN {{ source('bioloupe', 'drugs') }} d ON d.id = i.drug_id
WHERE i.drug_id IS NOT NULL
AND ct.overall_status NOT IN ('withdrawn')
),
aggregated AS (
SELECT
drug_id, drug_name, disease_id, disease_name,
highest_phase, highest_phase_rank, phase_source,
CASE
WHEN phase_source = 'clinical_trial'
THEN array_agg(DISTINCT unnested_nct ORDER BY unnested_nct)
ELSE NULL::text[]
END AS nct_ids,
MIN(approval_date) AS approval_date,
MIN(earliest_completion_date) AS earliest_completion_date
FROM phase_sources,
LATERAL unnest(COALESCE(nct_ids, ARRAY[NULL::text])) AS unnested_nct
GROUP BY drug_id, drug_name, disease_id, disease_name,
highest_phase, highest_phase_rank, phase_source
),
cleaned AS (
SELECT
drug_id, drug_name, disease_id, disease_name,
highest_phase, highest_phase_rank, phase_source,
array_remove(nct_ids, NULL) AS nct_ids,
approval_date, earliest_completion_date
FROM aggregated
)
SELECT DISTINCT ON (drug_id, disease_id)
drug_id, drug_name, disease_id, disease_name,
highest_phase, highest_phase_rank, phase_source,
nct_ids, approval_date, earliest_completion_date
FROM cleaned
ORDER BY drug_id, disease_id, highest_phase_rank DESC, phase_source ASC, highest_phase DESC NULLS LAST  -- correction from marts.md
