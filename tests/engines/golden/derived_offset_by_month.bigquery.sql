SELECT
  `metric_time__month`,
  `__part0` - `__part1` AS `revenue_wow`
FROM (
  SELECT
    COALESCE(q0.`metric_time__month`, q1.`metric_time__month`) AS `metric_time__month`,
    q0.`__part0`,
    q1.`__part1`
  FROM (
    SELECT
      `metric_time__month`,
      SUM(`__value`) AS `__part0`
    FROM (
      SELECT
        m0.amount AS `__value`,
        CAST(DATE_TRUNC(CAST(m0.ordered_at AS DATE), MONTH) AS DATE) AS `metric_time__month`
      FROM analytics.orders AS m0
    ) AS measure_rows
    GROUP BY
      `metric_time__month`
  ) AS q0
  FULL OUTER JOIN (
    SELECT
      `metric_time__month`,
      SUM(`__value`) AS `__part1`
    FROM (
      SELECT
        m0.amount AS `__value`,
        CAST(DATE_TRUNC(offset_spine.`ds`, MONTH) AS DATE) AS `metric_time__month`
      FROM analytics.orders AS m0
      INNER JOIN (
        SELECT
          ds
        FROM UNNEST(GENERATE_DATE_ARRAY(CAST('1990-01-01' AS DATE), CAST('2050-12-31' AS DATE), INTERVAL '1' DAY)) AS ds
      ) AS offset_spine
        ON CAST(DATE_SUB(offset_spine.`ds`, INTERVAL '7' DAY) AS DATE) = CAST(m0.ordered_at AS DATE)
    ) AS measure_rows
    GROUP BY
      `metric_time__month`
  ) AS q1
    ON COALESCE(CAST(q0.`metric_time__month` AS STRING), '') = COALESCE(CAST(q1.`metric_time__month` AS STRING), '')
    AND (
      q0.`metric_time__month` IS NULL
    ) = (
      q1.`metric_time__month` IS NULL
    )
) AS parts
ORDER BY
  `metric_time__month` ASC NULLS LAST
