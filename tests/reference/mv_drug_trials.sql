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
FROM trial_arm_interventions tai
JOIN interventions i ON i.id = tai.intervention_id
JOIN trial_arms ta ON ta.id = tai.trial_arm_id
JOIN clinical_trials ct ON ct.id = ta.clinical_trial_id
WHERE i.drug_id IS NOT NULL
