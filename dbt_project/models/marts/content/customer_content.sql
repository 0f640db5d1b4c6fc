-- Content rules applied: for each person and block, the content_blocks row for their
-- attribute value (else `*`), in their language (else English); `{value}` filled in.
-- No row for a block (an engaged person's reengagement, no cart) leaves it null: the
-- merge field's fallback (empty) applies and the email leaves the block out.
-- A person's blocks depend only on four values (country, language, engagement level, cart
-- state) and the viewed category filled in: the rules are applied once per combination of
-- the four (a few hundred), not per person (a window over four rows per person: 5.6 CPU s
-- at 1M). `attributes` is named where it is read, not one CTE read twice (which DuckDB would
-- copy whole).
with

blocks as (
    select * from {{ ref('content_blocks') }}
),

combinations as (
    select distinct country, content_language, engagement_level, cart_state
    from {{ ref('int_content__attributes') }}
),

keyed as (
    select combinations.*, 'local_offer' as block, coalesce(country, '*') as match_value
    from combinations
    union all
    select combinations.*, 'because_viewed', '*'
    from combinations
    union all
    select combinations.*, 'reengagement', engagement_level
    from combinations
    union all
    select combinations.*, 'shipping_nudge', cart_state
    from combinations
),

candidates as (
    select
        keyed.country,
        keyed.content_language,
        keyed.engagement_level,
        keyed.cart_state,
        keyed.block,
        blocks.content,
        row_number() over (
            partition by
                keyed.country, keyed.content_language, keyed.engagement_level,
                keyed.cart_state, keyed.block
            order by
                case when blocks.match_value = '*' then 1 else 0 end,
                case when blocks.language = keyed.content_language then 0 else 1 end
        ) as preference
    from keyed
    inner join blocks on keyed.block = blocks.block
    where (blocks.match_value = keyed.match_value or blocks.match_value = '*')
      and blocks.language in (keyed.content_language, 'en')
),

-- One row per combination: each block's text, `{value}` still in because_viewed's.
templates as (
    select
        country,
        content_language,
        engagement_level,
        cart_state,
        max(case when block = 'local_offer' then replace(content, '{value}', '') end) as local_offer,
        max(case when block = 'because_viewed' then content end) as because_viewed,
        max(case when block = 'reengagement' then replace(content, '{value}', '') end)
            as reengagement_offer,
        max(case when block = 'shipping_nudge' then replace(content, '{value}', '') end)
            as shipping_nudge
    from candidates
    where preference = 1
    group by country, content_language, engagement_level, cart_state
),

final as (
    select
        attributes.unified_id,
        attributes.content_language,
        attributes.viewed_category,
        attributes.engagement_level,
        attributes.cart_value,
        attributes.cart_state,
        templates.local_offer,
        -- A person without a viewed category has no because_viewed block.
        replace(templates.because_viewed, '{value}', attributes.viewed_category) as because_viewed,
        templates.reengagement_offer,
        templates.shipping_nudge
    from {{ ref('int_content__attributes') }} as attributes
    left join templates
        on attributes.country is not distinct from templates.country
        and attributes.content_language is not distinct from templates.content_language
        and attributes.engagement_level is not distinct from templates.engagement_level
        and attributes.cart_state is not distinct from templates.cart_state
)

select * from final
