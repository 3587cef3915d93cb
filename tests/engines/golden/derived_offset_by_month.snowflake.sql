SELECT
  "metric_time__month",
  "__part0" - "__part1" AS "revenue_wow"
FROM (
  SELECT
    COALESCE(q0."metric_time__month", q1."metric_time__month") AS "metric_time__month",
    q0."__part0",
    q1."__part1"
  FROM (
    SELECT
      "metric_time__month",
      SUM("__value") AS "__part0"
    FROM (
      SELECT
        m0.amount AS "__value",
        CAST(DATE_TRUNC('MONTH', CAST(m0.ordered_at AS DATE)) AS DATE) AS "metric_time__month"
      FROM analytics.orders AS m0
    ) AS measure_rows
    GROUP BY
      "metric_time__month"
  ) AS q0
  FULL OUTER JOIN (
    SELECT
      "metric_time__month",
      SUM("__value") AS "__part1"
    FROM (
      SELECT
        m0.amount AS "__value",
        CAST(DATE_TRUNC('MONTH', offset_spine."ds") AS DATE) AS "metric_time__month"
      FROM analytics.orders AS m0
      INNER JOIN (
        SELECT
          DATEADD(DAY, ROW_NUMBER() OVER (ORDER BY SEQ4()) - 1, CAST('1990-01-01' AS DATE)) AS ds
        FROM TABLE(GENERATOR(ROWCOUNT => 22280))
      ) AS offset_spine
        ON CAST(DATEADD(DAY, 7 * -1, offset_spine."ds") AS DATE) = CAST(m0.ordered_at AS DATE)
    ) AS measure_rows
    GROUP BY
      "metric_time__month"
  ) AS q1
    ON q0."metric_time__month" IS NOT DISTINCT FROM q1."metric_time__month"
) AS parts
ORDER BY
  "metric_time__month" ASC
