-- mv_efficacy_evidence v1: one row per efficacy result, per drug it is evidence for, per
-- disease (specified in marts.md; not in the seed). Part 1: trial arm results, credited to the
-- arm's investigational drugs and the trial's diseases. Part 2: publication outcomes.
--
-- Part 1's duplicates (the same drug through two interventions of an arm, the same disease
-- twice for a trial) are removed on the narrow (arm, drug) and (trial, disease) pairs before
-- the join, not by a DISTINCT over the 22 wide output columns: every output column is a
-- function of (result, drug, disease), so the rows are the same, and the hash tables are a
-- fraction of the size (the wide DISTINCT spills to disk at production scale).
WITH arm_drug AS (
    SELECT DISTINCT tai.trial_arm_id, i.drug_id
    FROM trial_arm_interventions tai
    JOIN interventions i ON i.id = tai.intervention_id
    WHERE tai.is_investigational = true
),
trial_disease AS (
    SELECT DISTINCT td.clinical_trial_id, td.disease_id
    FROM trial_diseases td
)
SELECT
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
FROM trial_arm_results tar
JOIN trial_arms ta ON ta.id = tar.trial_arm_id
JOIN clinical_trials ct ON ct.id = ta.clinical_trial_id
JOIN arm_drug ad ON ad.trial_arm_id = ta.id
JOIN drugs d ON d.id = ad.drug_id
JOIN trial_disease td ON td.clinical_trial_id = ct.id
JOIN diseases dis ON dis.id = td.disease_id
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
FROM publication_outcomes po
JOIN publications p ON p.id = po.publication_id
JOIN drugs d ON d.id = po.drug_id
JOIN diseases dis ON dis.id = po.disease_id
LEFT JOIN clinical_trials ct ON ct.id = p.clinical_trial_id
