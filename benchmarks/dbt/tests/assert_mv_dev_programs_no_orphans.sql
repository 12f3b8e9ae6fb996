-- Every drug_id in mv_development_programs should exist in drugs
SELECT dp.drug_id
FROM {{ ref('mv_development_programs') }} dp
LEFT JOIN {{ source('bioloupe', 'drugs') }} d ON d.id = dp.drug_id
WHERE d.id IS NULL
