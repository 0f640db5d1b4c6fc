-- One row per candidate pair: a Fellegi-Sunter match weight and probability.
-- Each comparison lands on one level; a level adds log2(m / u), where m = P(level | same
-- person) and u = P(level | different persons). A missing value adds 0. The sum plus the
-- prior log-odds gives the match weight; probability = 2^w / (1 + 2^w). The m/u values and
-- the threshold are in macros/identity_match_weights.sql and docs/identity.md.
{%- set prior_weight = var('identity_prior_weight', -10) %}
{%- set threshold = var('identity_match_threshold', 0.99) %}

with pairs as (
    select * from {{ ref('int_identity__candidate_pairs') }}
),

records as (
    select * from {{ ref('int_identity__guarded_records') }}
),

joined as (
    select
        pairs.node_a,
        pairs.node_b,
        a.first_name_canonical as first_a,
        b.first_name_canonical as first_b,
        a.last_name_clean as last_a,
        b.last_name_clean as last_b,
        a.birth_date as birth_a,
        b.birth_date as birth_b,
        a.street_clean as street_a,
        b.street_clean as street_b,
        a.postcode_clean as postcode_a,
        b.postcode_clean as postcode_b,
        a.phone_e164 as phone_a,
        b.phone_e164 as phone_b,
        a.email_local_part as email_local_a,
        b.email_local_part as email_local_b
    from pairs
    inner join records as a on pairs.node_a = a.record_key
    inner join records as b on pairs.node_b = b.record_key
),

compared as (
    select
        node_a,
        node_b,
        -- Names count in whichever orientation fits better (swapped first/last names).
        greatest(
            {{ identity_name_weight('first', 'first_a', 'first_b') }} + {{ identity_name_weight('last', 'last_a', 'last_b') }},
            {{ identity_name_weight('first', 'first_a', 'last_b') }} + {{ identity_name_weight('last', 'last_a', 'first_b') }}
        ) as name_weight,
        case
            when birth_a is null or birth_b is null then 0
            when birth_a = birth_b then {{ identity_weight('birth_exact') }}
            when damerau_levenshtein(birth_a::string, birth_b::string) <= 1
                or (month(birth_a) = day(birth_b) and day(birth_a) = month(birth_b) and year(birth_a) = year(birth_b))
                then {{ identity_weight('birth_typo') }}
            else {{ identity_weight('birth_other') }}
        end as birth_weight,
        case
            when (street_a is null or street_b is null) and (postcode_a is null or postcode_b is null) then 0
            when postcode_a = postcode_b and jaro_winkler_similarity(street_a, street_b) >= 0.92
                then {{ identity_weight('address_exact') }}
            when jaro_winkler_similarity(street_a, street_b) >= 0.92 then {{ identity_weight('address_same_street') }}
            when postcode_a = postcode_b then {{ identity_weight('address_same_postcode') }}
            else {{ identity_weight('address_other') }}
        end as address_weight,
        case
            when phone_a is null or phone_b is null then 0
            when phone_a = phone_b then {{ identity_weight('phone_exact') }}
            else {{ identity_weight('phone_other') }}
        end as phone_weight,
        case
            when email_local_a is null or email_local_b is null then 0
            when email_local_a = email_local_b and length(email_local_a) >= 6 then {{ identity_weight('email_local_exact') }}
            when {{ regexp_replace_all("email_local_a", '[^a-z]', '') }} = {{ regexp_replace_all("email_local_b", '[^a-z]', '') }}
                and length({{ regexp_replace_all("email_local_a", '[^a-z]', '') }}) >= 6
                then {{ identity_weight('email_local_stem') }}
            else {{ identity_weight('email_local_other') }}
        end as email_local_weight
    from joined
),

final as (
    select
        node_a,
        node_b,
        name_weight,
        birth_weight,
        address_weight,
        phone_weight,
        email_local_weight,
        {{ prior_weight }} + name_weight + birth_weight + address_weight + phone_weight + email_local_weight
            as match_weight,
        1 / (1 + pow(2, -(
            {{ prior_weight }} + name_weight + birth_weight + address_weight + phone_weight + email_local_weight
        ))) as match_probability,
        1 / (1 + pow(2, -(
            {{ prior_weight }} + name_weight + birth_weight + address_weight + phone_weight + email_local_weight
        ))) >= {{ threshold }} as is_match
    from compared
)

select * from final
