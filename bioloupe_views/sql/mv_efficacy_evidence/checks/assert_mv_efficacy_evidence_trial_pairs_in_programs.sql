-- The efficacy invariant: every (drug_id, disease_id) of a trial arm result is a development
-- program. The two marts are refreshed independently (neither reads the other), so between
-- their refreshes in one run the invariant can be briefly false: it warns instead of blocking.
-- severity: warn
SELECT DISTINCT e.drug_id, e.disease_id
FROM mv_efficacy_evidence e
LEFT JOIN mv_development_programs dp
    ON dp.drug_id = e.drug_id AND dp.disease_id = e.disease_id
WHERE e.source_type = 'trial_arm_result'
  AND dp.drug_id IS NULL
