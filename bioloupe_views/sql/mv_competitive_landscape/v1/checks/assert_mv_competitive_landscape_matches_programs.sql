-- mv_competitive_landscape has exactly the (drug_id, disease_id) pairs of
-- mv_development_programs: a pair missing from either side is a failure.
-- The label is added after each EXCEPT, so the set operations hash two bigints per row.
-- severity: error
SELECT 'missing_from_landscape' AS problem, drug_id, disease_id
FROM (SELECT drug_id, disease_id FROM mv_development_programs
      EXCEPT
      SELECT drug_id, disease_id FROM mv_competitive_landscape) missing
UNION ALL
SELECT 'not_in_programs', drug_id, disease_id
FROM (SELECT drug_id, disease_id FROM mv_competitive_landscape
      EXCEPT
      SELECT drug_id, disease_id FROM mv_development_programs) extra
