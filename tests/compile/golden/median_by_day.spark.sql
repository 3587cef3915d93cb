SELECT
  `metric_time__day`,
  PERCENTILE(`__value`, 0.5) AS `median_amount`
FROM (
  SELECT
    m0.amount AS `__value`,
    CAST(m0.ordered_at AS DATE) AS `metric_time__day`
  FROM src.orders AS m0
) AS measure_rows
GROUP BY
  `metric_time__day`
ORDER BY
  `metric_time__day` ASC NULLS LAST
