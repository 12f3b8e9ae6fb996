-- dbt's unique: each value (NULL ignored) that occurs more than once is one failure.
SELECT {{ column }} AS unique_field, count(*) AS n_records
FROM {{ model }}
WHERE {{ column }} IS NOT NULL
GROUP BY {{ column }}
HAVING count(*) > 1
