-- One row per sku ever in the catalogue: the category int_events__resolved gives its events, and
-- the run (ds) in which that category last changed (a new sku counts as a change).
-- int_events__resolved re-labels only the events of skus changed since its last run.
-- Incremental (exception to the intermediate-as-tables rule): it remembers the previous
-- category; only new or changed skus are written.
{{ config(
    materialized=keyed_incremental(),
    incremental_strategy='delete+insert',
    unique_key='sku',
    on_schema_change='fail'
) }}

with products as (
    select sku, category from {{ ref('stg_shop__products') }}
),

{% if is_incremental() %}
known as (
    select * from {{ this }}
),

final as (
    select
        coalesce(products.sku, known.sku) as sku,
        products.category,
        date '{{ var("ds") }}' as changed_on
    from products
    full join known on products.sku = known.sku
    -- A sku gone from the catalogue keeps no category (its events join to nothing).
    where known.sku is null or known.category is distinct from products.category
)
{% else %}
final as (
    select sku, category, date '{{ var("ds") }}' as changed_on from products
)
{% endif %}

select * from final
