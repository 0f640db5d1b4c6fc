{#-
  A sum that is the same on every run. DuckDB adds doubles in whatever order its threads
  finish, so sum() over doubles differs in the last bits between two builds of the same night:
  RFM quintiles and rounded spends could flip on a tie, and a pair's term-frequency weight
  changing bit by bit made the identity region re-compare edges that had not changed. A
  decimal sum is exact; nine decimals keep every amount a shop sends and every match weight.
-#}
{% macro exact_sum(expr) -%}
  cast(sum(cast({{ expr }} as decimal(38, 9))) as double)
{%- endmacro %}
