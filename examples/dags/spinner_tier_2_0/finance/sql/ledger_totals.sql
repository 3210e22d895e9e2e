-- Rendered by Jinja: a SQL-like template found through the DAG's template_searchpath.
SELECT account, SUM(amount) AS total
FROM ledger_entries
WHERE ledger = '{{ params.ledger }}'
  AND booked_at >= '{{ data_interval_start }}'
  AND booked_at <  '{{ data_interval_end }}'
GROUP BY account
