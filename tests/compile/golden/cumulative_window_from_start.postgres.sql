SELECT
  "__ds" AS "metric_time__day",
  "__day_value" AS "revenue_7d"
FROM (
  WITH cumulative_rows AS (
    SELECT
      m0.amount AS "__value",
      CAST(m0.ordered_at AS DATE) AS "metric_time__day"
    FROM src.orders AS m0
  )
  SELECT
    s."ds" AS "__ds",
    SUM(r."__value") AS "__day_value"
  FROM pantry_time_spine AS s
  INNER JOIN cumulative_rows AS r
    ON r."metric_time__day" <= s."ds"
    AND r."metric_time__day" > CAST(s."ds" - INTERVAL '7 DAY' AS DATE)
  WHERE
    s."ds" >= (
      SELECT
        MIN("metric_time__day")
      FROM cumulative_rows
    )
    AND s."ds" < CAST((
      SELECT
        MAX("metric_time__day")
      FROM cumulative_rows
    ) + INTERVAL '7 DAY' AS DATE)
    AND s."ds" >= CAST('2024-01-10' AS DATE)
  GROUP BY
    s."ds"
) AS cumulative_days
ORDER BY
  "metric_time__day" ASC
