SELECT
dp.drug_id,
dp.drug_name,
dp.disease_id,
dp.disease_name,
dp.highest_phase,
dp.highest_phase_rank,
dp.phase_source,
d.drug_type,
t.name AS technology_name,
t.drug_class,
owners.current_owner_names
FROM ref_mv_development_programs dp
JOIN drugs d ON d.id = dp.drug_id
LEFT JOIN technologies t ON t.id = d.technology_id
LEFT JOIN LATERAL (
SELECT array_agg(DISTINCT o.name ORDER BY o.name) AS current_owner_names
FROM drug_ownerships dow
JOIN organisations o ON o.id = dow.organisation_id
WHERE dow.drug_id = d.id AND dow.is_current = true
) owners ON true
