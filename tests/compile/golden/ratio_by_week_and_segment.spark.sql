SELECT
  `metric_time__week`,
  `customer__segment`,
  CAST(`__num` AS DOUBLE) / NULLIF(CAST(`__den` AS DOUBLE), 0) AS `revenue_per_buyer`
FROM (
  SELECT
    `metric_time__week`,
    `customer__segment`,
    SUM(`__value`) FILTER(WHERE
      `order__status` = 'completed') AS `__num`,
    COUNT(DISTINCT `__value_1`) AS `__den`
  FROM (
    SELECT
      m0.amount AS `__value`,
      CAST(TRUNC(CAST(m0.ordered_at AS DATE), 'WEEK') AS DATE) AS `metric_time__week`,
      m1_customers.segment AS `customer__segment`,
      m0.status AS `order__status`,
      m0.customer_id AS `__value_1`
    FROM src.orders AS m0
    LEFT JOIN src.customers AS m1_customers
      ON m0.customer_id = m1_customers.customer_id
  ) AS measure_rows
  GROUP BY
    `metric_time__week`,
    `customer__segment`
) AS ratio_inputs
ORDER BY
  `metric_time__week` ASC NULLS LAST,
  `customer__segment` ASC NULLS LAST
