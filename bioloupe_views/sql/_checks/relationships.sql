-- dbt's relationships: each child row (NULL ignored) whose value is missing from the parent
-- is one failure.
WITH child AS (
    SELECT {{ column }} AS from_field
    FROM {{ model }}
    WHERE {{ column }} IS NOT NULL
),
parent AS (
    SELECT {{ field }} AS to_field
    FROM {{ to }}
)
SELECT child.from_field
FROM child
LEFT JOIN parent ON child.from_field = parent.to_field
WHERE parent.to_field IS NULL
