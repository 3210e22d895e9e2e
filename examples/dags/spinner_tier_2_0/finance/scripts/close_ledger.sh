# Rendered by Jinja before it runs: {{ "{{ ds }}" }} and friends are filled in, then bash runs the result.
set -euo pipefail
echo "closing ledger {{ params.ledger }} for {{ ds }}"
echo "window: {{ data_interval_start }} -> {{ data_interval_end }} (UTC)"
echo "previous close {{ prev_ds }}, next close {{ next_ds }}, a week ago {{ macros.ds_add(ds, -7) }}"
echo "batch {{ ts_nodash_with_tz }}"
