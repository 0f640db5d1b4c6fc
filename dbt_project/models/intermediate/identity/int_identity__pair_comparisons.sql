-- One row per candidate pair: the level of every comparison (identity_compare_pairs, read
-- from the cache int_identity__compared_pairs for the records' current fingerprints) and the
-- term-frequency adjustment of its exact name and address agreements.
with pairs as (
    select * from {{ ref('int_identity__candidate_pairs') }}
),

records as (
    select * from {{ ref('int_identity__record_fingerprints') }}
),

cached as (
    select * from {{ ref('int_identity__compared_pairs') }}
    where cache_version = {{ identity_cache_version() }}
),

frequencies as (
    select * from {{ ref('int_identity__term_frequencies') }}
),

-- Every candidate pair was compared (int_identity__compared_pairs runs over them all);
-- a left join so a missing comparison would show as null levels (not_null tests).
compared as (
    select
        pairs.node_a,
        pairs.node_b,
        pairs.blocking_rule,
        {%- for comparison in identity_comparison_names() %}
        cached.{{ comparison }}_level,
        {%- endfor %}
        cached.first_value,
        cached.last_value,
        cached.street_value,
        cached.postcode_value,
        cached.city_value
    from pairs
    inner join records as a on pairs.node_a = a.record_key
    inner join records as b on pairs.node_b = b.record_key
    left join cached
        on
            pairs.node_a = cached.node_a
            and pairs.node_b = cached.node_b
            and a.fingerprint = cached.fingerprint_a
            and b.fingerprint = cached.fingerprint_b
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
