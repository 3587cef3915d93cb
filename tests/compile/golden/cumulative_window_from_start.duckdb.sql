SELECT
  "__ds" AS "metric_time__day",
  "__v0" AS "revenue_7d"
FROM (
  WITH cumulative_rows AS (
    SELECT
      m0.amount AS "__value",
      CAST(m0.ordered_at AS DATE) AS "metric_time__day"
    FROM src.orders AS m0
  ), cumulative_partials AS (
    SELECT
      "metric_time__day",
      SUM("__value") AS "__p0"
    FROM cumulative_rows
    GROUP BY
      "metric_time__day"
  )
  SELECT
    s."ds" AS "__ds",
    SUM(r."__p0") AS "__v0"
  FROM pantry_time_spine AS s
  INNER JOIN cumulative_partials AS r
    ON r."metric_time__day" <= s."ds"
    AND r."metric_time__day" > CAST(s."ds" - INTERVAL 7 DAY AS DATE)
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
    ) + INTERVAL 7 DAY AS DATE)
    AND s."ds" >= CAST('2024-01-10' AS DATE)
  GROUP BY
    s."ds"
) AS cumulative_days
ORDER BY
  "metric_time__day" ASC
