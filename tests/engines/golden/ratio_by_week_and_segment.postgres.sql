SELECT
  "metric_time__week",
  "customer__segment",
  CASE
    WHEN COALESCE("__here0", FALSE) OR COALESCE("__here1", FALSE)
    THEN CAST("__part0" AS DOUBLE PRECISION) / NULLIF(CAST("__part1" AS DOUBLE PRECISION), 0)
  END AS "revenue_per_buyer"
FROM (
  SELECT
    "metric_time__week",
    "customer__segment",
    SUM("__value") FILTER(WHERE
      "order__status" = 'completed') AS "__part0",
    COUNT(*) FILTER(WHERE
      "order__status" = 'completed') > 0 AS "__here0",
    COUNT(DISTINCT "__value_1") AS "__part1",
    TRUE AS "__here1"
  FROM (
    SELECT
      m0.amount AS "__value",
      CAST(DATE_TRUNC('WEEK', CAST(m0.ordered_at AS DATE)) AS DATE) AS "metric_time__week",
      m1_customers.segment AS "customer__segment",
      m0.status AS "order__status",
      m0.customer_id AS "__value_1"
    FROM analytics.orders AS m0
    LEFT JOIN analytics.customers AS m1_customers
      ON m0.customer_id = m1_customers.customer_id
  ) AS measure_rows
  GROUP BY
    "metric_time__week",
    "customer__segment"
) AS parts
ORDER BY
  "metric_time__week" ASC,
  "customer__segment" ASC
