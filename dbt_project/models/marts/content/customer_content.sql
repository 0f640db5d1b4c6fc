-- Content rules applied: for each person and block, the content_blocks row for their
-- attribute value (else `*`), in their language (else English); `{value}` filled in.
-- No row for a block (an engaged person's reengagement, no cart) leaves it null: the
-- merge field's fallback (empty) applies and the email leaves the block out.
with

attributes as (
    select * from {{ ref('int_content__attributes') }}
),

blocks as (
    select * from {{ ref('content_blocks') }}
),

keyed as (
    select unified_id, content_language, 'local_offer' as block,
           coalesce(country, '*') as match_value, cast(null as string) as fill
    from attributes
    union all
    select unified_id, content_language, 'because_viewed', '*', viewed_category
    from attributes
    where viewed_category is not null
    union all
    select unified_id, content_language, 'reengagement', engagement_level, cast(null as string)
    from attributes
    union all
    select unified_id, content_language, 'shipping_nudge', cart_state, cast(null as string)
    from attributes
),

candidates as (
    select
        keyed.unified_id,
        keyed.block,
        replace(blocks.content, '{value}', coalesce(keyed.fill, '')) as content,
        row_number() over (
            partition by keyed.unified_id, keyed.block
            order by
                case when blocks.match_value = '*' then 1 else 0 end,
                case when blocks.language = keyed.content_language then 0 else 1 end
        ) as preference
    from keyed
    inner join blocks on keyed.block = blocks.block
    where (blocks.match_value = keyed.match_value or blocks.match_value = '*')
      and blocks.language in (keyed.content_language, 'en')
),

chosen as (
    select unified_id, block, content
    from candidates
    where preference = 1
),

final as (
    select
        attributes.unified_id,
        attributes.content_language,
        attributes.viewed_category,
        attributes.engagement_level,
        attributes.cart_value,
        attributes.cart_state,
        max(case when chosen.block = 'local_offer' then chosen.content end) as local_offer,
        max(case when chosen.block = 'because_viewed' then chosen.content end) as because_viewed,
        max(case when chosen.block = 'reengagement' then chosen.content end) as reengagement_offer,
        max(case when chosen.block = 'shipping_nudge' then chosen.content end) as shipping_nudge
    from attributes
    left join chosen on attributes.unified_id = chosen.unified_id
    group by
        attributes.unified_id, attributes.content_language, attributes.viewed_category,
        attributes.engagement_level, attributes.cart_value, attributes.cart_state
)

select * from final
