-- One row per candidate pair: the level of every comparison (identity_compare_pairs) and the
-- term-frequency adjustment of its exact name and address agreements.
with pairs as (
    select * from {{ ref('int_identity__candidate_pairs') }}
),

records as (
    select * from {{ ref('int_identity__guarded_records') }}
),

frequencies as (
    select * from {{ ref('int_identity__term_frequencies') }}
),

joined as (
    select
        pairs.node_a,
        pairs.node_b,
        pairs.blocking_rule,
        {{ identity_pair_sides('a', 'b') }}
    from pairs
    inner join records as a on pairs.node_a = a.record_key
    inner join records as b on pairs.node_b = b.record_key
),

compared as (
    {{ identity_compare_pairs('joined', 'node_a, node_b, blocking_rule') }}
),

final as (
    select
        compared.node_a,
        compared.node_b,
        compared.blocking_rule,
        compared.first_name_level,
        compared.last_name_level,
        compared.birth_date_level,
        compared.address_level,
        compared.phone_level,
        compared.email_local_part_level,
        -- Term frequencies adjust exact agreements only; the address levels use the value
        -- they agree on (street, postcode, or only the city).
        case when compared.first_name_level = 4 then coalesce(first_tf.tf_adjustment, 0) else 0 end
        + case when compared.last_name_level = 4 then coalesce(last_tf.tf_adjustment, 0) else 0 end
        + case
            when compared.address_level in (5, 3) then coalesce(street_tf.tf_adjustment, 0)
            when compared.address_level = 2 then coalesce(postcode_tf.tf_adjustment, 0)
            when compared.address_level = 1 then coalesce(city_tf.tf_adjustment, 0)
            else 0
        end as tf_adjustment
    from compared
    left join frequencies as first_tf
        on first_tf.field = 'first_name' and compared.first_value = first_tf.value
    left join frequencies as last_tf
        on last_tf.field = 'last_name' and compared.last_value = last_tf.value
    left join frequencies as street_tf
        on street_tf.field = 'street' and compared.street_value = street_tf.value
    left join frequencies as postcode_tf
        on postcode_tf.field = 'postcode' and compared.postcode_value = postcode_tf.value
    left join frequencies as city_tf
        on city_tf.field = 'city' and compared.city_value = city_tf.value
)

select * from final
