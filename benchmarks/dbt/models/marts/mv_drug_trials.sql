-- dbt/models/marts/mv_drug_trials.sql
{{
config(
materialized='table',
indexes=[
{'columns': ['drug_id'], 'type': 'btree'},
{'columns': ['clinical_trial_id'], 'type': 'btree'},
],
unique_key=['drug_id', 'clinical_trial_id', 'role'],
)
}}
SELECT DISTINCT
i.drug_id,
ct.id AS clinical_trial_id,
CASE
WHEN tai.is_investigational = true THEN 'investigational'
WHEN ta.arm_type = 'sham_comparator' THEN 'sham_comparator'
WHEN ta.arm_type = 'active_comparator' THEN 'active_comparator'
WHEN ta.arm_type = 'placebo_comparator' THEN 'placebo_comparator'
WHEN ta.arm_type = 'experimental'
AND tai.is_investigational = false THEN 'combination_partner'
ELSE 'other'
END AS role
FROM {{ source('bioloupe', 'trial_arm_interventions') }} tai
JOIN {{ source('bioloupe', 'interventions') }} i ON i.id = tai.intervention_id
JOIN {{ source('bioloupe', 'trial_arms') }} ta ON ta.id = tai.trial_arm_id
JOIN {{ source('bioloupe', 'clinical_trials') }} ct ON ct.id = ta.clinical_trial_id
WHERE i.drug_id IS NOT NULL
