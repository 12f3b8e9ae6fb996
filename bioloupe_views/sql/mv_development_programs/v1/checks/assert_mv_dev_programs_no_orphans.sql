-- The seed's singular test: every drug_id in mv_development_programs exists in drugs.
-- severity: error
SELECT dp.drug_id
FROM mv_development_programs dp
LEFT JOIN drugs d ON d.id = dp.drug_id
WHERE d.id IS NULL
