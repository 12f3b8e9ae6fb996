-- dbt/models/marts/mv_efficacy_evidence.sql
-- Not in the seed: marts.md's specification, written the straightforward way (the
-- formulation bioloupe-views started from: one SELECT DISTINCT over part 1).
{{
config(
materialized='table',
indexes=[
{'columns': ['source_type', 'evidence_id', 'drug_id', 'disease_id'], 'unique': true, 'type': 'btree'},
{'columns': ['drug_id', 'disease_id'], 'type': 'btree'},
{'columns': ['disease_id'], 'type': 'btree'},
{'columns': ['clinical_trial_id'], 'type': 'btree'},
],
)
}}
SELECT DISTINCT
    'trial_arm_result'::text AS source_type,
    tar.id AS evidence_id,
    d.id AS drug_id,
    d.name AS drug_name,
    dis.id AS disease_id,
    dis.name AS disease_name,
    ct.id AS clinical_trial_id,
    ct.nct_id,
    ct.phase AS trial_phase,
    NULL::bigint AS publication_id,
    NULL::text AS pmid,
    ta.id AS trial_arm_id,
    ta.arm_type,
    tar.endpoint,
    tar.value,
    tar.unit,
    tar.ci_lower,
    tar.ci_upper,
    tar.p_value,
    tar.participants,
    ct.completion_date AS reported_on,
    tar.updated_at
FROM {{ source('bioloupe', 'trial_arm_results') }} tar
JOIN {{ source('bioloupe', 'trial_arms') }} ta ON ta.id = tar.trial_arm_id
JOIN {{ source('bioloupe', 'clinical_trials') }} ct ON ct.id = ta.clinical_trial_id
JOIN {{ source('bioloupe', 'trial_arm_interventions') }} tai ON tai.trial_arm_id = ta.id AND tai.is_investigational = true
JOIN {{ source('bioloupe', 'interventions') }} i ON i.id = tai.intervention_id
JOIN {{ source('bioloupe', 'drugs') }} d ON d.id = i.drug_id
JOIN {{ source('bioloupe', 'trial_diseases') }} td ON td.clinical_trial_id = ct.id
JOIN {{ source('bioloupe', 'diseases') }} dis ON dis.id = td.disease_id
WHERE ct.overall_status NOT IN ('withdrawn')
UNION ALL
SELECT
    'publication_outcome'::text AS source_type,
    po.id AS evidence_id,
    d.id AS drug_id,
    d.name AS drug_name,
    dis.id AS disease_id,
    dis.name AS disease_name,
    ct.id AS clinical_trial_id,
    ct.nct_id,
    ct.phase AS trial_phase,
    p.id AS publication_id,
    p.pmid,
    NULL::bigint AS trial_arm_id,
    NULL::text AS arm_type,
    po.endpoint,
    po.value,
    po.unit,
    po.ci_lower,
    po.ci_upper,
    po.p_value,
    po.participants,
    p.publication_date AS reported_on,
    po.updated_at
FROM {{ source('bioloupe', 'publication_outcomes') }} po
JOIN {{ source('bioloupe', 'publications') }} p ON p.id = po.publication_id
JOIN {{ source('bioloupe', 'drugs') }} d ON d.id = po.drug_id
JOIN {{ source('bioloupe', 'diseases') }} dis ON dis.id = po.disease_id
LEFT JOIN {{ source('bioloupe', 'clinical_trials') }} ct ON ct.id = p.clinical_trial_id
