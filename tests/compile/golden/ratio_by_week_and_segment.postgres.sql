SELECT
  "metric_time__week",
  "customer__segment",
  CAST("__num" AS DOUBLE PRECISION) / NULLIF(CAST("__den" AS DOUBLE PRECISION), 0) AS "revenue_per_buyer"
FROM (
  SELECT
    COALESCE(q0."metric_time__week", q1."metric_time__week") AS "metric_time__week",
    COALESCE(q0."customer__segment", q1."customer__segment") AS "customer__segment",
    q0."__num",
    q1."__den"
  FROM (
    SELECT
      "metric_time__week",
      "customer__segment",
      SUM("__value") AS "__num"
    FROM (
      SELECT
        m0.amount AS "__value",
        CAST(DATE_TRUNC('WEEK', CAST(m0.ordered_at AS DATE)) AS DATE) AS "metric_time__week",
        m1_customers.segment AS "customer__segment",
        m0.status AS "order__status"
      FROM src.orders AS m0
      LEFT JOIN src.customers AS m1_customers
        ON m0.customer_id = m1_customers.customer_id
    ) AS measure_rows
    WHERE
      "order__status" = 'completed'
    GROUP BY
      "metric_time__week",
      "customer__segment"
  ) AS q0
  FULL OUTER JOIN (
    SELECT
      "metric_time__week",
      "customer__segment",
      COUNT(DISTINCT "__value") AS "__den"
    FROM (
      SELECT
        m0.customer_id AS "__value",
        CAST(DATE_TRUNC('WEEK', CAST(m0.ordered_at AS DATE)) AS DATE) AS "metric_time__week",
        m1_customers.segment AS "customer__segment"
      FROM src.orders AS m0
      LEFT JOIN src.customers AS m1_customers
        ON m0.customer_id = m1_customers.customer_id
    ) AS measure_rows
    GROUP BY
      "metric_time__week",
      "customer__segment"
  ) AS q1
    ON q0."metric_time__week" IS NOT DISTINCT FROM q1."metric_time__week"
    AND q0."customer__segment" IS NOT DISTINCT FROM q1."customer__segment"
) AS ratio_inputs
ORDER BY
  "metric_time__week" ASC,
  "customer__segment" ASC
