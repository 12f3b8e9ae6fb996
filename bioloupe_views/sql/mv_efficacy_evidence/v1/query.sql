-- mv_efficacy_evidence v1: one row per efficacy result, per drug it is evidence for, per
-- disease (specified in marts.md; not in the seed). Part 1: trial arm results, credited to the
-- arm's investigational drugs and the trial's diseases. Part 2: publication outcomes.
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
FROM trial_arm_results tar
JOIN trial_arms ta ON ta.id = tar.trial_arm_id
JOIN clinical_trials ct ON ct.id = ta.clinical_trial_id
JOIN trial_arm_interventions tai ON tai.trial_arm_id = ta.id AND tai.is_investigational = true
JOIN interventions i ON i.id = tai.intervention_id
JOIN drugs d ON d.id = i.drug_id
JOIN trial_diseases td ON td.clinical_trial_id = ct.id
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
