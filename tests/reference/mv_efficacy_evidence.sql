-- Independent formulation of marts.md's mv_efficacy_evidence: de-duplicate the drugs of an
-- arm and the diseases of a trial first, then join, instead of a final DISTINCT.
WITH eligible_trials AS (
    SELECT * FROM clinical_trials WHERE overall_status NOT IN ('withdrawn')
),
arm_drugs AS (
    SELECT DISTINCT tai.trial_arm_id, i.drug_id
    FROM trial_arm_interventions tai
    JOIN interventions i ON i.id = tai.intervention_id
    WHERE tai.is_investigational IS TRUE
      AND EXISTS (SELECT 1 FROM drugs d WHERE d.id = i.drug_id)
),
trial_disease_set AS (
    SELECT DISTINCT td.clinical_trial_id, td.disease_id
    FROM trial_diseases td
    WHERE EXISTS (SELECT 1 FROM diseases x WHERE x.id = td.disease_id)
)
SELECT 'trial_arm_result'::text AS source_type, tar.id AS evidence_id,
       ad.drug_id, d.name AS drug_name, tds.disease_id, dis.name AS disease_name,
       ct.id AS clinical_trial_id, ct.nct_id, ct.phase AS trial_phase,
       NULL::bigint AS publication_id, NULL::text AS pmid,
       ta.id AS trial_arm_id, ta.arm_type,
       tar.endpoint, tar.value, tar.unit, tar.ci_lower, tar.ci_upper, tar.p_value,
       tar.participants, ct.completion_date AS reported_on, tar.updated_at
FROM trial_arm_results tar
JOIN trial_arms ta ON ta.id = tar.trial_arm_id
JOIN eligible_trials ct ON ct.id = ta.clinical_trial_id
JOIN arm_drugs ad ON ad.trial_arm_id = ta.id
JOIN drugs d ON d.id = ad.drug_id
JOIN trial_disease_set tds ON tds.clinical_trial_id = ct.id
JOIN diseases dis ON dis.id = tds.disease_id
UNION ALL
SELECT 'publication_outcome'::text, po.id, po.drug_id, d.name, po.disease_id, dis.name,
       ct.id, ct.nct_id, ct.phase, p.id, p.pmid, NULL::bigint, NULL::text,
       po.endpoint, po.value, po.unit, po.ci_lower, po.ci_upper, po.p_value,
       po.participants, p.publication_date, po.updated_at
FROM publication_outcomes po
JOIN publications p ON p.id = po.publication_id
JOIN drugs d ON d.id = po.drug_id
JOIN diseases dis ON dis.id = po.disease_id
LEFT JOIN clinical_trials ct ON ct.id = p.clinical_trial_id
